"""The names of a photo's states and work kinds, as stored in ``photos.state`` and ``photos.work``.

Kept apart from :mod:`pipeline.store.states` (which owns the transitions) only so that the table
definitions can use them without an import cycle; import them from ``states``.
"""

from __future__ import annotations

from collections.abc import Iterable
from enum import StrEnum


class PhotoState(StrEnum):
    """Where a photo is in its life (the strings stored in ``photos.state``)."""

    QUEUED = "queued"  # waiting for a worker
    PROCESSING = "processing"  # claimed by a worker task (``claimed_by``)
    DONE = "done"  # results written for ``model_version`` / ``enrolment_version``
    FAILED = "failed"  # ``error`` says why
    MISSING = "missing"  # the file is gone; its results are kept


class WorkKind(StrEnum):
    """What a worker must do with a queued photo (the strings stored in ``photos.work``)."""

    TAG = "tag"  # decode, detect faces, match, describe
    REMATCH = "rematch"  # re-match the stored face embeddings, redo what depends on who is present


def check_sql(column: str, values: Iterable[str]) -> str:
    """The SQL of a CHECK constraint that ``column`` holds one of ``values`` (models, migrations)."""
    quoted = ", ".join(f"'{v}'" for v in values)
    return f"{column} IN ({quoted})"
