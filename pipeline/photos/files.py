"""Photo files: which paths count as photos, and their content hash. Pure path work and reads;
no image library is imported.
"""

from __future__ import annotations

import hashlib
import os
import threading
from collections import deque
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path, PurePath
from typing import Any, Literal

IMAGE_SUFFIXES: frozenset[str] = frozenset({".jpg", ".jpeg", ".png", ".webp", ".heic", ".heif", ".tif", ".tiff"})
"""Lower-case suffixes of the files the pipeline tags."""

TEMP_SUFFIXES: frozenset[str] = frozenset(
    {".part", ".partial", ".crdownload", ".download", ".opdownload", ".filepart", ".tmp", ".temp", ".!qb", ".swp"}
)
"""Lower-case suffixes of files that are still being written (browsers, torrents, editors)."""

JUNK_NAMES: frozenset[str] = frozenset(
    {
        "@eadir",
        "@tmp",
        "@sharebin",
        "#recycle",
        "#snapshot",
        "$recycle.bin",
        "system volume information",
        "lost+found",
        "thumbs.db",
        "desktop.ini",
    }
)
"""Lower-case names of NAS/OS folders and files that never hold user photos."""

_CHUNK = 1 << 20  # bytes read per step when hashing
_buffers = threading.local()  # one read buffer of _CHUNK bytes per thread that hashes
PREFETCH_FILES = 32
PREFETCH_BYTES = 16 << 20
""":func:`hash_files` asks the kernel to read ahead at most this many files / bytes."""


# --------------------------------------------------------------------------------------------
# Which paths are photos


def is_ignored_name(name: str) -> bool:
    """True when one path component (a file or folder name) marks something to skip.

    Skipped: hidden names (leading ``.``: rsync ``.name.XXXXXX``, Syncthing ``.syncthing.*.tmp``,
    LibreOffice/Nextcloud ``.~lock*``, ``.DS_Store``, AppleDouble ``._*``, ``.stfolder``), names
    starting with ``~`` (Syncthing on Windows ``~syncthing~*``, Office ``~$*``), temp/partial
    suffixes (:data:`TEMP_SUFFIXES`), suffixes starting with ``~`` (``*.~tmp``, Nextcloud/OneDrive
    partials) or names ending in ``~`` (editor backups), and :data:`JUNK_NAMES` (Synology
    ``@eaDir``, ``#recycle``, ``$RECYCLE.BIN``, ``Thumbs.db``...). Case-insensitive; pure string work.
    """
    lower = name.lower()
    if not lower or lower.startswith((".", "~")) or lower.endswith("~"):
        return True
    if lower in JUNK_NAMES:
        return True
    suffix = PurePath(lower).suffix
    return suffix in TEMP_SUFFIXES or suffix.startswith(".~")


def is_candidate(path: Path, root: Path | None = None) -> bool:
    """True when ``path`` names a photo the pipeline should tag (pure string work, no I/O).

    The last component must have an image suffix (:data:`IMAGE_SUFFIXES`, case-insensitive) and no
    component may be ignored (:func:`is_ignored_name`). With ``root``, only the components below
    ``root`` are checked (so a library under ``~/.local/share`` still works) and a path outside
    ``root`` is never a candidate; without it, every component of ``path`` is checked.
    """
    if root is not None:
        try:
            parts = path.relative_to(root).parts
        except ValueError:
            return False
    else:
        parts = tuple(p for p in path.parts if p not in (path.anchor, ""))
    if not parts or PurePath(parts[-1]).suffix.lower() not in IMAGE_SUFFIXES:
        return False
    return not any(is_ignored_name(part) for part in parts)


HashKind = Literal["blake3", "sha256"]
CONTENT_HASH: HashKind = "blake3"
"""The content hash of new photo rows (``photos.sha256`` holds it, ``photos.hash_kind`` names it).

BLAKE3 because the hash is a photo's identity: change detection (same path, new bytes) and moves
and duplicates (same bytes, new path) need a hash nobody can collide on purpose, and BLAKE3 is a
cryptographic hash that ran 1.6-4x faster than SHA-256 on one core here (bench/bench_ingest.py).
Rows written before revision 0007 keep their SHA-256 (``hash_kind = 'sha256'``)."""


