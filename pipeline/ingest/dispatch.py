"""Sending work to the workers, and the sweeper that re-sends what the broker lost.

The database is the source of truth: a photo row is committed as ``queued`` before its id is
sent. If the broker is down the send fails, is logged, and the row stays ``queued``; the sweeper
re-sends queued photos once the broker's queue is empty (so nothing waiting is duplicated) and
returns photos orphaned in ``processing`` (their worker died or stopped sending heartbeats) to
the queue at once.
"""

from __future__ import annotations

import logging
import threading
import time
from datetime import datetime, timedelta
from typing import Any, Protocol

from sqlalchemy import or_
from sqlmodel import col, select

from pipeline.broker.client import queue_length
from pipeline.broker.contract import QUEUE, TAG_TASK, celery_config
from pipeline.config import Settings
from pipeline.store import states
from pipeline.store.models import Photo, utcnow
from pipeline.store.states import PhotoState
from pipeline.store.storage_full import is_storage_full

log = logging.getLogger(__name__)


class Dispatcher:
    """Sends photo ids to the model queue (:data:`pipeline.broker.contract.QUEUE`) in batches of at most ``batch_size``.

    ``add`` buffers ids and a background thread flushes them when a batch is full or
    ``batch_wait`` seconds passed; ``send`` sends at once. Thread-safe.
    """

    def __init__(self, broker_url: str | None, settings: Settings) -> None:
        self.broker_url = broker_url
        self.settings = settings
        self._app: Any = None
        self._buffer: list[int] = []
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.sent = 0
        self._down = False  # the last send failed: say so once per outage, and once when it ends

    def _unreachable(self, exc: Exception) -> None:
        if not self._down:
            log.warning("broker unreachable (%s): photos stay queued and will be re-sent", exc)
        self._down = True

    def _reachable(self) -> None:
        if self._down:
            log.warning("broker reachable again: queued photos are being sent")
        self._down = False

    def _celery(self) -> Any:
        if self._app is None:
            from celery import Celery

            app = Celery("pipeline-dispatch", set_as_current=False)
            app.conf.update(
                celery_config(self.broker_url or "", self.settings.task_soft_time_limit, self.settings.task_time_limit)
            )
            self._app = app
        return self._app

    def connect(self) -> bool:
        """Open the broker connection now, so the first batch does not wait for it (about 0.1 s).
        Returns False, logging why, when there is no broker or it is unreachable."""
        if not self.broker_url:
            return False
        try:
            with self._celery().producer_or_acquire() as producer:  # the pool that send() uses
                producer.connection.ensure_connection(max_retries=1)
            self._reachable()
            return True
        except Exception as exc:  # kombu raises several types for a dead broker
            self._unreachable(exc)
            return False

    def send(self, photo_ids: list[int]) -> bool:
        """Send now (split into batches). Returns False if the broker is unreachable; the first
        failure of an outage is logged as a warning, and so is the first success after it."""
        if not photo_ids:
            return True
        if not self.broker_url:
            log.info("no broker configured or running: %d photo(s) stay queued until `pipeline run`", len(photo_ids))
            return False
        size = self.settings.batch_size
        try:
            for start in range(0, len(photo_ids), size):
                batch = photo_ids[start : start + size]
                self._celery().send_task(
                    TAG_TASK,
                    args=[batch],
                    queue=QUEUE,
                    retry=True,
                    retry_policy={"max_retries": 2, "interval_start": 0.2, "interval_step": 0.5, "interval_max": 1.0},
                )
                self.sent += len(batch)
        except Exception as exc:  # kombu raises several types for a dead broker
            self._unreachable(exc)
            return False
        self._reachable()
        return True

    def add(self, photo_id: int) -> None:
        """Buffer one id for the next batch (starts the flusher thread on first use)."""
        with self._lock:
            self._buffer.append(photo_id)
            full = len(self._buffer) >= self.settings.batch_size
            if self._thread is None:
                self._thread = threading.Thread(target=self._flusher, name="dispatch-flusher", daemon=True)
                self._thread.start()
        if full:
            self._wake.set()

    def flush(self) -> None:
        with self._lock:
            batch, self._buffer = self._buffer, []
        self.send(batch)

    def _flusher(self) -> None:
        while not self._stop.is_set():
            self._wake.wait(self.settings.batch_wait)
            self._wake.clear()
            self.flush()

    def close(self) -> None:
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(5)
        self.flush()


def send_requeued(settings: Settings, photo_ids: list[int]) -> bool:
    """Send photos a user's change re-queued to the workers now, if a broker is reachable (the
    configured one, or a running ``pipeline run``'s embedded one). False: they stay ``queued`` and
    the next ``pipeline run`` (or its sweeper) sends them."""
    from pipeline.broker.client import resolve_broker_url

    dispatcher = Dispatcher(resolve_broker_url(settings), settings)
    try:
        return dispatcher.send(photo_ids)
    finally:
        dispatcher.close()


