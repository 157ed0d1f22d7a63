"""Benchmark the first import: content hash speed, ingest rate, first batch, memory.

    python bench/bench_ingest.py [--large 40] [--small 3000] [--rounds 5] [--cache both]
                                 [--work-dir DIR] [--out bench/out/ingest.json]

1. Hash speed in this process, one core, over a 64 MiB buffer in memory: SHA-256, BLAKE2b,
   BLAKE3 (the pipeline's), and xxHash3-128 when the ``xxhash`` package is installed.
2. Generates ``--large`` real-sized JPEGs (5-8 MB, 12-24 MP) and ``--small`` small JPEGs (about
   8 KB); every file has distinct bytes; written, then synced to disk.
3. For each set and cache state, ``--rounds`` rounds over the same files, back to back in each
   round (which goes first rotates): the plain hash loop (``content_hash`` over every file), the
   read-ahead hash loop (``hash_files``: reads as the ingest reads, the next files read ahead;
   the reference for the ingest's ratio) and the ingestor in batches (``files_ready`` per batch
   of 256 files or 256 MB, what the watcher hands on in a first import) into a fresh SQLite
   database. Per round: wall time, MB/s, files/s, the process's CPU time per file and per MB
   (all threads), the load average, and the ratios loop time / ingest time; then the medians.
   One thread each. ``warm``: the files are in the page cache (read just before); ``cold``: each
   timed pass starts after ``posix_fadvise(DONTNEED)`` dropped them, so it reads from the disk.
   Interleaving is what makes the ratio fair on a shared machine: every part of a round meets
   about the same load.
4. Once, warm: the ingestor one file at a time (``file_ready``, a file dropped in a watched
   folder), for comparison.
5. The watcher on the small set as a first import (``pipeline watch`` minus the broker: the
   ingestor's sender only counts): seconds from start to the first id handed to the sender (the
   first batch leaves then), to the last, CPU time, and the peak resident memory of the process.

Prints the figures and writes them as JSON. Not a test: nothing is asserted.
"""

from __future__ import annotations

import argparse
import hashlib
import io
import json
import os
import platform
import shutil
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np
import psutil

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))


def hash_speeds(size: int = 64 << 20) -> dict[str, float]:
    """MB/s of each hash over ``size`` random bytes (best of 3)."""
    from blake3 import blake3

    data = os.urandom(size)
    kinds: dict[str, Any] = {"sha256": hashlib.sha256, "blake2b": hashlib.blake2b, "blake3": blake3}
    try:
        import xxhash

        kinds["xxh3_128"] = xxhash.xxh3_128
    except ImportError:
        pass
    speeds = {}
    for name, make in kinds.items():
        best = float("inf")
        for _ in range(3):
            t = time.perf_counter()
            make(data).hexdigest()
            best = min(best, time.perf_counter() - t)
        speeds[name] = round(size / best / 1e6, 1)
    return speeds


def jpeg_bytes(width: int, height: int, seed: int, quality: int) -> bytes:
    """A photo-like JPEG: smooth gradients plus sensor-like noise (compresses like a photo)."""
    from PIL import Image

    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:height, 0:width].astype(np.float32)
    base = np.stack([x / width * 255, y / height * 255, (x + y) / (width + height) * 255], axis=-1)
    noise = rng.normal(0, 18, size=base.shape).astype(np.float32)
    pixels = np.clip(base + noise, 0, 255).astype(np.uint8)
    out = io.BytesIO()
    Image.fromarray(pixels).save(out, format="JPEG", quality=quality)
    return out.getvalue()


def with_comment(jpeg: bytes, text: str) -> bytes:
    """The same JPEG with a COM segment after SOI: distinct bytes, still a valid image."""
    payload = text.encode()
    return jpeg[:2] + b"\xff\xfe" + (len(payload) + 2).to_bytes(2, "big") + payload + jpeg[2:]


def make_files(folder: Path, count: int, bases: list[bytes], prefix: str) -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for i in range(count):
        path = folder / f"{i // 1000:03d}" / f"{prefix}_{i:06d}.jpg"
        path.parent.mkdir(exist_ok=True)
        path.write_bytes(with_comment(bases[i % len(bases)], f"{prefix} {i}"))
        paths.append(path)
    return paths


def drop_cache(paths: list[Path]) -> None:
    """Ask the kernel to drop these files' pages from the page cache (``posix_fadvise
    DONTNEED``; the files were synced after writing, so no dirty page stays behind)."""
    for path in paths:
        fd = os.open(path, os.O_RDONLY)
        try:
            os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
        finally:
            os.close(fd)


