"""Celery tasks: thin wrappers around pipeline.tagging.batch (the logic lives there)."""

from __future__ import annotations

import logging
from typing import Any

from celery.exceptions import SoftTimeLimitExceeded
from sqlalchemy.exc import OperationalError

from pipeline.broker.contract import TAG_TASK
from workers.celery_app import app

log = logging.getLogger(__name__)
DATABASE_GONE_RETRY_S = 30
"""A task that found its database file gone waits this long before it looks again (``pipeline
run`` stops the worker within a second; a lone ``pipeline worker`` keeps the message)."""


@app.task(
    name=TAG_TASK,
    bind=True,
    acks_late=True,
    reject_on_worker_lost=True,
    ignore_result=True,
    autoretry_for=(OperationalError,),
    retry_backoff=2,
    retry_backoff_max=60,
    retry_jitter=True,
    max_retries=5,
)
def tag_photos(self: Any, photo_ids: list[int]) -> dict[str, int]:
    """Tag (or re-match) photos by id. Results go to SQL; the return value is a small summary."""
    from pipeline.config import get_settings
    from pipeline.store.db_file import DatabaseGoneError
    from pipeline.tagging.batch import process_photos, release_claims

    settings = get_settings()
    task_id = str(self.request.id)
    try:
        outcome = process_photos([int(i) for i in photo_ids], task_id, settings)
    except DatabaseGoneError as exc:  # nothing was claimed; keep the message until someone fixes it
        log.error("%s", exc)
        raise self.retry(exc=exc, countdown=DATABASE_GONE_RETRY_S, max_retries=None) from None
    except SoftTimeLimitExceeded:
        released = release_claims(task_id)
        log.warning("soft time limit: released %d photo(s) back to the queue", released)
        raise
    summary = {
        "done": len(outcome.done),
        "failed": len(outcome.failed),
        "skipped": len(outcome.skipped),
        "missing": len(outcome.missing),
    }
    log.info("batch of %d: %s", len(photo_ids), summary)
    return summary
