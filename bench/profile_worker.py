"""Where the worker's time goes on the faces profile: py-spy over `pipeline run`, summarised.

    python bench/profile_worker.py [--n 300] [--backlog] [--out bench/out/profile_worker.json]

Needs ``py-spy`` (``pip install py-spy``; it reads the processes' memory, so it needs ptrace
rights: root, or ``kernel.yama.ptrace_scope=0``). Generates N photos (bench_faces' generator),
enrolls the two sample people, starts ``pipeline run`` on an empty folder under
``py-spy record --subprocesses`` (100 samples/s, idle frames dropped), drops the N photos at once,
waits for N rows, stops. Writes the speedscope profile next to ``--out`` (open it at
https://www.speedscope.app) and sorts every sample of the Celery pool child (the process that
runs the model) into one of: decode, detect (YuNet), embed (SFace), match, caption/answers,
database, Celery/kombu overhead, other; prints the shares of the busy samples and writes them as
JSON. Waits and the start-up (the model warm-up thread, module imports) are counted apart.
``--backlog`` registers the N photos as queued rows before the start (a backlog drain, as
``bench_faces.py --backlog``) instead of dropping them into the watched folder. A last row, "all
processes", adds up the samples of every process of the pipeline. ``--summarise FILE`` re-reads
a recorded ``.collapsed.txt`` instead of running anything.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "bench"))

# First match wins, checked from the innermost frame outwards: (category, substring of a frame).
CATEGORIES: list[tuple[str, str]] = [
    ("decode", "photos/decode.py"),
    ("detect (YuNet)", "detect"),
    ("embed (SFace)", "embed"),
    ("embed (SFace)", "feature"),
    ("match", "recognition/matching.py"),
    ("match", "linear_sum_assignment"),
    ("caption/answers", "profiles/sentences.py"),
    ("database", "sqlalchemy"),
    ("database", "sqlite3"),
    ("database", "psycopg"),
    ("Celery/kombu overhead", "celery"),
    ("Celery/kombu overhead", "kombu"),
    ("Celery/kombu overhead", "billiard"),
]


# Innermost functions that mean the thread waits (py-spy's idle filter misses some, and on a busy
# machine a thread woken but not yet running counts as active): not the per-photo path.
WAITS = ("Condition.wait", "Event.wait", "select", "poll", "_recv", "recv_bytes", "sleep", "acquire")
# Frames of a process's start-up: the worker's model warm-up thread and module imports (the
# profile records from the start; their samples are counted apart, as waits are).
START_UP = ("workers/celery_app.py", "_find_and_load (")


def category(stack: str) -> str:
    frames = stack.split(";")
    innermost = frames[-1].split(" (", 1)[0]
    if any(innermost == w or innermost.endswith(f".{w}") for w in WAITS):
        return "waiting"
    if any(needle in frame for frame in frames for needle in START_UP):
        return "start-up"
    for frame in reversed(frames):  # innermost first
        for name, needle in CATEGORIES:
            if needle in frame:
                return name
    return "other"


def process_label(chain: list[str]) -> str:
    """``process 123:"python -m celery ... worker"`` -> "celery worker (pid 123)"."""
    pid = chain[-1].split(":", 1)[0].removeprefix("process ")
    if "celery" in chain[-1]:
        role = "celery worker"
    elif "flower" in chain[-1]:
        role = "flower"
    elif len(chain) == 1:
        role = "pipeline run (watcher, dispatcher, sweeper)"
    else:
        role = "pipeline run child"
    return f"{role} (pid {pid})"


def summarise(collapsed: Path) -> dict[str, dict[str, float]]:
    """Per process (the py-spy ``process NNN`` root frame): share of samples per category."""
    per_process: dict[str, Counter[str]] = {}
    for line in collapsed.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack:
            continue
        frames = stack.split(";")
        chain = [f for f in frames if f.startswith("process ")]  # py-spy nests child processes
        per_process.setdefault(process_label(chain), Counter())[category(stack)] += int(count)
    everything: Counter[str] = Counter()
    for counts in per_process.values():
        everything.update(counts)
    per_process["all processes"] = everything
    out = {}
    for root, counts in per_process.items():
        waiting, start_up = counts.pop("waiting", 0), counts.pop("start-up", 0)
        total = sum(counts.values())
        shares = {k: round(v / max(1, total), 3) for k, v in counts.most_common()}
        out[root] = {"busy_samples": total, "waiting_samples": waiting, "start_up_samples": start_up, **shares}
    return out


def done_rows(db: Path) -> int:
    try:
        with sqlite3.connect(f"file:{db}?mode=ro", uri=True) as conn:
            return int(conn.execute("SELECT count(*) FROM photos WHERE state IN ('done', 'failed')").fetchone()[0])
    except sqlite3.Error:
        return 0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n", type=int, default=300)
    parser.add_argument("--out", type=Path, default=REPO / "bench" / "out" / "profile_worker.json")
    parser.add_argument("--backlog", action="store_true", help="queue the photos before the start instead")
    parser.add_argument("--summarise", type=Path, default=None, help="a recorded .collapsed.txt to summarise")
    args = parser.parse_args()
    if args.summarise is not None:
        for root, row in sorted(summarise(args.summarise).items(), key=lambda kv: -kv[1]["busy_samples"]):
            print(root, row)
        return
    from bench_faces import make_photos, register_backlog

    from pipeline.datasets import sample_album as sample

    py_spy = shutil.which("py-spy") or str(Path(sys.executable).with_name("py-spy"))
    work = Path(tempfile.mkdtemp(prefix="profile-worker-"))
    paths = make_photos(work / "source", args.n)
    refs = sample.build_sample_album(work / "sample-album", work / "refs")
    data, album = work / "data", work / "album"
    album.mkdir()
    env = dict(os.environ, PIPELINE_DATA_DIR=str(data))
    for person, ref in refs.items():
        subprocess.run([sys.executable, "-m", "pipeline", "enroll", "--name", person, str(ref)], env=env, check=True)
    if args.backlog:
        register_backlog(data, paths)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    collapsed = args.out.with_suffix(".collapsed.txt")
    record = [py_spy, "record", "--subprocesses", "--rate", "100", "--format", "raw", "-o", str(collapsed), "--"]
    proc = subprocess.Popen(
        [*record, sys.executable, "-m", "pipeline", "run", str(album)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        time.sleep(8)  # start-up (model load) is not part of the profile's question
        t0 = time.monotonic()
        for path in [] if args.backlog else paths:
            shutil.copyfile(path, album / path.name)
        while done_rows(data / "pipeline.db") < args.n and time.monotonic() - t0 < 900:
            time.sleep(0.5)
        seconds = time.monotonic() - t0
    finally:
        os.killpg(proc.pid, signal.SIGINT)  # py-spy and `pipeline run` both stop on Ctrl-C
        proc.wait(120)
    shares = summarise(collapsed)
    report = {
        "n": args.n,
        "seconds": round(seconds, 1),
        "photos_per_s": round(args.n / seconds, 2),
        "processes": shares,
    }
    for root, row in sorted(shares.items(), key=lambda kv: -kv[1]["busy_samples"]):
        print(root, row)
    args.out.write_text(json.dumps(report, indent=2))
    print(f"written {args.out} and {collapsed}")
    shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