def timed(paths: list[Path], run: Any, cold: bool) -> dict[str, float]:
    """Run ``run()`` once over ``paths`` (dropped from the page cache first when ``cold``):
    wall seconds, CPU seconds of this process (all threads), load average at the start."""
    if cold:
        drop_cache(paths)
    total = sum(p.stat().st_size for p in paths)
    load = os.getloadavg()[0]
    wall, cpu = time.perf_counter(), time.process_time()
    run()
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    return {
        "files": len(paths),
        "mb": round(total / 1e6, 1),
        "s": round(wall, 3),
        "mb_per_s": round(total / wall / 1e6, 1),
        "files_per_s": round(len(paths) / wall, 1),
        "cpu_s": round(cpu, 3),
        "cpu_ms_per_file": round(cpu / len(paths) * 1e3, 4),
        "cpu_ms_per_mb": round(cpu / (total / 1e6) * 1e3, 3),
        "load_1min": round(load, 2),
    }


def hash_loop(paths: list[Path]) -> None:
    """The plain reference: :func:`content_hash` over every file, one after the other."""
    from pipeline.photos.files import content_hash

    for path in paths:
        content_hash(path)


def hash_loop_read_ahead(paths: list[Path]) -> None:
    """The reference that reads as the ingest reads: :func:`hash_files` (the next files read
    ahead while one is hashed; one thread)."""
    from pipeline.photos.files import hash_files

    for _ in hash_files(paths):
        pass


class CountingSender:
    """The dispatcher's place: counts ids and notes when the first one came."""

    def __init__(self) -> None:
        self.count = 0
        self.first_at: float | None = None
        self.last_at: float | None = None
        self.lock = threading.Lock()

    def add(self, photo_id: int) -> None:
        with self.lock:
            now = time.perf_counter()
            self.first_at = self.first_at or now
            self.last_at = now
            self.count += 1


def fresh_database(work: Path, name: str) -> str:
    from pipeline.store import db

    url = f"sqlite:///{work / name}"
    db.upgrade(url)
    return url


def ingestor_on(url: str) -> Any:
    """An ingestor on ``url`` whose sender only counts."""
    from pipeline.ingest.ingestor import Ingestor

    return Ingestor(CountingSender(), db_url=url)


def watcher_batches(paths: list[Path]) -> list[list[Path]]:
    """``paths`` cut as the watcher cuts ready files that queue up, as in a first import
    (:func:`batch_full`: 256 files or 256 MB); made before the timing (the watcher knows the
    sizes from its own stat)."""
    from pipeline.ingest.watcher import batch_full

    batches: list[list[Path]] = [[]]
    size = 0
    for path in paths:
        if batch_full(len(batches[-1]), size):
            batches.append([])
            size = 0
        batches[-1].append(path)
        size += path.stat().st_size
    return batches


def ingest_run(ingestor: Any, batches: list[list[Path]], batched: bool) -> None:
    """``Ingestor.files_ready`` per batch, or ``file_ready`` per file (a file dropped in a
    watched folder)."""
    for batch in batches:
        if batched:
            ingestor.files_ready(batch)
        else:
            for path in batch:
                ingestor.file_ready(path)


LOOPS = {"hash_loop": hash_loop, "hash_loop_read_ahead": hash_loop_read_ahead}


def interleaved(work: Path, name: str, paths: list[Path], rounds: int, cold: bool) -> dict[str, Any]:
    """``rounds`` rounds over the same files: the plain hash loop, the read-ahead hash loop and
    the batched ingest back to back in each (which goes first rotates), each ingest into a fresh
    database. The figures are the medians of the rounds' ratios (loop time / ingest time): all
    parts of a round see about the same machine load. ``ratio`` compares with the loop that reads
    as the ingest does (read-ahead), ``ratio_plain`` with the plain loop."""
    warm_up, paths = paths[0], paths[1:]
    batches = watcher_batches(paths)
    out: list[dict[str, Any]] = []
    label = f"{name} {'cold' if cold else 'warm'}"
    parts = [*LOOPS, "ingest_batched"]
    for r in range(rounds):
        ingestor = ingestor_on(fresh_database(work, f"{name}-{'cold' if cold else 'warm'}-{r}.db"))
        ingestor.file_ready(warm_up)  # engine, first connection, first query: not timed
        got: dict[str, Any] = {}
        for part in parts[r % 3 :] + parts[: r % 3]:
            if part in LOOPS:
                got[part] = timed(paths, lambda loop=LOOPS[part]: loop(paths), cold)
            else:
                got[part] = timed(paths, lambda i=ingestor: ingest_run(i, batches, batched=True), cold)
        got["ratio"] = round(got["hash_loop_read_ahead"]["s"] / got["ingest_batched"]["s"], 3)
        got["ratio_plain"] = round(got["hash_loop"]["s"] / got["ingest_batched"]["s"], 3)
        out.append(got)
        print(
            f"  {label} round {r + 1}: "
            + "; ".join(
                f"{part} {got[part]['mb_per_s']} MB/s {got[part]['files_per_s']} files/s "
                f"(CPU {got[part]['cpu_ms_per_file']} ms/file, load {got[part]['load_1min']})"
                for part in parts
            )
            + f"; ingest = {got['ratio']:.0%} of the read-ahead loop, {got['ratio_plain']:.0%} of the plain loop"
        )

    def median(key: str, part: str | None = None) -> float:
        return float(statistics.median(r[key] if part is None else r[part][key] for r in out))

    summary = {
        "rounds": out,
        "median_ratio": median("ratio"),
        "median_ratio_plain": median("ratio_plain"),
        "median": {
            part: {k: median(k, part) for k in ("mb_per_s", "files_per_s", "cpu_ms_per_file", "cpu_ms_per_mb")}
            for part in parts
        },
    }
    print(
        f"  {label}: median ratio {summary['median_ratio']:.0%} of the read-ahead loop, "
        f"{summary['median_ratio_plain']:.0%} of the plain loop; {summary['median']}"
    )
    return summary


