"""`pipeline run` restarts a crashing child with backoff, not in a tight loop (a real process)."""

from __future__ import annotations

import sys
import time
from pathlib import Path

from pipeline.service.runner import Child
from tests.conftest import wait_for


def test_a_child_that_keeps_crashing_waits_longer_each_time(tmp_path: Path) -> None:
    child = Child("crasher", [sys.executable, "-c", "raise SystemExit(3)"], {}, tmp_path / "crasher.log")
    child.start()
    assert child.process is not None
    child.process.wait(30)
    first = child.check()
    assert first is not None and "exited with code 3" in first and "restarting in 1 s" in first
    assert child.check() is None and child.restarts == 0  # waiting, not restarting
    wait_for(lambda: child.check() == "crasher restarted", timeout=30, interval=0.05, message="restart")
    child.process.wait(30)
    second = child.check()
    assert second is not None and "restarting in 2 s" in second
    started = time.monotonic()
    wait_for(lambda: child.check() == "crasher restarted", timeout=30, interval=0.05, message="second restart")
    assert time.monotonic() - started >= 1.5 and child.restarts == 2
    child.stop(10)


def test_a_child_that_ran_long_enough_is_restarted_at_once(tmp_path: Path) -> None:
    child = Child("steady", [sys.executable, "-c", "raise SystemExit(0)"], {}, tmp_path / "steady.log")
    child.start()
    assert child.process is not None
    child.process.wait(30)
    child.started_at -= 3600  # as if it had run for an hour
    message = child.check()
    assert message is not None and "exited with code 0; restarted" in message and child.restarts == 1
    child.stop(10)