@dataclass(frozen=True)
class HashedFile:
    """A file's content hash and what ``fstat`` said about the open file before the read."""

    digest: str
    """Hex digest, 64 characters."""
    size: int
    """Bytes, before the read."""
    mtime: float
    """``st_mtime`` (seconds since the epoch), before the read."""
    steady: bool
    """True when size and ``st_mtime_ns`` were the same after the read as before it: the digest
    is of one version of the file. False: it was written while it was read (hash it again once
    it holds still)."""


def _read_buffer() -> bytearray:
    """This thread's read buffer (:data:`_CHUNK` bytes, made once per thread: allocating 1 MiB per
    file cost more than hashing a small photo)."""
    buffer: bytearray | None = getattr(_buffers, "buffer", None)
    if buffer is None:
        buffer = _buffers.buffer = bytearray(_CHUNK)
    return buffer


def hash_file(path: str | os.PathLike[str], kind: str = CONTENT_HASH) -> HashedFile:
    """Hash a file's bytes in one pass of :data:`_CHUNK`-byte reads (constant memory: one buffer
    per thread), with its size and mtime from the same open file (no separate ``stat``).

    ``kind``: "blake3" or "sha256". Raises ``OSError`` (e.g. ``FileNotFoundError``) when the file
    cannot be read: a vanished file is the caller's business, not a bad photo. Thread-safe; the
    reads and the hashing of large chunks release the GIL. Not ``mmap``: a file truncated while
    mapped would kill the process with SIGBUS.
    """
    if kind == "blake3":
        from blake3 import blake3

        digest: Any = blake3()
    elif kind == "sha256":
        digest = hashlib.sha256()
    else:
        raise ValueError(f"unknown hash kind {kind!r}")
    buffer = _read_buffer()
    with open(path, "rb", buffering=0) as handle, memoryview(buffer) as view:
        before = os.fstat(handle.fileno())
        while count := handle.readinto(buffer):
            digest.update(view[:count])
        after = os.fstat(handle.fileno())
    steady = (before.st_size, before.st_mtime_ns) == (after.st_size, after.st_mtime_ns)
    return HashedFile(str(digest.hexdigest()), before.st_size, before.st_mtime, steady)


def _read_ahead(path: str | os.PathLike[str]) -> int:
    """Ask the kernel to start reading ``path`` into the page cache (``posix_fadvise WILLNEED``,
    returns at once); returns its size in bytes (0 when it cannot be opened: the hash says why)."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return 0
    try:
        os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_WILLNEED)
        return os.fstat(fd).st_size
    finally:
        os.close(fd)


def hash_files(
    paths: Sequence[str | os.PathLike[str]], kind: str = CONTENT_HASH
) -> Iterator[tuple[int, HashedFile | OSError]]:
    """:func:`hash_file` over ``paths`` in order, yielding ``(index, result)``; a file that cannot
    be read yields its ``OSError`` instead and the others go on.

    While one file is hashed the kernel already reads the next ones (read-ahead of at most
    :data:`PREFETCH_FILES` files or :data:`PREFETCH_BYTES` bytes), so disk reads overlap hashing
    in one thread: 1.3x (large photos) to 1.7x (small ones) faster when the files are not in the
    page cache, about 9 % slower for small files that are (one more open per file).
    ``bench/bench_ingest.py`` measures both. Where the OS has no ``posix_fadvise``, plain reads.
    """
    ahead = hasattr(os, "posix_fadvise")
    sizes: deque[int] = deque()  # files asked for and not hashed yet
    asked = 0
    for index, path in enumerate(paths):
        while ahead and asked < len(paths) and len(sizes) < PREFETCH_FILES and sum(sizes) < PREFETCH_BYTES:
            sizes.append(_read_ahead(paths[asked]))
            asked += 1
        try:
            result: HashedFile | OSError = hash_file(path, kind)
        except OSError as exc:
            result = exc
        if sizes:
            sizes.popleft()
        yield index, result


def content_hash(path: str | os.PathLike[str], kind: str = CONTENT_HASH) -> str:
    """Hex digest (64 characters) of a file's bytes (:func:`hash_file`'s digest).

    ``kind``: "blake3" or "sha256". Raises ``OSError`` (e.g. ``FileNotFoundError``) when the file
    cannot be read: a vanished file is the caller's business, not a bad photo.
    """
    return hash_file(path, kind).digest


def sha256_file(path: Path) -> str:
    """Hex SHA-256 of a file (reference photos; photo rows before revision 0007)."""
    return content_hash(path, "sha256")
