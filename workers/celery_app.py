"""The Celery application: configuration and signals, nothing heavy.

Settings follow docs/reference/conventions.md §1: late acks with prefetch 1, requeue when a child
dies, a ``gpu`` queue for model work, soft and hard time limits, task events on for Flower, and
no result storage (results live in SQL). The broker URL comes from ``PIPELINE_BROKER_URL`` or
the embedded Redis of a running ``pipeline run`` (``<data_dir>/broker.url``).
"""

from __future__ import annotations

import logging
import threading
import time
from typing import Any

from celery import Celery
from celery.signals import worker_process_init

from pipeline.broker import GPU_QUEUE

logger = logging.getLogger(__name__)


def celery_config(broker_url: str, soft_limit: int, hard_limit: int) -> dict[str, Any]:
    """The Celery settings for ``broker_url`` (a plain dict, easy to test)."""
    visibility = max(7200, hard_limit * 2)
    return {
        "broker_url": broker_url,
        "result_backend": None,
        "task_ignore_result": True,
        "task_store_errors_even_if_ignored": False,
        "task_serializer": "json",
        "accept_content": ["json"],
        "task_acks_late": True,
        "task_reject_on_worker_lost": True,
        "task_acks_on_failure_or_timeout": True,
        "worker_prefetch_multiplier": 1,
        "worker_concurrency": 1,
        "task_soft_time_limit": soft_limit,
        "task_time_limit": hard_limit,
        "broker_transport_options": {"visibility_timeout": visibility},
        "worker_cancel_long_running_tasks_on_connection_loss": True,
        "worker_max_tasks_per_child": 500,
        "worker_send_task_events": True,
        "task_send_sent_event": True,
        "task_track_started": True,
        "broker_connection_retry_on_startup": True,
        "broker_connection_max_retries": None,
        "task_default_queue": GPU_QUEUE,
        "task_routes": {"workers.tasks.*": {"queue": GPU_QUEUE}},
        "worker_hijack_root_logger": False,
    }


def _broker_url() -> str:
    from pipeline.broker import resolve_broker_url
    from pipeline.config import get_settings

    return resolve_broker_url(get_settings()) or "redis://127.0.0.1:6379/0"


def create_app() -> Celery:
    """Build the app from the current settings (cheap: no model, no connection)."""
    from pipeline.config import get_settings

    settings = get_settings()
    app = Celery("pipeline", include=["workers.tasks"])
    app.conf.update(celery_config(_broker_url(), settings.task_soft_time_limit, settings.task_time_limit))
    return app


app = create_app()


@worker_process_init.connect
def _reset_after_fork(**_: Any) -> None:
    """Database engines are not fork-safe: drop the parent's pools in each child. Then, when
    ``settings.warm_up`` is on, load the models in a background thread (the first task waits on
    the models' locks instead of loading them itself; a failure is logged, and the first task
    raises it again with the photo)."""
    from pipeline.config import get_settings
    from pipeline.db import dispose_engines

    dispose_engines()
    settings = get_settings()
    if settings.warm_up:
        threading.Thread(target=_warm_up, args=(settings,), name="model-warm-up", daemon=True).start()


def _warm_up(settings: Any) -> None:
    from pipeline.tagging import warm_up

    started = time.perf_counter()
    try:
        warm_up(settings)
    except Exception:  # noqa: BLE001 - the worker must start anyway
        logger.exception("loading the models ahead of the first photo failed")
        return
    logger.info("models loaded ahead of the first photo in %.1f s", time.perf_counter() - started)
