"""How long `pipeline --help` (and a command's help) takes to start, as a user runs it.

    python bench/bench_startup.py [--runs 10] [--out bench/out/startup.json]

Runs each command ``--runs`` times in a fresh process (the installed ``pipeline`` script next to
this Python) and prints the median, min and max wall time in seconds; writes them as JSON.
Not a test: nothing is asserted (tests/cli/test_startup.py checks which modules help imports).
"""

from __future__ import annotations

import argparse
import json
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
COMMANDS = (["--help"], ["run", "--help"], ["sql", "--help"], ["people", "--help"])


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def time_command(script: Path, args: list[str], runs: int) -> dict[str, float]:
    """Seconds of ``script ARGS`` over ``runs`` fresh processes: wall median, min, max, and the
    median CPU time (user + system; less moved by other load on a shared machine)."""
    seconds, cpu = [], []
    for _ in range(runs):
        start, start_cpu = time.perf_counter(), _children_cpu()
        subprocess.run([str(script), *args], capture_output=True, check=True)
        seconds.append(time.perf_counter() - start)
        cpu.append(_children_cpu() - start_cpu)
    return {
        "median": statistics.median(seconds),
        "min": min(seconds),
        "max": max(seconds),
        "cpu_median": statistics.median(cpu),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=10)
    parser.add_argument("--out", type=Path, default=REPO / "bench" / "out" / "startup.json")
    args = parser.parse_args()
    script = Path(sys.executable).parent / "pipeline"
    time_command(script, ["--help"], 1)  # warm the file cache once
    results = {}
    for command in COMMANDS:
        figures = time_command(script, command, args.runs)
        name = "pipeline " + " ".join(command)
        results[name] = figures
        print(
            f"{name:28s} wall median {figures['median']:.3f} s  min {figures['min']:.3f}  max {figures['max']:.3f}"
            f"  cpu median {figures['cpu_median']:.3f} s"
        )
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({"runs": args.runs, "seconds": results}, indent=2))


if __name__ == "__main__":
    main()
