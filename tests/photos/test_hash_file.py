"""hash_file: one pass over the bytes, size and mtime from the open file, and a file written while
it was read is told apart from one that held still."""

from __future__ import annotations

import hashlib
import os
import threading
from pathlib import Path

from blake3 import blake3

from pipeline.photos.files import hash_file, hash_files


def test_hash_file_gives_digest_size_and_mtime_of_a_quiet_file(tmp_path: Path) -> None:
    path = tmp_path / "photo.jpg"
    payload = os.urandom(2 * (1 << 20) + 5)  # two full read chunks and a partial one
    path.write_bytes(payload)
    st = os.stat(path)
    found = hash_file(path)
    assert found.digest == blake3(payload).hexdigest()
    assert (found.size, found.mtime, found.steady) == (len(payload), st.st_mtime, True)
    assert hash_file(str(path), "sha256").digest == hashlib.sha256(payload).hexdigest()  # str paths too


def test_hash_file_in_threads_keeps_each_threads_bytes_apart(tmp_path: Path) -> None:
    payloads = [os.urandom((1 << 20) + i * 4099) for i in range(8)]
    paths = []
    for i, payload in enumerate(payloads):
        paths.append(tmp_path / f"{i}.jpg")
        paths[-1].write_bytes(payload)
    results: dict[int, str] = {}

    def run(i: int) -> None:
        for _ in range(5):
            results[i] = hash_file(paths[i]).digest

    threads = [threading.Thread(target=run, args=(i,)) for i in range(len(paths))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert results == {i: blake3(p).hexdigest() for i, p in enumerate(payloads)}  # one buffer per thread


def test_a_file_appended_to_while_it_is_hashed_is_not_steady(tmp_path: Path) -> None:
    path = tmp_path / "growing.jpg"
    path.write_bytes(os.urandom(48 << 20))  # long enough to read that the writer gets in
    stop = threading.Event()

    def append() -> None:
        with path.open("ab", buffering=0) as handle:
            while not stop.is_set():
                handle.write(b"x" * 4096)

    writer = threading.Thread(target=append)
    writer.start()
    try:
        seen = [hash_file(path).steady for _ in range(20)]
    finally:
        stop.set()
        writer.join()
    assert not all(seen)
    assert hash_file(path).steady  # quiet again


def test_hash_files_reads_ahead_and_keeps_order_and_failures_apart(tmp_path: Path) -> None:
    sizes = [10, 5 << 20, 0, 300, 9 << 20, *range(1, 70)]  # more files and bytes than the read-ahead window
    paths: list[str | Path] = []
    payloads = {}
    for i, size in enumerate(sizes):
        path = tmp_path / f"{i}.jpg"
        payloads[i] = os.urandom(size)
        path.write_bytes(payloads[i])
        paths.append(path if i % 2 else str(path))
    paths.insert(3, tmp_path / "gone.jpg")  # never existed
    (tmp_path / "folder.jpg").mkdir()
    paths.insert(40, tmp_path / "folder.jpg")  # cannot be read as a file

    results = list(hash_files(paths))

    assert [index for index, _ in results] == list(range(len(paths)))
    failed = {index for index, found in results if isinstance(found, OSError)}
    assert failed == {3, 40}
    digests = [found.digest for _, found in results if not isinstance(found, OSError)]
    assert digests == [blake3(payloads[i]).hexdigest() for i in range(len(sizes))]
