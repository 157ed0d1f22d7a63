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


def test_a_child_that_crash_loops_is_given_up_with_its_last_log_line(tmp_path: Path) -> None:
    import pytest

    from pipeline.service.runner import ChildCrashLoop

    script = "import sys; print('cannot open the model file'); sys.exit(4)"
    child = Child("looper", [sys.executable, "-c", script], {}, tmp_path / "looper.log", give_up_after=3)
    child.start()
    assert child.process is not None
    for _ in range(2):  # two quick deaths: restarted after 1 s, then 2 s
        child.process.wait(30)
        child.restart_at = None  # found dead now
        child.backoff_s = 0.0  # no waiting in the test: the backoff itself is tested above
        assert child.check() is not None
        child.restart_at = 0.0
        assert child.check() == "looper restarted"
    child.process.wait(30)
    with pytest.raises(ChildCrashLoop, match=r"looper died 3 times in a row .*exit code 4.*cannot open the model file"):
        child.check()
    assert child.restarts == 2
