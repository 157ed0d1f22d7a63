"""Benchmark the first import: content hash speed, ingest rate, first batch, memory.

    python bench/bench_ingest.py [--large 40] [--small 3000] [--out bench/out/ingest.json]

1. Hash speed in this process, one core, over a 64 MiB buffer in memory: SHA-256, BLAKE2b,
   BLAKE3 (the pipeline's), and xxHash3-128 when the ``xxhash`` package is installed.
2. Generates ``--large`` real-sized JPEGs (3-8 MB, 12-24 MP) and ``--small`` small JPEGs (about
   10 KB); every file has distinct bytes. Files are read from the page cache in every phase
   (just written), so the figures are CPU figures, not disk figures.
3. For each set: the file-hash loop (``content_hash`` over every file: MB/s, files/s), then the
   ingestor into a fresh SQLite database, one file at a time (``file_ready``, a file dropped in
   a watched folder) and in batches (``files_ready``, what the watcher hands on when ready files
   queue up, as in a first import): MB/s, files/s, and the ratio to the hash loop.
4. The watcher on the small set as a first import (``pipeline watch`` minus the broker: the
   ingestor's sender only counts): seconds from start to the first id handed to the sender (the
   first batch leaves then), to the last, and the peak resident memory of the process.

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


def rates(files: int, total_bytes: int, seconds: float) -> dict[str, float]:
    return {
        "files": files,
        "mb": round(total_bytes / 1e6, 1),
        "s": round(seconds, 3),
        "mb_per_s": round(total_bytes / seconds / 1e6, 1),
        "files_per_s": round(files / seconds, 1),
    }


def hash_loop(paths: list[Path]) -> dict[str, float]:
    from pipeline.photos.files import content_hash

    content_hash(paths[0])  # as in ingest_loop: the first file is not timed
    paths = paths[1:]
    total = sum(p.stat().st_size for p in paths)
    t = time.perf_counter()
    for path in paths:
        content_hash(path)
    seconds = time.perf_counter() - t
    return rates(len(paths), total, seconds)


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


def ingest_loop(paths: list[Path], url: str, batched: bool) -> dict[str, float]:
    """``Ingestor.file_ready`` per file, or ``files_ready`` per READY_BATCH files (what the
    watcher does when ready files queue up, as in a first import)."""
    from pipeline.ingest.ingestor import Ingestor
    from pipeline.ingest.watcher import READY_BATCH

    ingestor = Ingestor(CountingSender(), db_url=url)
    ingestor.file_ready(paths[0])  # warm-up (engine, first connection): not timed
    paths = paths[1:]
    total = sum(p.stat().st_size for p in paths)
    t = time.perf_counter()
    if batched:
        for start in range(0, len(paths), READY_BATCH):
            ingestor.files_ready(paths[start : start + READY_BATCH])
    else:
        for path in paths:
            ingestor.file_ready(path)
    seconds = time.perf_counter() - t
    return rates(len(paths), total, seconds)


def watcher_first_import(folder: Path, count: int, url: str) -> dict[str, float]:
    """Start a watcher on a full folder; time the first and last registered photo; peak RSS."""
    from pipeline.config import Settings
    from pipeline.ingest.ingestor import Ingestor, make_watcher

    sender = CountingSender()
    ingestor = Ingestor(sender, db_url=url)
    proc = psutil.Process()
    rss0 = peak = proc.memory_info().rss
    watcher = make_watcher([folder], ingestor, Settings(rescan_interval=0))
    t0 = time.perf_counter()
    watcher.start()
    try:
        deadline = time.monotonic() + 1800
        while sender.count < count and time.monotonic() < deadline:
            time.sleep(0.05)
            peak = max(peak, proc.memory_info().rss)
    finally:
        watcher.stop()
    first = (sender.first_at or t0) - t0
    last = (sender.last_at or t0) - t0
    return {
        "files": sender.count,
        "first_id_s": round(first, 2),
        "last_id_s": round(last, 2),
        "files_per_s_after_first": round((sender.count - 1) / max(1e-9, last - first), 1),
        "rss_start_mib": round(rss0 / 2**20, 1),
        "rss_peak_mib": round(peak / 2**20, 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--large", type=int, default=40, help="3-8 MB JPEGs (at least 2)")
    parser.add_argument("--small", type=int, default=3000, help="small JPEGs (about 10 KB)")
    parser.add_argument("--out", type=Path, default=REPO / "bench" / "out" / "ingest.json")
    args = parser.parse_args()

    report: dict[str, Any] = {"machine": platform.node(), "cpus": os.cpu_count()}
    report["hash_mb_per_s"] = hash_speeds()
    print("hash MB/s (one core, in memory):", report["hash_mb_per_s"])

    work = Path(tempfile.mkdtemp(prefix="bench-ingest-"))
    try:
        large_bases = [jpeg_bytes(w, h, seed, q) for seed, (w, h, q) in enumerate([(4000, 3000, 90), (6000, 4000, 85)])]
        small_bases = [jpeg_bytes(160, 120, seed, 85) for seed in range(4)]
        print("large JPEG sizes (MB):", [round(len(b) / 1e6, 1) for b in large_bases])
        sets = {
            "large": make_files(work / "large", args.large, large_bases, "big"),
            "small": make_files(work / "small", args.small, small_bases, "small"),
        }
        for name, paths in sets.items():
            hashed = hash_loop(paths)
            report[name] = {"hash_loop": hashed}
            line = f"{name}: hash loop {hashed['mb_per_s']} MB/s {hashed['files_per_s']} files/s"
            for mode in ("one_by_one", "batched"):
                ingested = ingest_loop(paths, fresh_database(work, f"{name}-{mode}.db"), mode == "batched")
                ratio = round(ingested["mb_per_s"] / hashed["mb_per_s"], 3)
                report[name][f"ingest_{mode}"] = {**ingested, "vs_hash_loop": ratio}
                line += f"; ingest {mode} {ingested['mb_per_s']} MB/s {ingested['files_per_s']} files/s = {ratio:.0%}"
            print(line)
        first = watcher_first_import(work / "small", args.small, fresh_database(work, "watch.db"))
        report["watcher_first_import_small"] = first
        print("watcher, first import of the small set:", first)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2))
    print(f"written {args.out}")


if __name__ == "__main__":
    main()