def sweep(settings: Settings, dispatcher: Dispatcher, db_url: str | None = None) -> dict[str, int]:
    """One sweeper pass. Returns counts of photos returned from ``processing`` and re-sent.

    Orphaned claims go back to the queue and are sent again at once, one photo per task (so a
    photo that kills its worker takes no other photo's attempts with it): a claim whose owner
    ran on this host and is gone, or whose heartbeat is older than ``stale_after``
    (:mod:`pipeline.store.claim_owner`). Queued photos the broker does not hold are re-sent once
    its queue is empty. Raises :class:`pipeline.store.db_file.DatabaseGoneError` before writing
    when the SQLite file was deleted or replaced. Side effects: database updates; Celery messages.
    """
    from pipeline.store.db_file import check_database_file

    check_database_file(db_url or settings.db_url)
    now = utcnow()
    orphans = release_orphaned_claims(settings, db_url)
    for photo_id in orphans:
        if not dispatcher.send([photo_id]):
            break  # broker down: they stay queued and are re-sent below once it is back
    if orphans:
        log.info("returned %d photo(s) from dead or silent workers to the queue", len(orphans))
    waiting = queue_length(dispatcher.broker_url) if dispatcher.broker_url else None
    resent = 0
    if waiting == 0:
        ids = _claim_unsent(now - timedelta(seconds=settings.resend_after), now, db_url)
        if ids and dispatcher.send(ids):
            resent = len(ids)
            log.info("re-sent %d queued photo(s) the broker did not hold", resent)
    return {"orphaned": len(orphans), "resent": resent}


def release_orphaned_claims(settings: Settings, db_url: str | None = None) -> list[int]:
    """Return photos held by dead or silent workers to ``queued``; returns their ids.

    A claim is orphaned when its owner ran on this host and its process is gone, or when its
    heartbeat (``claimed_at``) is older than ``stale_after``. Each row is released only if the
    same task still holds it, so a claim taken meanwhile by a live worker is left alone.
    """
    from pipeline.store.claim_owner import owner_is_gone
    from pipeline.store.db import session_scope

    now = utcnow()
    processing = col(Photo.state) == PhotoState.PROCESSING.value
    with session_scope(db_url) as session:
        owners = session.exec(select(col(Photo.claimed_owner)).where(processing).distinct()).all()
        gone = [owner for owner in owners if owner_is_gone(owner)]
        cutoff = now - timedelta(seconds=settings.stale_after)
        silent = or_(col(Photo.claimed_at).is_(None), col(Photo.claimed_at) < cutoff)
        condition = or_(silent, col(Photo.claimed_owner).in_(gone)) if gone else silent
        candidates = session.exec(select(col(Photo.id), col(Photo.claimed_by)).where(processing, condition)).all()
        return [
            photo_id
            for photo_id, task_id in candidates
            if photo_id is not None and states.release_orphan(session, photo_id, task_id, queued_at=now)
        ]


def _claim_unsent(cutoff: datetime, now: datetime, db_url: str | None) -> list[int]:
    """Ids of photos queued before ``cutoff`` (or never sent), marked as sent ``now``."""
    from pipeline.store.db import session_scope

    with session_scope(db_url) as session:
        return states.take_queued_for_sending(session, queued_before=cutoff, now=now)


def send_all_queued(settings: Settings, dispatcher: Dispatcher, db_url: str | None = None) -> int:
    """Send every queued photo now (at start, when the broker may have lost everything)."""
    from pipeline.store.db import session_scope

    with session_scope(db_url) as session:
        ids = states.take_queued_for_sending(session)
    if ids and dispatcher.send(ids):
        return len(ids)
    return 0


class Deferred(Protocol):
    def retry_deferred(self) -> int: ...


class Sweeper(threading.Thread):
    """Runs :func:`sweep` every ``settings.sweep_interval`` seconds until stopped; then asks
    ``deferred`` (the ingestor) to register files it could not register while storage was full."""

    def __init__(
        self, settings: Settings, dispatcher: Dispatcher, db_url: str | None = None, deferred: Deferred | None = None
    ) -> None:
        super().__init__(name="sweeper", daemon=True)
        self.settings, self.dispatcher, self.db_url, self.deferred = settings, dispatcher, db_url, deferred
        self._stop_event = threading.Event()

    def run(self) -> None:
        from pipeline.store.db_file import DatabaseGoneError

        while not self._stop_event.wait(self.settings.sweep_interval):
            try:
                sweep(self.settings, self.dispatcher, self.db_url)
                if self.deferred is not None:
                    self.deferred.retry_deferred()
            except DatabaseGoneError as exc:  # writing on would go into the void
                log.info("sweeper stopped: %s", exc)  # the runner or `watch` reports it
                return
            except Exception as exc:  # never let the sweeper die
                if is_storage_full(exc):  # the ingestor and the workers already said so
                    log.info("sweeper pass skipped: storage full")
                    continue
                log.exception("sweeper pass failed")
                time.sleep(1)

    def stop(self) -> None:
        self._stop_event.set()
        self.join(10)
