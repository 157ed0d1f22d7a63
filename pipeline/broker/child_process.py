"""Children that cannot outlive ``pipeline run``: on Linux the kernel sends them SIGTERM when the
process that started them dies, whatever killed it (SIGKILL and SIGHUP included)."""

from __future__ import annotations

import ctypes
import os
import signal

PR_SET_PDEATHSIG = 1


def die_with_parent() -> None:  # pragma: no cover - runs in the child between fork and exec
    """``preexec_fn`` for ``subprocess.Popen``: SIGTERM when the parent dies, in a session of its own
    (so a Ctrl-C in the terminal reaches only ``pipeline run``, which stops its children in order).

    The parent may already have died between fork and this call; then the child exits at once.
    """
    parent = os.getppid()
    try:
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGTERM)
    except OSError:
        pass
    os.setsid()
    if os.getppid() != parent:
        os._exit(1)