def watcher_first_import(folder: Path, count: int, url: str) -> dict[str, float]:
    """Start a watcher on a full folder; time the first and last registered photo; peak RSS."""
    from pipeline.config import Settings
    from pipeline.ingest.ingestor import Ingestor, make_watcher

    sender = CountingSender()
    ingestor = Ingestor(sender, db_url=url)
    proc = psutil.Process()
    rss0 = peak = proc.memory_info().rss
    watcher = make_watcher([folder], ingestor, Settings(rescan_interval=0))
    load = os.getloadavg()[0]
    t0, cpu0 = time.perf_counter(), time.process_time()
    watcher.start()
    try:
        deadline = time.monotonic() + 1800
        while sender.count < count and time.monotonic() < deadline:
            time.sleep(0.05)
            peak = max(peak, proc.memory_info().rss)
    finally:
        watcher.stop()
    cpu = time.process_time() - cpu0
    first = (sender.first_at or t0) - t0
    last = (sender.last_at or t0) - t0
    return {
        "files": sender.count,
        "first_id_s": round(first, 2),
        "last_id_s": round(last, 2),
        "files_per_s_after_first": round((sender.count - 1) / max(1e-9, last - first), 1),
        "rss_start_mib": round(rss0 / 2**20, 1),
        "rss_peak_mib": round(peak / 2**20, 1),
        "cpu_ms_per_file": round(cpu / max(1, sender.count) * 1e3, 4),
        "load_1min": round(load, 2),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--large", type=int, default=40, help="5-8 MB JPEGs (at least 2)")
    parser.add_argument("--small", type=int, default=3000, help="small JPEGs (about 8 KB)")
    parser.add_argument(
        "--rounds", type=int, default=5, help="interleaved hash-loop/ingest rounds per set and cache state"
    )
    parser.add_argument("--cache", choices=("warm", "cold", "both"), default="both")
    parser.add_argument("--work-dir", type=Path, default=None, help="where the files go (default: a temporary folder)")
    parser.add_argument("--out", type=Path, default=REPO / "bench" / "out" / "ingest.json")
    args = parser.parse_args()

    report: dict[str, Any] = {"machine": platform.node(), "cpus": os.cpu_count(), "load_at_start": os.getloadavg()}
    report["hash_mb_per_s"] = hash_speeds()
    print("hash MB/s (one core, in memory):", report["hash_mb_per_s"])

    if args.work_dir is not None:
        args.work_dir.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix="bench-ingest-", dir=args.work_dir))
    caches = [args.cache] if args.cache != "both" else ["warm", "cold"]
    if "cold" in caches and not hasattr(os, "posix_fadvise"):
        print("no posix_fadvise on this OS: cold-cache rounds skipped")
        caches.remove("cold")
    try:
        large_bases = [jpeg_bytes(w, h, seed, q) for seed, (w, h, q) in enumerate([(4000, 3000, 90), (6000, 4000, 85)])]
        small_bases = [jpeg_bytes(160, 120, seed, 85) for seed in range(4)]
        print("large JPEG sizes (MB):", [round(len(b) / 1e6, 1) for b in large_bases])
        sets = {
            "large": make_files(work / "large", args.large, large_bases, "big"),
            "small": make_files(work / "small", args.small, small_bases, "small"),
        }
        os.sync()  # no dirty pages: DONTNEED can drop every page of a cold round
        for name, paths in sets.items():
            report[name] = {}
            for cache in caches:
                report[name][cache] = interleaved(work, name, paths, args.rounds, cache == "cold")
            ingestor = ingestor_on(fresh_database(work, f"{name}-one-by-one.db"))
            ingestor.file_ready(paths[0])
            one = timed(paths[1:], lambda i=ingestor, p=paths[1:]: ingest_run(i, [p], batched=False), cold=False)
            report[name]["warm_one_by_one"] = one
            print(f"  {name} warm, one file at a time: {one['mb_per_s']} MB/s {one['files_per_s']} files/s")
        first = watcher_first_import(work / "small", args.small, fresh_database(work, "watch.db"))
        report["watcher_first_import_small"] = first
        print("watcher, first import of the small set:", first)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    report["load_at_end"] = os.getloadavg()
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2))
    print(f"written {args.out}")


if __name__ == "__main__":
    main()
