"""From a stable file on disk to a committed ``photos`` row, then to the dispatcher.

Identity is the content hash: a photo moved or renamed inside the watched folders keeps its row
and results (same sha256); a deleted one becomes ``missing`` (results kept); a changed file is
tagged again.
"""

from __future__ import annotations

import logging
import os
import threading
from pathlib import Path
from typing import Protocol

from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col, select

from pipeline.config import Settings
from pipeline.ingest.watcher import FolderWatcher
from pipeline.photos.files import CONTENT_HASH, content_hash, hash_file, hash_files, sha256_file
from pipeline.photos.path_text import path_text
from pipeline.store import states
from pipeline.store.models import Photo, core_table, os_path
from pipeline.store.states import PhotoState

log = logging.getLogger(__name__)


class Sender(Protocol):
    def add(self, photo_id: int) -> None: ...


def norm_path(path: Path | str) -> str:
    return os.path.abspath(os.fspath(path))


class Ingestor:
    """Receives the watcher's callbacks; one instance per watcher (not thread-safe by itself:
    the watcher calls it from one dispatcher thread)."""

    def __init__(self, sender: Sender | None, db_url: str | None = None) -> None:
        self.sender = sender
        self.db_url = db_url
        self.registered = 0
        self._deferred: dict[str, None] = {}  # stable files not registered because storage was full
        self._deferred_lock = threading.Lock()
        self._legacy: bool | None = None  # rows with SHA-256 hashes left? (None: not asked yet)

    def _session(self) -> Session:
        """A session on the database, after checking its file is still the one opened
        (raises :class:`pipeline.store.db_file.DatabaseGoneError`)."""
        from pipeline.store.db import get_engine
        from pipeline.store.db_file import check_database_file

        engine = get_engine(self.db_url)
        check_database_file(str(engine.url))
        return Session(engine, expire_on_commit=False)

    def file_ready(self, path: Path) -> int | None:
        """Register a stable file; returns the photo id if work was queued for it. When the
        storage is full the file is remembered and registered by :meth:`retry_deferred`."""
        from pipeline.store.storage_full import is_storage_full

        try:
            photo_id = self._register(path)
        except Exception as exc:
            if not is_storage_full(exc):
                raise
            with self._deferred_lock:
                first = not self._deferred
                self._deferred[norm_path(path)] = None
            if first:
                log.warning("storage full: new photos wait and are registered once there is room again")
            return None
        return photo_id

    def files_ready(self, paths: list[Path]) -> list[int]:
        """Register many stable files (a first import); returns the ids queued, in order.

        Plain new files (no row at their path, no row with their bytes) are inserted in one
        transaction and handed to the sender after its commit; a file written while it was
        hashed is left out (the watcher reports it again once it holds still); every other file
        (changed, moved, back from missing, or any failure of the batch) goes through
        :meth:`file_ready`. A file that fails there is logged and skipped: the rest of the
        batch is still registered.
        """
        keys = list(dict.fromkeys(norm_path(p) for p in paths))
        inserted: dict[str, int | None] = {}
        try:
            inserted = self._insert_new(keys)
        except Exception as exc:  # storage full, a racing watcher, ...: the careful path decides
            log.info("batch of %d files registered one by one (%s)", len(keys), exc)
        queued = []
        for key in keys:
            if key in inserted:
                photo_id = inserted[key]
                if photo_id is not None:
                    self.registered += 1
                    if self.sender is not None:
                        self.sender.add(photo_id)
            else:
                try:
                    photo_id = self.file_ready(Path(key))
                except Exception as exc:  # this file only: the others of the batch go on
                    log.warning("%s: could not register it: %s", path_text(key)[0], exc)
                    continue
            if photo_id is not None:
                queued.append(photo_id)
        return queued

    def _insert_new(self, keys: list[str]) -> dict[str, int | None]:
        """Insert ``queued`` rows for the plain new files among ``keys`` in one transaction
        (committed; Core statements: the ORM's per-object cost was most of a small file's time).

        Returns {key: photo id} for the rows inserted, and {key: None} for files that changed
        while they were hashed (not inserted: the watcher reports them again). Keys missing
        from the answer are the one-file path's business. Each new file is read once, the next
        ones read ahead meanwhile (:func:`hash_files`); its size and mtime come from the open file,
        not from another ``stat``.
        """
        texts = {key: path_text(key) for key in keys}
        answer: dict[str, int | None] = {}
        with self._session() as session:
            if not keys or self._legacy_rows(session):
                return {}  # a move of an old row is found by its SHA-256: one by one
            table = core_table(Photo)
            connection = session.connection()
            wanted = [text for text, _ in texts.values()]
            known = set(connection.execute(select(table.c.path).where(table.c.path.in_(wanted))).scalars())
            hashed = {}
            new = [key for key in keys if texts[key][0] not in known]
            for index, found in hash_files(new):
                key = new[index]
                if isinstance(found, OSError):
                    continue  # vanished or unreadable: the one-file path decides and says why
                if found.steady:
                    hashed[key] = found
                else:
                    answer[key] = self._changing(texts[key][0])
            if not hashed:
                return answer
            hashes = list({found.digest for found in hashed.values()})
            same_bytes = set(connection.execute(select(table.c.sha256).where(table.c.sha256.in_(hashes))).scalars())
            fresh = [key for key, found in hashed.items() if found.digest not in same_bytes]
            files = [
                {
                    "path": texts[key][0],
                    "path_bytes": texts[key][1],
                    "sha256": hashed[key].digest,
                    "hash_kind": CONTENT_HASH,
                    "size": hashed[key].size,
                    "mtime": hashed[key].mtime,
                }
                for key in fresh
            ]
            ids = states.insert_new_photos(session, files)
            session.commit()
        answer.update(zip(fresh, ids, strict=True))
        return answer

    @property
    def deferred(self) -> int:
        """Files waiting for room to be registered."""
        with self._deferred_lock:
            return len(self._deferred)

    def retry_deferred(self) -> int:
        """Register the files deferred by a full storage, oldest first; stops at the first one
        that still finds it full. Returns how many were registered (the sweeper calls this)."""
        from pipeline.store.storage_full import is_storage_full

        done = 0
        with self._deferred_lock:
            waiting = list(self._deferred)
        for key in waiting:
            try:
                self._register(Path(key))
            except Exception as exc:
                if is_storage_full(exc):
                    break
                log.warning("%s: could not register it: %s", key, exc)
            with self._deferred_lock:
                self._deferred.pop(key, None)
            done += 1
        if done:
            log.warning("storage has room again: registered %d photo(s) that waited", done)
        return done

    def _register(self, path: Path) -> int | None:
        """Hashes the file at most once in the current kind (:data:`CONTENT_HASH`); a row from before
        revision 0007 is compared in its own kind (SHA-256) first, so an upgrade re-tags nothing.
        The size and mtime stored are those of the read that gave the hash; a file written while it
        was read registers nothing (returns None; the watcher reports it again)."""
        key = norm_path(path)
        try:
            stat = os.stat(key)
        except FileNotFoundError:
            return None
        text, raw = path_text(key)  # a name that is not UTF-8 is stored escaped + as bytes
        with self._session() as session:
            row = session.exec(select(Photo).where(Photo.path == text)).first()
            unchanged = row is not None and row.size == stat.st_size and row.mtime == stat.st_mtime
            if row is not None and unchanged and row.state != PhotoState.MISSING:
                if row.hash_kind != CONTENT_HASH:  # unchanged since the upgrade: adopt the current hash once
                    row.sha256, row.hash_kind = content_hash(Path(key)), CONTENT_HASH
                    session.add(row)
                    session.commit()
                return None  # unchanged
            if row is not None:
                old_kind = row.hash_kind
                found = hash_file(key, old_kind)
                if not found.steady:
                    return self._changing(text)
                digest = found.digest
                if row.sha256 == digest:  # touched, or back from missing
                    if old_kind != CONTENT_HASH:
                        row.sha256, row.hash_kind = content_hash(Path(key)), CONTENT_HASH
                    row.size, row.mtime = found.size, found.mtime
                    if row.state == PhotoState.MISSING:
                        states.restore(row)
                    session.add(row)
                    session.commit()
                    return self._queue_if_needed(row)
                digest = digest if old_kind == CONTENT_HASH else content_hash(Path(key))
                states.retag(row, digest, found.size, found.mtime)
                row.hash_kind = CONTENT_HASH
                session.add(row)
                session.commit()
                return self._queue_if_needed(row)
            found = hash_file(key)
            if not found.steady:
                return self._changing(text)
            digest = found.digest
            moved = self._moved_from(session, digest, Path(key))
            if moved is not None:
                log.info("moved: %s -> %s", moved.path, text)
                moved.path, moved.path_bytes, moved.size, moved.mtime = text, raw, found.size, found.mtime
                moved.sha256, moved.hash_kind = digest, CONTENT_HASH
                if moved.state == PhotoState.MISSING:
                    states.restore(moved)
                session.add(moved)
                session.commit()
                return self._queue_if_needed(moved)
            photo = states.new_photo(text, digest, found.size, found.mtime, path_bytes=raw)
            session.add(photo)
            try:
                session.commit()
            except IntegrityError:  # another watcher registered it first
                session.rollback()
                return None
            self.registered += 1
            return self._queue_if_needed(photo)

    @staticmethod
    def _changing(text: str) -> None:
        """A file written while it was hashed: nothing registered from that read (the watcher
        reports it again once it holds still, with its new size and mtime)."""
        log.info("%s changed while it was hashed; registered once it holds still", text)

    def _moved_from(self, session: Session, digest: str, path: Path) -> Photo | None:
        """The row of a vanished file with the same bytes as ``path`` (a move), if any: by the
        current hash, then, while rows from before revision 0007 remain, by their SHA-256."""
        found = self._vanished(session, digest, CONTENT_HASH)
        if found is None and self._legacy_rows(session):
            found = self._vanished(session, sha256_file(path), "sha256")
        return found

    @staticmethod
    def _vanished(session: Session, digest: str, kind: str) -> Photo | None:
        query = select(Photo).where(col(Photo.sha256) == digest, col(Photo.hash_kind) == kind).order_by(col(Photo.id))
        for candidate in session.exec(query).all():
            if not os.path.exists(candidate.file_path):
                return candidate
        return None

    def _legacy_rows(self, session: Session) -> bool:
        """Whether rows hashed before revision 0007 remain (asked once per full rescan)."""
        if self._legacy is None:
            query = select(Photo.id).where(col(Photo.hash_kind) == "sha256").limit(1)
            self._legacy = session.exec(query).first() is not None
        return self._legacy

    def _queue_if_needed(self, photo: Photo) -> int | None:
        if photo.state == PhotoState.QUEUED and photo.id is not None:
            if self.sender is not None:
                self.sender.add(photo.id)
            return photo.id
        return None

    def file_deleted(self, path: Path) -> None:
        """Mark the photo at ``path`` missing if the file is really gone (results are kept)."""
        key = norm_path(path)
        if os.path.exists(key):
            return
        text = path_text(key)[0]
        with self._session() as session:
            row = session.exec(select(Photo).where(Photo.path == text)).first()
            if row is not None and row.id is not None and states.mark_missing(session, [row.id]):
                session.commit()
                log.info("missing: %s", text)

    def rescan_done(self, root: Path, seen: set[Path]) -> int:
        """After a full walk of ``root``: photos under it that no longer exist become missing.

        Reads three columns per row, not ORM objects: in a first import this runs while the
        batches are still being registered, and building an object per row cost a tenth of it.
        """
        self._legacy = None  # the walk converted what it could; ask again
        prefix = path_text(norm_path(root).rstrip(os.sep) + os.sep)[0]
        seen_keys = {path_text(norm_path(p))[0] for p in seen}
        table = core_table(Photo)
        query = select(table.c.id, table.c.path, table.c.path_bytes).where(
            table.c.path.startswith(prefix), table.c.state != PhotoState.MISSING.value
        )
        with self._session() as session:
            gone = [
                photo_id
                for photo_id, text, raw in session.connection().execute(query)
                if text not in seen_keys and not os.path.exists(os_path(text, raw))
            ]
            marked = len(states.mark_missing(session, gone))
            session.commit()
        return marked


def make_watcher(folders: list[Path], ingestor: Ingestor, settings: Settings) -> FolderWatcher:
    """A (not yet started) watcher on ``folders`` that feeds ``ingestor``, timed by ``settings``."""
    return FolderWatcher(
        folders,
        on_ready=ingestor.file_ready,
        on_deleted=ingestor.file_deleted,
        on_rescan=ingestor.rescan_done,
        on_ready_many=ingestor.files_ready,
        polling=settings.polling,
        poll_interval=settings.poll_interval,
        settle_seconds=settings.settle_seconds,
        confirm_seconds=settings.confirm_seconds,
        rescan_interval=settings.rescan_interval,
        follow_symlinks=settings.follow_symlinks,
    )
