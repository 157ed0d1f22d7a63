"""Fault injection on the real pipeline: does every photo end done (or failed with a reason)
exactly once, and how long after the fault clears?

    python bench/bench_faults.py [--photos 12] [--faults worker_kill,broker_kill,disk_full,db_gone]
                                 [--full-seconds 10] [--timeout 240] [--out bench/out/faults.json]

Each fault gets a fresh scenario: a data directory (SQLite, the embedded Redis, the ``faces``
profile on the CPU: the default set-up), two people enrolled from the sample album's
references, and ``pipeline run`` on an empty folder. Half of ``--photos`` (distinct copies of
the sample album's photos) are dropped in, the fault is injected while they are being tagged,
the other half arrive during the fault; then the script waits, without restarting anything,
until every photo is done or failed:

- ``worker_kill``: SIGKILL of the Celery worker, main process and pool, mid-batch (cleared at
  once: ``pipeline run`` restarts it).
- ``broker_kill``: SIGKILL of the embedded redis-server (cleared when ``pipeline run`` has it
  back; if it does not restart it, the row says so).
- ``disk_full``: the data directory lives on a small tmpfs (needs root and mount), filled to the
  last byte for ``--full-seconds``, then freed (cleared at the free).
- ``db_gone``: the database file is moved away while running. The pipeline must stop with one
  ``error:`` line (the "recover" column is then the time to stop); the file is moved back and
  ``pipeline run`` started again, which must finish every photo once.

Columns: photos, done once (state done with exactly one caption), lost (no row, or not done or
failed by the deadline), duplicated (more than one caption), failed with a reason, time from the
fault clearing to the last photo settling (s), worker restarts seen. Not a test: nothing is
asserted; the JSON has every figure and the run's output tail.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import signal
import sqlite3
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import psutil
from PIL import Image

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

FAULTS = ("worker_kill", "broker_kill", "disk_full", "db_gone")
FAST = {"PIPELINE_SETTLE_SECONDS": "0.4", "PIPELINE_SWEEP_INTERVAL": "2", "PIPELINE_RESEND_AFTER": "5"}


@dataclass
class Result:
    fault: str
    photos: int
    done_once: int = 0
    lost: int = 0
    duplicated: int = 0
    failed_with_reason: int = 0
    recover_s: float | None = None
    worker_restarts: int = 0
    note: str = ""
    output_tail: list[str] = field(default_factory=list)


def make_photos(folder: Path, n: int, start: int) -> list[Path]:
    """``n`` distinct photos: the sample album's photos in turn, each with its own stripe."""
    from pipeline.datasets.sample_album import build_sample_album

    source = folder.parent / "sample-source"
    if not source.exists():
        build_sample_album(source / "album", source / "refs")
    samples = sorted((source / "album").iterdir())
    written = []
    for i in range(start, start + n):
        pixels = np.asarray(Image.open(samples[i % len(samples)]).convert("RGB")).copy()
        pixels[-6:, :, :] = (i * 37 % 256, i * 91 % 256, i * 53 % 256)
        target = folder / f"photo{i:04d}.jpg"
        partial = folder / f".photo{i:04d}.jpg.part"  # written aside, renamed into place (like a sync tool)
        Image.fromarray(pixels).save(partial, format="JPEG", quality=90)
        partial.rename(target)
        written.append(target)
    return written


