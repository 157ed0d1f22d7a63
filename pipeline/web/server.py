"""Serving the app with uvicorn: the bind check, the address line, and a clean stop on Ctrl-C."""

from __future__ import annotations

from collections.abc import Callable

from pipeline.config import Settings
from pipeline.errors import PipelineError


class WebUnavailable(PipelineError, ImportError):
    """The web extra is not installed."""


def serve(settings: Settings, host: str, port: int, report: Callable[[str], None]) -> None:
    """Serve until interrupted. Refuses a non-loopback ``host`` without ``web_password``.

    Side effects: migrates the database if needed; binds ``host:port`` (0 = a free port) and
    reports ``web: http://HOST:PORT`` once it listens.
    """
    from pipeline.web.security import check_bind

    check_bind(host, settings.web_password)
    try:
        import uvicorn
    except ImportError:
        raise WebUnavailable("the web app needs the `web` extra: pip install 'photo-pipeline[web]'") from None
    from pipeline.web.app import create_app

    app = create_app(settings)
    config = uvicorn.Config(app, host=host, port=port, log_level="warning", access_log=False)
    server = uvicorn.Server(config)

    original_startup = server.startup

    async def startup(sockets: object = None) -> None:
        await original_startup(sockets=sockets)  # type: ignore[arg-type]  # uvicorn passes its own socket list
        for srv in server.servers:
            for sock in srv.sockets:
                bound_host, bound_port = sock.getsockname()[:2]
                shown = f"[{bound_host}]" if ":" in bound_host else bound_host
                auth = " (password required)" if settings.web_password else ""
                report(f"web: http://{shown}:{bound_port}{auth}")

    server.startup = startup  # type: ignore[method-assign]  # to learn the port the OS chose
    server.run()
