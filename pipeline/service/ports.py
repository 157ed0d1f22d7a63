"""Is a TCP port free to listen on? Checked before a server child (Flower) is started, so a taken
port is one clear error instead of a child that dies with a traceback in its log."""

from __future__ import annotations

import socket

from pipeline.errors import PipelineError


class PortInUse(PipelineError):
    """Another program already listens on the port a server of ours should use."""


def ensure_port_free(port: int, host: str = "127.0.0.1", what: str = "Flower", option: str = "--flower-port") -> None:
    """Raise :class:`PortInUse` if ``host:port`` cannot be bound now (the probe socket is closed
    again at once; like the servers we start, it sets SO_REUSEADDR, so TIME_WAIT is no conflict)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError as exc:
            raise PortInUse(
                f"port {port} on {host} is taken ({exc.strerror}), so {what} cannot start; "
                f"stop the program using it or choose another port with {option}"
            ) from exc
