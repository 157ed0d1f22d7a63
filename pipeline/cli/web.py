"""``pipeline web``: the local web app (people, photos, unknown faces, search, status)."""

from __future__ import annotations

from typing import Annotated

import typer

from pipeline.cli.app import app, out, settings


@app.command()
def web(
    host: Annotated[
        str | None, typer.Option("--host", help="Address to bind (default 127.0.0.1; others need a password)")
    ] = None,
    port: Annotated[int | None, typer.Option("--port", help="Port (default 8765; 0 = any free port)")] = None,
) -> None:
    """Serve the web app on this machine (PIPELINE_WEB_PASSWORD is required to bind beyond loopback)."""
    from pipeline.web.server import serve

    s = settings()
    serve(s, host or s.web_host, s.web_port if port is None else port, lambda line: out.print(line, highlight=False))
