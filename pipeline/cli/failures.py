"""What the user can do about an exception that escaped a command.

Our own packages raise :class:`~pipeline.errors.PipelineError` subclasses. A few failures come
from the libraries underneath and can happen in any command: the database server is down, the
broker does not answer, an optional extra is not installed, the data directory cannot be written.
:func:`as_user_error` turns exactly those into the matching ``PipelineError`` subclass (one line,
with what to do); anything else is a bug and is left alone. Library modules are looked up in
``sys.modules`` only, so this module imports nothing heavy.
"""

from __future__ import annotations

import errno
import os
import sys
from pathlib import Path

from pipeline.errors import (
    BrokerUnavailable,
    DatabaseUnavailable,
    DataDirUnusable,
    MissingExtra,
    PipelineError,
)

# The extra that installs the PyTorch stack (pyproject.toml's name for it, as data); the faces profile needs none of it.
TORCH_EXTRA = "plvm"
# Top-level module -> the extra that installs it.
EXTRAS = {
    "torch": TORCH_EXTRA,
    "transformers": TORCH_EXTRA,
    "safetensors": TORCH_EXTRA,
    "tokenizers": TORCH_EXTRA,
    "accelerate": TORCH_EXTRA,
    "diffusers": "train",
    "timm": "timm",
    "skimage": "sample",
    "matplotlib": "sample",
}

# OSError numbers that mean "this place cannot be written", whatever the command was doing.
UNWRITABLE = {
    errno.EROFS: "read-only file system",
    errno.EACCES: "permission denied",
    errno.EPERM: "operation not permitted",
    errno.EEXIST: "a file is in the way",
    errno.ENOTDIR: "a file is in the way",
    errno.ENOSPC: "no space left on the device",
    errno.EDQUOT: "disk quota exceeded",
}


def as_user_error(exc: BaseException) -> PipelineError | None:
    """The user-facing error ``exc`` stands for, or None when it is a bug (show the traceback)."""
    if isinstance(exc, PipelineError):
        return exc
    for translate in (_missing_extra, _database, _broker, _unwritable):
        found = translate(exc)
        if found is not None:
            found.__cause__ = exc
            return found
    return None


def _missing_extra(exc: BaseException) -> PipelineError | None:
    if not isinstance(exc, ModuleNotFoundError) or not exc.name:
        return None
    top = exc.name.split(".")[0]
    extra = EXTRAS.get(top)
    if extra is None:
        return None
    hint = " (the faces profile works without it)" if extra == TORCH_EXTRA else ""
    return MissingExtra(
        f"{top} is not installed: this needs the `{extra}` extra; install it with "
        f"`bash scripts/setup.sh {extra}` (or `pip install 'photo-pipeline[{extra}]'`){hint}"
    )


def _database(exc: BaseException) -> PipelineError | None:
    sa_exc = sys.modules.get("sqlalchemy.exc")
    if sa_exc is None or not isinstance(exc, sa_exc.DBAPIError) or exc.statement is not None:
        return None  # a statement that failed is not a connection problem
    from pipeline.config import get_settings

    url = get_settings().db_url
    if url.startswith("sqlite:///"):  # SQLite cannot open its file: is the folder writable at all?
        folder = Path(url[len("sqlite:///") :]).parent
        if folder.is_dir() and not os.access(folder, os.W_OK):
            return DataDirUnusable(
                f"cannot write {folder}: read-only file system or no permission; choose a writable data "
                "directory with --data-dir or PIPELINE_DATA_DIR"
            )
    if "@" in url:  # never print a password
        scheme, _, rest = url.partition("://")
        url = f"{scheme}://…@{rest.rpartition('@')[2]}"
    reason = " ".join(str(exc.orig).split()) if exc.orig is not None else str(exc)
    return DatabaseUnavailable(
        f"cannot open the database {url} ({reason}); start the database server, or fix "
        "--database-url / PIPELINE_DATABASE_URL / --data-dir"
    )


def _broker(exc: BaseException) -> PipelineError | None:
    kinds: list[type[BaseException]] = []
    redis_exc = sys.modules.get("redis.exceptions")
    if redis_exc is not None:
        kinds.append(redis_exc.ConnectionError)
    kombu_exc = sys.modules.get("kombu.exceptions")
    if kombu_exc is not None:
        kinds.append(kombu_exc.OperationalError)
    if not kinds or not isinstance(exc, tuple(kinds)):
        return None
    return BrokerUnavailable(
        f"the broker does not answer ({' '.join(str(exc).split())}); start Redis, fix "
        "--broker-url / PIPELINE_BROKER_URL, or unset it to use the embedded one of `pipeline run`"
    )


def _unwritable(exc: BaseException) -> PipelineError | None:
    if not isinstance(exc, OSError) or exc.errno not in UNWRITABLE or not exc.filename:
        return None
    from pipeline.config import get_settings

    path = Path(str(exc.filename)).resolve()
    in_data_dir = get_settings().data_dir in (path, *path.parents)
    what = (
        "choose a writable data directory with --data-dir or PIPELINE_DATA_DIR"
        if in_data_dir
        else "choose another place"
    )
    return DataDirUnusable(f"cannot write {exc.filename}: {UNWRITABLE[exc.errno]}; {what}")
