"""The console-script entry point: registers every command module on the app and runs it.

The one place where failures become words: a wrong argument prints the usage line and one
``error:`` line (exit 2); a problem the user can act on (a :class:`~pipeline.errors.PipelineError`,
or a library failure :func:`~pipeline.cli.failures.as_user_error` recognises: database or broker
unreachable, an extra not installed, a place that cannot be written) prints one ``error:`` line
(exit 1). ``-v`` adds the traceback. Anything else is a bug and shows its traceback.
"""

from __future__ import annotations

import sys

from typer import Abort

# typer (0.29 and later) bundles click; its exception classes are only reachable here. After a
# typer upgrade a failed import here would fail every CLI test at once.
from typer._click.exceptions import ClickException, NoArgsIsHelpError, UsageError

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
from pipeline.cli.failures import as_user_error

COMMAND_MODULES = (people, clusters, running, status, query, database, samples, models, evaluate, train, synth, web)


def _print_error(message: str) -> None:
    err.print(f"[red]error:[/] {message}", highlight=False, markup=True)


def main() -> None:
    """Run the ``pipeline`` command line (``sys.argv``); exits with the command's code."""
    verbose = any(arg in ("-v", "--verbose") for arg in sys.argv[1:])
    try:
        code = app(standalone_mode=False)
    except NoArgsIsHelpError as exc:  # plain `pipeline` or `pipeline db`: the help
        exc.show()
        sys.exit(exc.exit_code)
    except UsageError as exc:
        if exc.ctx is not None:
            err.print(exc.ctx.get_usage(), highlight=False, markup=False)
        hint = f" (see `{exc.ctx.command_path} --help`)" if exc.ctx is not None else ""
        _print_error(escape(exc.format_message()) + escape(hint))
        sys.exit(exc.exit_code)
    except ClickException as exc:  # e.g. a file argument that cannot be opened
        _print_error(escape(exc.format_message()))
        sys.exit(exc.exit_code)
    except Abort:  # Ctrl-C at a prompt
        sys.exit(130)
    except Exception as exc:
        problem = as_user_error(exc)
        if problem is None:
            raise
        if verbose:
            err.print_exception()
        _print_error(escape(str(problem)))
        sys.exit(1)
    sys.exit(code if isinstance(code, int) else 0)


def escape(text: str) -> str:
    """``text`` with rich markup disabled (paths and SQL may contain ``[...]``)."""
    from rich.markup import escape as rich_escape

    return rich_escape(text)
