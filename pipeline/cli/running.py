"""``pipeline run``, ``watch``, ``worker`` and ``flower``: the long-running commands."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated

import typer

from pipeline.cli.app import UserError, app, err, out, settings
from pipeline.errors import BrokerUnavailable


@app.command()
def run(
    folders: Annotated[list[Path], typer.Argument(help="Folders to watch (default: PIPELINE_WATCH)")] = [],  # noqa: B006 - typer reads the default; it is never mutated
    flower: Annotated[bool, typer.Option("--flower", help="Also start Flower")] = False,
    flower_port: Annotated[int, typer.Option("--flower-port")] = 5555,
    until_idle: Annotated[bool, typer.Option("--until-idle", help="Exit once every photo is processed")] = False,
    web: Annotated[bool, typer.Option("--web", help="Also serve the web app (`pipeline web`)")] = False,
) -> None:
    """Embedded broker (unless configured) + a worker + the watcher, with progress. Ctrl-C stops all."""
    from pipeline.service.runner import RunOptions
    from pipeline.service.runner import run as do_run

    s = settings()
    chosen = [f.expanduser().resolve() for f in folders] or s.watch
    if not chosen:
        raise UserError("give a folder to watch (or set PIPELINE_WATCH)")
    if web:
        from pipeline.web.security import check_bind

        check_bind(s.web_host, s.web_password)  # refuse before anything starts
    options = RunOptions(chosen, flower, flower_port, until_idle=until_idle, web=web, web_host=s.web_host)
    options.web_port = s.web_port
    code = do_run(s, options, out.print)
    raise typer.Exit(code)


@app.command()
def watch(folders: Annotated[list[Path], typer.Argument(help="Folders to watch")] = []) -> None:  # noqa: B006 - typer reads the default; it is never mutated
    """Run the watcher alone (multi-process deployments: workers run elsewhere)."""
    import threading

    from pipeline.broker.client import resolve_broker_url
    from pipeline.ingest.dispatch import Dispatcher, Sweeper, send_all_queued
    from pipeline.ingest.ingestor import Ingestor, make_watcher
    from pipeline.store.db import ensure_schema
    from pipeline.store.db_file import check_database_file

    s = settings()
    chosen = [f.expanduser().resolve() for f in folders] or s.watch
    if not chosen:
        raise UserError("give a folder to watch (or set PIPELINE_WATCH)")
    for folder in chosen:
        if not folder.is_dir():
            raise UserError(f"{folder}: not a folder")
    ensure_schema()
    broker = resolve_broker_url(s)
    if broker is None:
        err.print("[yellow]no broker reachable: photos are registered as queued and sent once it is[/]")
    dispatcher = Dispatcher(broker or s.broker_url, s)
    if broker is not None:
        dispatcher.connect()
    send_all_queued(s, dispatcher)
    ingestor = Ingestor(dispatcher)
    watcher = make_watcher(chosen, ingestor, s)
    sweeper = Sweeper(s, dispatcher, deferred=ingestor)
    stop = threading.Event()
    import signal

    previous = {sig: signal.signal(sig, lambda *_: stop.set()) for sig in (signal.SIGINT, signal.SIGTERM)}
    watcher.start()
    sweeper.start()
    out.print("watching " + ", ".join(map(str, chosen)))
    try:
        while not stop.wait(0.5):
            check_database_file(s.db_url)  # deleted or replaced: stop with an error line
    finally:
        watcher.stop()
        dispatcher.close()
        sweeper.stop()
        for sig, handler in previous.items():  # the caller's Ctrl-C again (an in-process caller keeps working)
            signal.signal(sig, handler)


@app.command(context_settings={"allow_extra_args": True, "ignore_unknown_options": True})
def worker(ctx: typer.Context) -> None:
    """Start a Celery worker on the gpu queue with the pipeline's defaults (extra flags pass through)."""
    from pipeline.broker.client import broker_reachable, resolve_broker_url
    from pipeline.service.runner import worker_command

    s = settings()
    broker = resolve_broker_url(s)
    if broker is None:
        raise UserError("no broker: set PIPELINE_BROKER_URL, or start `pipeline run` which embeds one")
    if not broker_reachable(broker, timeout=5.0):
        raise BrokerUnavailable(
            f"the broker {broker} does not answer; start Redis or fix --broker-url / PIPELINE_BROKER_URL"
        )
    os.environ["PIPELINE_BROKER_URL"] = broker
    os.environ.setdefault("PYTORCH_NVML_BASED_CUDA_CHECK", "1")
    command = worker_command(f"pipeline-{os.getpid()}@%h", list(ctx.args))
    os.execv(command[0], command)


@app.command(context_settings={"allow_extra_args": True, "ignore_unknown_options": True})
def flower(ctx: typer.Context, port: Annotated[int, typer.Option("--port")] = 5555) -> None:
    """Start Flower against the configured (or running embedded) broker; extra flags pass through.

    It asks for a user and password (generated once and printed; PIPELINE_FLOWER_AUTH to choose)
    and listens on 127.0.0.1 unless PIPELINE_FLOWER_ADDRESS says otherwise.
    """
    from pipeline.broker.client import resolve_broker_url
    from pipeline.service.ports import ensure_port_free
    from pipeline.service.runner import flower_command, flower_env

    s = settings()
    ensure_port_free(port, s.flower_address, option="--port")
    broker = resolve_broker_url(s)
    if broker is None:
        raise UserError("no broker: set PIPELINE_BROKER_URL, or start `pipeline run`")
    env, login = flower_env(s, {**os.environ, "PIPELINE_BROKER_URL": broker})
    out.print(f"flower: http://{s.flower_address}:{port} ({login})")
    command = flower_command(port, list(ctx.args), s.flower_address)
    os.execve(command[0], command, env)
