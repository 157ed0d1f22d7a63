"""A broker outage is said once when it starts and once when it ends, however many photos are
sent meanwhile (a real Redis stopped and started again)."""

from __future__ import annotations

import logging

import pytest

from pipeline.config import get_settings
from pipeline.ingest.dispatch import Dispatcher
from tests.conftest import RedisServer


def test_outage_is_reported_once_and_its_end_too(redis_server: RedisServer, caplog: pytest.LogCaptureFixture) -> None:
    dispatcher = Dispatcher(redis_server.url, get_settings())
    with caplog.at_level(logging.WARNING, logger="pipeline.ingest.dispatch"):
        assert dispatcher.send([1])
        redis_server.stop()
        assert not any(dispatcher.send([i]) for i in (2, 3, 4))  # each fails; photos stay queued in SQL
        redis_server.start()
        assert dispatcher.send([5]) and dispatcher.send([6])
    messages = [r.getMessage() for r in caplog.records]
    assert sum("broker unreachable" in m for m in messages) == 1, messages
    assert sum("broker reachable again" in m for m in messages) == 1, messages
