"""The one base class of the problems a user can act on.

Each package raises its own subclass (a bad photo, an unknown person, an unreachable broker, a
missing weight file, ...) with a message that says what happened and what to do. The CLI prints
any of them as one ``error:`` line and exits 1; the traceback only with ``-v``. Anything else that
escapes is a bug and is reported as such.
"""

from __future__ import annotations


class PipelineError(Exception):
    """A user-facing problem; ``str(error)`` is the whole message, ready to print."""


class ConfigError(PipelineError):
    """A setting, an environment variable or the TOML config file is wrong or missing."""


class DataDirUnusable(PipelineError):
    """The data directory (or a file in it) cannot be created or written: a file in its place,
    read-only media, no permission, a full disk."""


class DatabaseUnavailable(PipelineError):
    """The database server cannot be reached, or the database file cannot be opened."""


class BrokerUnavailable(PipelineError):
    """The Redis broker cannot be reached."""


class MissingWeights(PipelineError, FileNotFoundError):
    """A model weight file or hub snapshot is not on this machine; the message names it and the fix."""


class MissingExtra(PipelineError):
    """An optional dependency (e.g. PyTorch, which every profile but faces needs) is not installed."""
