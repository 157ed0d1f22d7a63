"""The console-script entry point: registers every command module on the app and runs it.

A :class:`~pipeline.errors.PipelineError` (a problem the user can act on) prints one ``error:``
line and exits 1; ``-v`` shows its traceback too.
"""

from __future__ import annotations

import sys

from pipeline.cli import (
    clusters,
    database,
    evaluate,
    models,
    people,
    query,
    running,
    samples,
    status,
    synth,
    train,
    web,
)
from pipeline.cli.app import app, err
from pipeline.errors import PipelineError

COMMAND_MODULES = (people, clusters, running, status, query, database, samples, models, evaluate, train, synth, web)


def main() -> None:
    """Run the ``pipeline`` command line (``sys.argv``)."""
    verbose = any(arg in ("-v", "--verbose") for arg in sys.argv[1:])
    try:
        app()
    except PipelineError as exc:
        if verbose:
            err.print_exception()
        err.print(f"[red]error:[/] {exc}", highlight=False)
        sys.exit(1)