class Scenario:
    """One data directory, one album, one `pipeline run`."""

    def __init__(self, root: Path, data_dir: Path) -> None:
        self.root, self.data_dir = root, data_dir
        self.album = root / "album"
        self.album.mkdir(parents=True)
        self.env = {k: v for k, v in os.environ.items() if not k.startswith("PIPELINE_")}
        self.env.update(FAST, PIPELINE_DATA_DIR=str(data_dir))
        self.log_path = root / "run.log"
        self.run: subprocess.Popen[bytes] | None = None

    def pipeline(self, *args: str) -> None:
        subprocess.run([sys.executable, "-m", "pipeline", *args], env=self.env, check=True, capture_output=True)

    def enroll(self) -> None:
        self.make(0, 0)  # builds the sample album's references next to the album
        refs = self.root / "sample-source" / "refs"
        self.pipeline("enroll", "--name", "Eileen", str(refs / "eileen.jpg"))
        self.pipeline("enroll", "--name", "Grace", str(refs / "grace.jpg"))

    def make(self, n: int, start: int) -> list[Path]:
        return make_photos(self.album, n, start)

    def start(self) -> None:
        log = open(self.log_path, "ab")
        self.run = subprocess.Popen(
            [sys.executable, "-m", "pipeline", "run", str(self.album)],
            env=self.env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        log.close()

    def stop(self) -> None:
        if self.run is not None and self.run.poll() is None:
            self.run.send_signal(signal.SIGINT)
            try:
                self.run.wait(60)
            except subprocess.TimeoutExpired:
                self.run.kill()
                self.run.wait()

    def output(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def query(self, sql: str) -> list[tuple[object, ...]]:
        path = self.data_dir / "pipeline.db"
        if not path.exists():
            return []
        try:
            with sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=30) as conn:
                return list(conn.execute(sql).fetchall())
        except sqlite3.Error:
            return []

    def counts(self) -> dict[str, int]:
        return {str(state): int(str(n)) for state, n in self.query("SELECT state, count(*) FROM photos GROUP BY state")}

    def settled(self, n: int) -> bool:
        counts = self.counts()
        return sum(counts.values()) == n and counts.get("done", 0) + counts.get("failed", 0) == n

    def children(self, marker: str) -> list[psutil.Process]:
        assert self.run is not None
        found = []
        for proc in psutil.Process(self.run.pid).children(recursive=True):
            try:
                if marker in " ".join(proc.cmdline()):
                    found.append(proc)
            except psutil.NoSuchProcess:
                pass
        return found


def wait_until(predicate: Callable[[], bool], timeout: float, interval: float = 0.2) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(interval)
    return False


def score(result: Result, scenario: Scenario, files: list[Path]) -> None:
    rows = scenario.query(
        "SELECT p.path, p.state, p.error, (SELECT count(*) FROM captions c WHERE c.photo_id = p.id) FROM photos p"
    )
    by_path = {str(r[0]): r for r in rows}
    for f in files:
        row = by_path.get(str(f))
        if row is None or row[1] not in ("done", "failed"):
            result.lost += 1
        elif row[1] == "failed":
            result.failed_with_reason += 1 if row[2] else 0
            result.lost += 0 if row[2] else 1
        elif int(str(row[3])) == 1:
            result.done_once += 1
        else:
            result.duplicated += 1
    output = scenario.output()
    result.worker_restarts = len(re.findall(r"worker exited with code", output))
    result.output_tail = output.splitlines()[-15:]


def inject(fault: str, scenario: Scenario) -> tuple[float, str]:
    """Kill a worker or the broker of the running scenario; returns (when it cleared, a note)."""
    if fault == "worker_kill":
        for proc in scenario.children("celery"):
            proc.send_signal(signal.SIGKILL)
        return time.monotonic(), "worker main + pool SIGKILLed mid-batch"
    if fault == "broker_kill":
        servers = scenario.children("redis-server")
        for proc in servers:
            proc.send_signal(signal.SIGKILL)
        old = {p.pid for p in servers}
        back = wait_until(lambda: any(p.pid not in old for p in scenario.children("redis-server")), 60, 0.1)
        note = "embedded redis-server SIGKILLed" + ("; restarted by pipeline run" if back else "; NOT restarted")
        return time.monotonic(), note
    raise ValueError(fault)


def run_fault(fault: str, n: int, workdir: Path, full_seconds: float, timeout: float) -> Result:
    result = Result(fault=fault, photos=n)
    root = workdir / fault
    root.mkdir()
    disk: Path | None = None
    if fault == "disk_full":
        disk = root / "disk"
        disk.mkdir()
        mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=48m", "tmpfs", str(disk)], capture_output=True)
        if mounted.returncode != 0:
            reason = mounted.stderr.decode(errors="replace").strip()
            result.note = f"skipped: mounting a tmpfs needs root ({reason})"
            return result
    scenario = Scenario(root, (disk or root) / "data")
    try:
        scenario.enroll()
        scenario.start()
        first = scenario.make(n // 2, 0)
        started = "processing" if fault in ("worker_kill", "broker_kill") else "done"
        if not wait_until(lambda: scenario.counts().get(started, 0) > 0, 180, 0.05):
            result.note = f"no photo reached {started}"
            return result
        if fault == "db_gone":
            return db_gone(result, scenario, first, n, timeout)
        later: list[Path] = []
        if fault == "disk_full":
            assert disk is not None
            subprocess.run(["dd", "if=/dev/zero", f"of={disk / 'filler.bin'}", "bs=1M"], capture_output=True)
            later = scenario.make(n - n // 2, 1000)
            time.sleep(full_seconds)
            (disk / "filler.bin").unlink()
            cleared, result.note = time.monotonic(), f"data directory's tmpfs full for {full_seconds:.0f} s"
        else:
            cleared, result.note = inject(fault, scenario)
            later = scenario.make(n - n // 2, 1000)
        if wait_until(lambda: scenario.settled(n), timeout, 0.2):
            result.recover_s = round(time.monotonic() - cleared, 1)
        scenario.stop()
        score(result, scenario, first + later)
    finally:
        scenario.stop()
        if disk is not None:
            subprocess.run(["umount", "-l", str(disk)], check=False)
    return result


def db_gone(result: Result, scenario: Scenario, first: list[Path], n: int, timeout: float) -> Result:
    """Move the database away: `pipeline run` must stop with an error line; then move it back,
    start again, and every photo must end once."""
    db = scenario.data_dir / "pipeline.db"
    aside = scenario.root / "moved-away.db"
    shutil.move(db, aside)
    moved = time.monotonic()
    later = scenario.make(n - n // 2, 1000)
    assert scenario.run is not None
    stopped = wait_until(lambda: scenario.run is not None and scenario.run.poll() is not None, 60, 0.1)
    errors = [line for line in scenario.output().splitlines() if line.startswith("error:")]
    recreated = db.exists()
    result.recover_s = round(time.monotonic() - moved, 1) if stopped else None
    result.note = (
        f"stopped (exit {scenario.run.returncode}) with {len(errors)} error line(s)"
        if stopped
        else "did NOT stop within 60 s"
    ) + ("; an empty database appeared" if recreated else "; no new database file")
    scenario.stop()
    if not recreated:
        shutil.move(aside, db)  # the user restores the file ...
        scenario.start()  # ... and starts again
        if not wait_until(lambda: scenario.settled(n), timeout, 0.2):
            result.note += "; after restoring: not every photo settled"
        scenario.stop()
    score(result, scenario, first + later)
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--photos", type=int, default=12)
    parser.add_argument("--faults", default=",".join(FAULTS))
    parser.add_argument("--full-seconds", type=float, default=10.0)
    parser.add_argument("--timeout", type=float, default=240.0, help="seconds to wait for every photo per fault")
    parser.add_argument("--out", type=Path, default=REPO / "bench" / "out" / "faults.json")
    args = parser.parse_args()
    faults = [f.strip() for f in args.faults.split(",") if f.strip()]
    unknown = set(faults) - set(FAULTS)
    if unknown:
        parser.error(f"unknown fault(s) {sorted(unknown)}; choose from {', '.join(FAULTS)}")
    results = []
    with tempfile.TemporaryDirectory(prefix="bench-faults-") as tmp:
        for fault in faults:
            print(f"{fault} ...", flush=True)
            results.append(run_fault(fault, args.photos, Path(tmp), args.full_seconds, args.timeout))
    header = f"{'fault':<12} {'photos':>6} {'done once':>9} {'lost':>4} {'dup':>3} {'failed+reason':>13} "
    header += f"{'recover s':>9} {'restarts':>8}  note"
    print(header)
    for r in results:
        recover = f"{r.recover_s:.1f}" if r.recover_s is not None else "-"
        print(
            f"{r.fault:<12} {r.photos:>6} {r.done_once:>9} {r.lost:>4} {r.duplicated:>3} {r.failed_with_reason:>13} "
            f"{recover:>9} {r.worker_restarts:>8}  {r.note}"
        )
    args.out.parent.mkdir(parents=True, exist_ok=True)
    machine = {"cpus": os.cpu_count(), "platform": sys.platform}
    args.out.write_text(json.dumps({"machine": machine, "results": [asdict(r) for r in results]}, indent=2))
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
