"""Benchmark the `faces` pipeline end to end against a plain loop with the same model.

    python bench/bench_faces.py [--n 200] [--latency-n 30] [--out bench/out/faces.json]

1. Generates N photos with faces (the public-domain sample people, varied crops/flips/pairs).
2. Plain loop: decode + detect + match + caption for each file in one Python process.
3. Pipeline throughput: `pipeline run` (embedded Redis, one worker, watcher, SQLite) on an empty
   folder; all N files are dropped at once; photos/s = N / (last row done - first file dropped).
4. Drop-to-row latency: photos dropped one per second; latency = ``photos.done_at`` minus the
   moment the file was completely written; p50/p95/max.
5. Peak resident memory of each process (pipeline run, Celery worker main and pool child,
   redis-server), sampled every 0.2 s.

Prints the figures and writes them as JSON. Not a test: nothing is asserted.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from datetime import UTC
from pathlib import Path

import numpy as np
import psutil

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))


def make_photos(folder: Path, n: int, seed: int = 0) -> list[Path]:
    """N distinct JPEGs with 0-3 faces (sample people); returns their paths."""
    from pipeline.datasets import sample_album as sample

    rng = np.random.default_rng(seed)
    a, g, coffee = sample.astronaut(), sample.grace_hopper(), sample.no_face()
    bases = [
        a,
        g,
        sample.flip(a),
        sample.flip(g),
        sample.side_by_side(a, g),
        sample.side_by_side(g, sample.flip(a)),
        sample.crop(a, 0.0, 0.1, 0.8, 0.9),
        coffee,
    ]
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for i in range(n):
        img = bases[i % len(bases)].copy()
        img[-6:, :, :] = rng.integers(0, 255, size=3)  # distinct bytes per photo
        paths.append(sample.save(img, folder / f"p{i:04d}.jpg"))
    return paths


def plain_loop(paths: list[Path], refs: list[Path]) -> float:
    """Photos/s of decode + detect + match + caption in a plain loop (same model, same files)."""
    from pipeline.photos.decode import decode_photo
    from pipeline.profiles.sentences import people_caption
    from pipeline.recognition.faces import get_face_model
    from pipeline.recognition.matching import assign_people, person_scores

    model = get_face_model()
    ref_embs = np.stack([model.detect(np.asarray(decode_photo(r, 10**9).image))[0].embedding for r in refs])
    names = {1: "Eileen", 2: "Grace"}
    start = time.perf_counter()
    for path in paths:
        photo = decode_photo(path, 120_000_000)
        faces = model.detect(np.asarray(photo.image))
        if faces:
            scores, ids = person_scores(np.stack([f.embedding for f in faces]), ref_embs, [1, 2])
            matches = assign_people(scores, ids, 0.363)
            people_caption(
                [names[m.person_id] for m in matches if m.person_id], sum(m.person_id is None for m in matches)
            )
        else:
            people_caption([], 0)
    return len(paths) / (time.perf_counter() - start)


class MemorySampler(threading.Thread):
    """Peak RSS (MiB) per process role under a root pid."""

    def __init__(self, root_pid: int) -> None:
        super().__init__(daemon=True)
        self.root = psutil.Process(root_pid)
        self.peaks: dict[str, float] = {}
        self.stop_event = threading.Event()

    @staticmethod
    def role(proc: psutil.Process, root: psutil.Process) -> str:
        cmd = " ".join(proc.cmdline())
        if proc.pid == root.pid:
            return "pipeline run (watcher, dispatcher)"
        if "redis-server" in cmd:
            return "redis-server (embedded)"
        if "celery" in cmd and "worker" in cmd:
            parent = proc.parent()
            parent_cmd = " ".join(parent.cmdline()) if parent else ""
            return "celery worker (pool child)" if "celery" in parent_cmd else "celery worker (main)"
        if "celery" in cmd and "flower" in cmd:
            return "flower"
        return "celery worker (pool child)"

    def run(self) -> None:
        while not self.stop_event.wait(0.2):
            try:
                procs = [self.root, *self.root.children(recursive=True)]
                for proc in procs:
                    rss = proc.memory_info().rss / 2**20
                    role = self.role(proc, self.root)
                    self.peaks[role] = max(self.peaks.get(role, 0.0), rss)
            except psutil.Error:
                continue


def _done_times(db: Path) -> dict[str, float]:
    import sqlite3

    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    try:
        rows = conn.execute("SELECT path, done_at FROM photos WHERE state IN ('done', 'failed')").fetchall()
    finally:
        conn.close()
    from datetime import datetime

    out = {}
    for path, done_at in rows:
        stamp = datetime.fromisoformat(str(done_at))
        if stamp.tzinfo is None:
            stamp = stamp.replace(tzinfo=UTC)
        out[Path(path).name] = stamp.timestamp()
    return out


def pipeline_run(
    data: Path, album: Path, drop: callable, expected: int, timeout: float
) -> tuple[dict[str, float], dict[str, float], float]:  # type: ignore[valid-type]
    """Start `pipeline run`, call drop(), wait for `expected` rows; returns (done times, drop times, peaks)."""
    env = dict(os.environ, PIPELINE_DATA_DIR=str(data))
    proc = subprocess.Popen(
        [sys.executable, "-m", "pipeline", "run", str(album)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    sampler = MemorySampler(proc.pid)
    sampler.start()
    try:
        time.sleep(6)  # worker start-up is not part of the measurement
        dropped = drop()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            done = _done_times(data / "pipeline.db")
            if len(done) >= expected:
                break
            time.sleep(0.2)
        return done, dropped, sampler.peaks  # type: ignore[return-value]
    finally:
        sampler.stop_event.set()
        proc.send_signal(signal.SIGINT)
        proc.wait(60)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n", type=int, default=200)
    parser.add_argument("--latency-n", type=int, default=30)
    parser.add_argument("--rate", type=float, default=1.0, help="photos per second in the latency run")
    parser.add_argument("--out", type=Path, default=REPO / "bench" / "out" / "faces.json")
    args = parser.parse_args()
    from pipeline.datasets import sample_album as sample

    work = Path(tempfile.mkdtemp(prefix="bench-faces-"))
    source = work / "source"
    paths = make_photos(source, args.n)
    refs = sample.build_sample_album(work / "sample-album", work / "refs")
    results: dict[str, object] = {"n": args.n, "cpu_count": os.cpu_count()}

    results["plain_loop_photos_per_s"] = plain_loop(paths, list(refs.values()))
    print(f"plain loop: {results['plain_loop_photos_per_s']:.2f} photos/s")

    def setup_data(name: str) -> Path:
        data = work / name
        env = dict(os.environ, PIPELINE_DATA_DIR=str(data))
        for person, ref in refs.items():
            subprocess.run(
                [sys.executable, "-m", "pipeline", "enroll", "--name", person, str(ref)],
                env=env,
                check=True,
                capture_output=True,
            )
        return data

    # Throughput: everything dropped at once.
    data, album = setup_data("data-burst"), work / "album-burst"
    album.mkdir()

    def drop_all() -> dict[str, float]:
        stamps = {}
        for path in paths:
            shutil.copyfile(path, album / path.name)
            stamps[path.name] = time.time()
        return stamps

    done, dropped, peaks = pipeline_run(data, album, drop_all, args.n, timeout=600)
    span = max(done.values()) - min(dropped.values())
    results["pipeline_photos_per_s"] = len(done) / span
    finished = sorted(done.values())
    results["burst_first_row_s"] = finished[0] - min(dropped.values())
    lo, hi = finished[len(finished) // 10], finished[(9 * len(finished)) // 10]
    results["pipeline_steady_photos_per_s"] = ((9 * len(finished)) // 10 - len(finished) // 10) / (hi - lo)
    results["pipeline_vs_plain"] = results["pipeline_photos_per_s"] / results["plain_loop_photos_per_s"]  # type: ignore[operator]
    results["burst_peak_rss_mib"] = peaks
    print(
        f"pipeline: {results['pipeline_photos_per_s']:.2f} photos/s ({len(done)}/{args.n} rows) "
        f"= {100 * results['pipeline_vs_plain']:.0f}% of the plain loop"
    )  # type: ignore[operator]
    print(
        f"  first row after {results['burst_first_row_s']:.2f} s; steady state (10th-90th percentile rows) "
        f"{results['pipeline_steady_photos_per_s']:.2f} photos/s"
    )

    # Latency: one photo per second.
    data, album = setup_data("data-latency"), work / "album-latency"
    album.mkdir()

    def drop_slowly() -> dict[str, float]:
        stamps = {}
        for path in paths[: args.latency_n]:
            tmp = album / ("." + path.name + ".tmp")
            shutil.copyfile(path, tmp)
            tmp.rename(album / path.name)  # complete file appears atomically, as sync tools do
            stamps[path.name] = time.time()
            time.sleep(1.0 / args.rate)
        return stamps

    done, dropped, peaks = pipeline_run(data, album, drop_slowly, args.latency_n, timeout=300)
    latencies = sorted(done[name] - dropped[name] for name in dropped if name in done)
    q = statistics.quantiles(latencies, n=100) if len(latencies) > 1 else latencies * 100
    results["latency_s"] = {
        "n": len(latencies),
        "p50": statistics.median(latencies),
        "p95": q[94],
        "max": latencies[-1],
    }
    results["latency_peak_rss_mib"] = peaks
    lat = results["latency_s"]
    print(
        f"drop-to-row latency at {args.rate}/s: p50 {lat['p50']:.2f} s, p95 {lat['p95']:.2f} s, max {lat['max']:.2f} s"
    )  # type: ignore[index]
    for role, mib in sorted(peaks.items()):
        print(f"peak RSS {role}: {mib:.0f} MiB")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=2))
    print(f"written {args.out}")
    shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
