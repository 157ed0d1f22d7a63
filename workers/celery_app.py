"""The Celery application: configuration and signals, nothing heavy.

The settings come from :func:`pipeline.broker.contract.celery_config` (late acks with prefetch 1,
requeue when a child dies, the model queue, soft and hard time limits, task events on for Flower,
no result storage: results live in SQL). The broker URL comes from ``PIPELINE_BROKER_URL`` or the
embedded Redis of a running ``pipeline run`` (``<data_dir>/broker.url``), read lazily: importing
this module opens no connection and reads no file.
"""

from __future__ import annotations

import logging
import threading
import time
from typing import Any

from celery import Celery
from celery.signals import worker_process_init

from pipeline.broker.contract import celery_config

logger = logging.getLogger(__name__)


def _config() -> dict[str, Any]:
    from pipeline.broker.client import resolve_broker_url
    from pipeline.config import get_settings

    settings = get_settings()
    broker_url = resolve_broker_url(settings) or "redis://127.0.0.1:6379/0"
    return celery_config(broker_url, settings.task_soft_time_limit, settings.task_time_limit)


def create_app() -> Celery:
    """The app; its configuration (and the broker URL) is read when Celery first needs it."""
    app = Celery("pipeline", include=["workers.tasks"])
    app.add_defaults(_config)
    return app


app = create_app()


@worker_process_init.connect
def _reset_after_fork(**_: Any) -> None:
    """Database engines are not fork-safe: drop the parent's pools in each child. Then, when
    ``settings.warm_up`` is on, load the models in a background thread (the first task waits on
    the models' locks instead of loading them itself; a failure is logged, and the first task
    raises it again with the photo)."""
    from pipeline.config import get_settings
    from pipeline.store.db import dispose_engines

    dispose_engines()
    settings = get_settings()
    if settings.warm_up:
        threading.Thread(target=_warm_up, args=(settings,), name="model-warm-up", daemon=True).start()


def _warm_up(settings: Any) -> None:
    from pipeline.tagging.batch import warm_up

    started = time.perf_counter()
    try:
        warm_up(settings)
    except Exception:  # the worker must start anyway
        logger.exception("loading the models ahead of the first photo failed")
        return
    logger.info("models loaded ahead of the first photo in %.1f s", time.perf_counter() - started)
