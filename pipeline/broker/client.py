"""Finding and reaching the broker: ``PIPELINE_BROKER_URL``, or the embedded Redis of a running
``pipeline run`` (its URL is in ``<data_dir>/broker.url`` while it runs).
"""

from __future__ import annotations

from pipeline.broker.contract import QUEUE
from pipeline.config import Settings
from pipeline.errors import PipelineError


class BrokerError(PipelineError, RuntimeError):
    """The broker could not be started or reached."""


def resolve_broker_url(settings: Settings) -> str | None:
    """The broker to use: ``PIPELINE_BROKER_URL``, else a running embedded one, else None."""
    if settings.broker_url:
        return settings.broker_url
    state = settings.broker_state_file
    if state.exists():
        url = state.read_text().strip()
        if url and broker_reachable(url):
            return url
    return None


def broker_reachable(url: str, timeout: float = 0.5) -> bool:
    import redis

    try:
        return bool(redis.Redis.from_url(url, socket_connect_timeout=timeout, socket_timeout=timeout).ping())
    except (redis.RedisError, OSError, ValueError):
        return False


def queue_length(url: str, queue: str = QUEUE) -> int | None:
    """Messages waiting in ``queue`` (Redis LLEN), or None if the broker is unreachable."""
    import redis

    try:
        client = redis.Redis.from_url(url, socket_connect_timeout=0.5, socket_timeout=1.0)
        return int(client.llen(queue))
    except (redis.RedisError, OSError):
        return None
