"""Benchmark the `faces` pipeline end to end against a plain loop with the same model.

    python bench/bench_faces.py [--n 200] [--latency-n 30] [--out bench/out/faces.json]
    python bench/bench_faces.py --backlog [--n 10000] [--out bench/out/faces-backlog.json]

1. Generates N photos with faces (the public-domain sample people, varied crops/flips/pairs).
2. Plain loop: decode + detect + match + caption for each file in one Python process, with
   the same face model (its close-up pass included); wall-clock photos/s and CPU seconds per
   photo of that process (all its threads).
3. Pipeline throughput: `pipeline run` (embedded Redis, one worker, watcher, SQLite) on an empty
   folder; all N files are dropped at once; photos/s = N / (last row done - first file dropped).
4. Drop-to-row latency: photos dropped one per second; latency = ``photos.done_at`` minus the
   moment the file was completely written; p50/p95/max.
5. Peak resident memory of each process (pipeline run, Celery worker main and pool child,
   redis-server), sampled every 0.2 s.

With ``--backlog`` steps 3-4 are replaced by a backlog drain: all N files are registered as
``queued`` rows first (the pipeline's own ingestor, files outside the watched folder), then
`pipeline run` starts, sends the backlog and drains it; the rate is the rows done after the first
ones over the time from the first row done to the last, against the plain loop over a sample of
the same files (``--loop-sample``, 2,000 by default) run once before and once after the drain and
averaged, since this machine's speed drifts by up to 10 % within minutes. At ``--n 10000`` (the
issue's figure) the photos take about 1 GB of temporary space.

Every pipeline run also reports the CPU seconds per photo of the pipeline's processes (`pipeline
run` with the watcher and dispatcher, the Celery worker main and pool children, redis-server:
user + system time over the process tree, children that exited included) next to the plain
loop's, so the overhead can be read on a busy machine where the wall-clock ratio moves with the
load. Prints the figures and writes them as JSON. Not a test: nothing is asserted.
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
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC
from pathlib import Path
from typing import Any

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


def plain_loop(paths: list[Path], refs: list[Path]) -> tuple[float, float]:
    """(photos/s, CPU seconds per photo) of decode + detect + match + caption in a plain loop
    (same model, same files, the close-up pass included as in the worker)."""
    from pipeline.photos.decode import decode_photo
    from pipeline.profiles.sentences import people_caption
    from pipeline.recognition.faces import get_face_model
    from pipeline.recognition.matching import assign_people, person_scores

    model = get_face_model()
    ref_embs = np.stack([model.detect(np.asarray(decode_photo(r, 10**9).image))[0].embedding for r in refs])
    names = {1: "Eileen", 2: "Grace"}
    start, cpu = time.perf_counter(), time.process_time()
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
    wall, cpu = time.perf_counter() - start, time.process_time() - cpu
    return len(paths) / wall, cpu / len(paths)


def tree_cpu(root_pid: int) -> dict[str, float]:
    """CPU seconds (user + system) used so far per role by the process tree under ``root_pid``.

    A process's ``children_*`` times hold the children it has reaped (a recycled pool child, for
    instance), so the difference of two calls counts every process that ran in between, also
    one that exited; they are added to the role of the process that reaped them.
    """
    root = psutil.Process(root_pid)
    out: dict[str, float] = {}
    for proc in [root, *root.children(recursive=True)]:
        try:
            t = proc.cpu_times()
            role = MemorySampler.role(proc, root)
        except psutil.Error:
            continue
        out[role] = out.get(role, 0.0) + t.user + t.system + t.children_user + t.children_system
    return out


def cpu_between(before: dict[str, float], after: dict[str, float], photos: int) -> dict[str, float]:
    """CPU seconds per photo per role between two :func:`tree_cpu` readings, and ``total``."""
    roles = {role: (after.get(role, 0.0) - before.get(role, 0.0)) / max(1, photos) for role in after}
    return {**{k: round(v, 4) for k, v in sorted(roles.items())}, "total": round(sum(roles.values()), 4)}


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

    try:
        conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    except sqlite3.Error:
        return {}
    try:
        rows = conn.execute("SELECT path, done_at FROM photos WHERE state IN ('done', 'failed')").fetchall()
    except sqlite3.Error:  # not created yet
        return {}
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


def _done_count(db: Path) -> int:
    """Rows done or failed so far (a cheap poll: the times are read once, at the end)."""
    import sqlite3

    try:
        conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    except sqlite3.Error:
        return 0
    try:
        return int(conn.execute("SELECT count(*) FROM photos WHERE state IN ('done', 'failed')").fetchone()[0])
    except sqlite3.Error:  # not created yet
        return 0
    finally:
        conn.close()


@dataclass
class Run:
    """What one `pipeline run` measured."""

    done: dict[str, float]  # file name -> done_at (epoch seconds)
    dropped: dict[str, float]  # file name -> when it was dropped (empty for a backlog)
    peaks: dict[str, float]  # role -> peak RSS, MiB
    cpu_per_photo: dict[str, float]  # role -> CPU s per photo (and "total"), over the timed rows


def pipeline_run(
    data: Path, album: Path, drop: Callable[[], dict[str, float]], expected: int, timeout: float, backlog: bool = False
) -> Run:
    """Start `pipeline run` on ``album``, wait for start-up, call ``drop()``, wait for ``expected``
    rows. CPU is counted from the drop to the last row, or for a backlog (rows queued before the
    start) from the first row done to the last, per photo finished in that window."""
    env = dict(os.environ, PIPELINE_DATA_DIR=str(data))
    proc = subprocess.Popen(
        [sys.executable, "-m", "pipeline", "run", str(album)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    sampler = MemorySampler(proc.pid)
    sampler.start()
    db = data / "pipeline.db"
    try:
        if backlog:
            first_count = 0
            while not first_count and proc.poll() is None:
                time.sleep(0.05)
                first_count = _done_count(db)
            before = tree_cpu(proc.pid)
            dropped: dict[str, float] = {}
        else:
            time.sleep(6)  # worker start-up is not part of the measurement
            before, first_count = tree_cpu(proc.pid), 0
            dropped = drop()
        deadline, count = time.monotonic() + timeout, 0
        while time.monotonic() < deadline and count < expected:
            time.sleep(0.2)
            count = _done_count(db)
        cpu = cpu_between(before, tree_cpu(proc.pid), count - first_count)
        return Run(_done_times(db), dropped, dict(sampler.peaks), cpu)
    finally:
        sampler.stop_event.set()
        proc.send_signal(signal.SIGINT)
        proc.wait(60)


def register_backlog(data: Path, paths: list[Path]) -> list[int]:
    """Register ``paths`` as ``queued`` rows in the data directory's database, as a first import
    does (the pipeline's ingestor, batches of 64), without sending them anywhere."""
    from pipeline.ingest.ingestor import Ingestor

    url = f"sqlite:///{data / 'pipeline.db'}"
    ingestor = Ingestor(sender=None, db_url=url)
    ids: list[int] = []
    for start in range(0, len(paths), 64):
        ids += ingestor.files_ready(paths[start : start + 64])
    return ids


def _cpu_line(label: str, cpu: dict[str, float], plain_cpu: float) -> str:
    roles = ", ".join(f"{role} {1000 * v:.1f}" for role, v in cpu.items() if role != "total")
    return (
        f"  {label} CPU per photo: {1000 * cpu['total']:.1f} ms = {100 * cpu['total'] / plain_cpu:.0f}% of the "
        f"plain loop's {1000 * plain_cpu:.1f} ms ({roles})"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n", type=int, default=200)
    parser.add_argument("--latency-n", type=int, default=30)
    parser.add_argument("--rate", type=float, default=1.0, help="photos per second in the latency run")
    parser.add_argument("--backlog", action="store_true", help="time the drain of N queued photos instead")
    parser.add_argument(
        "--loop-sample",
        type=int,
        default=2000,
        help="with --backlog: photos in the plain loop, run before and after the drain (0: all N)",
    )
    parser.add_argument("--out", type=Path, default=None, help="default bench/out/faces[-backlog].json")
    args = parser.parse_args()
    out = args.out or REPO / "bench" / "out" / ("faces-backlog.json" if args.backlog else "faces.json")
    from pipeline.datasets import sample_album as sample

    work = Path(tempfile.mkdtemp(prefix="bench-faces-"))
    source = work / "source"
    paths = make_photos(source, args.n)
    refs = sample.build_sample_album(work / "sample-album", work / "refs")
    results: dict[str, Any] = {"n": args.n, "cpu_count": os.cpu_count(), "load_average_at_start": os.getloadavg()}

    # A backlog's loop runs on a sample, before and after the drain: this machine's speed drifts
    # by up to 10 % within minutes, so the drain is compared with the mean of the two.
    loop_paths = paths[: args.loop_sample] if args.backlog and args.loop_sample else paths
    plain_rate, plain_cpu = plain_loop(loop_paths, list(refs.values()))
    results["plain_loop_photos_per_s"], results["plain_loop_cpu_s_per_photo"] = plain_rate, plain_cpu
    results["plain_loop_photos"] = len(loop_paths)
    print(f"plain loop: {plain_rate:.2f} photos/s, {1000 * plain_cpu:.1f} ms CPU per photo ({len(loop_paths)} photos)")

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

    if args.backlog:
        data, album = setup_data("data-backlog"), work / "album-backlog"
        album.mkdir()
        queued = register_backlog(data, paths)
        run = pipeline_run(data, album, dict, len(queued), timeout=max(600, 2 * args.n), backlog=True)
        finished = sorted(run.done.values())
        # A batch's photos share one done_at (one transaction): count the rows done after the
        # first ones, over the time from the first to the last.
        rate = sum(t > finished[0] for t in finished) / (finished[-1] - finished[0])
        after_rate, after_cpu = plain_loop(loop_paths, list(refs.values()))
        results["plain_loop_after_photos_per_s"], results["plain_loop_after_cpu_s_per_photo"] = after_rate, after_cpu
        print(f"plain loop after the drain: {after_rate:.2f} photos/s, {1000 * after_cpu:.1f} ms CPU per photo")
        plain_rate, plain_cpu = (plain_rate + after_rate) / 2, (plain_cpu + after_cpu) / 2
        results["plain_loop_mean_photos_per_s"], results["plain_loop_mean_cpu_s_per_photo"] = plain_rate, plain_cpu
        results.update(
            backlog_rows=len(finished),
            backlog_photos_per_s=rate,
            backlog_vs_plain=rate / plain_rate,
            backlog_cpu_s_per_photo=run.cpu_per_photo,
            backlog_cpu_vs_plain=run.cpu_per_photo["total"] / plain_cpu,
            backlog_peak_rss_mib=run.peaks,
            load_average_at_end=os.getloadavg(),
        )
        print(
            f"backlog drain: {rate:.2f} photos/s ({len(finished)}/{args.n} rows, first to last row) "
            f"= {100 * rate / plain_rate:.0f}% of the plain loop (mean of before and after)"
        )
        print(_cpu_line("backlog", run.cpu_per_photo, plain_cpu))
        _write(results, out, run.peaks)
        shutil.rmtree(work, ignore_errors=True)
        return

    # Throughput: everything dropped at once.
    data, album = setup_data("data-burst"), work / "album-burst"
    album.mkdir()

    def drop_all() -> dict[str, float]:
        stamps = {}
        for path in paths:
            shutil.copyfile(path, album / path.name)
            stamps[path.name] = time.time()
        return stamps

    run = pipeline_run(data, album, drop_all, args.n, timeout=600)
    done, dropped = run.done, run.dropped
    span = max(done.values()) - min(dropped.values())
    results["pipeline_photos_per_s"] = len(done) / span
    finished = sorted(done.values())
    results["burst_first_row_s"] = finished[0] - min(dropped.values())
    lo, hi = finished[len(finished) // 10], finished[(9 * len(finished)) // 10]
    results["pipeline_steady_photos_per_s"] = ((9 * len(finished)) // 10 - len(finished) // 10) / (hi - lo)
    results["pipeline_vs_plain"] = results["pipeline_photos_per_s"] / plain_rate
    results["burst_cpu_s_per_photo"] = run.cpu_per_photo
    results["burst_cpu_vs_plain"] = run.cpu_per_photo["total"] / plain_cpu
    results["burst_peak_rss_mib"] = run.peaks
    print(
        f"pipeline: {results['pipeline_photos_per_s']:.2f} photos/s ({len(done)}/{args.n} rows) "
        f"= {100 * results['pipeline_vs_plain']:.0f}% of the plain loop"
    )
    print(
        f"  first row after {results['burst_first_row_s']:.2f} s; steady state (10th-90th percentile rows) "
        f"{results['pipeline_steady_photos_per_s']:.2f} photos/s"
    )
    print(_cpu_line("burst", run.cpu_per_photo, plain_cpu))

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

    run = pipeline_run(data, album, drop_slowly, args.latency_n, timeout=300)
    done, dropped = run.done, run.dropped
    latencies = sorted(done[name] - dropped[name] for name in dropped if name in done)
    q = statistics.quantiles(latencies, n=100) if len(latencies) > 1 else latencies * 100
    lat = {"n": len(latencies), "p50": statistics.median(latencies), "p95": q[94], "max": latencies[-1]}
    results["latency_s"] = lat
    results["latency_peak_rss_mib"] = run.peaks
    results["load_average_at_end"] = os.getloadavg()
    print(
        f"drop-to-row latency at {args.rate}/s: p50 {lat['p50']:.2f} s, p95 {lat['p95']:.2f} s, max {lat['max']:.2f} s"
    )
    _write(results, out, run.peaks)
    shutil.rmtree(work, ignore_errors=True)


def _write(results: dict[str, Any], out: Path, peaks: dict[str, float]) -> None:
    for role, mib in sorted(peaks.items()):
        print(f"peak RSS {role}: {mib:.0f} MiB")
    print(f"load average at start {results['load_average_at_start']}, at end {results['load_average_at_end']}")
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(results, indent=2))
    print(f"written {out}")


if __name__ == "__main__":
    main()
