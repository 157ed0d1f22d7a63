"""The Celery contract between the dispatcher and the workers, defined in one place.

The dispatcher (:mod:`pipeline.ingest.dispatch`) sends :data:`TAG_TASK` by name to :data:`QUEUE`
with a Celery app configured by :func:`celery_config`; ``workers/tasks.py`` registers the task
under the same name, and ``workers/celery_app.py`` configures its app with the same function.
Celery itself is not imported here.
"""

from __future__ import annotations

from typing import Any

QUEUE = "gpu"
"""The queue model work goes to (one worker process per GPU consumes it)."""

TAG_TASK = "workers.tasks.tag_photos"
"""Task name: ``tag_photos(photo_ids: list[int])``; tags or re-matches those photos."""


def celery_config(broker_url: str, soft_limit: int, hard_limit: int) -> dict[str, Any]:
    """The Celery settings for ``broker_url`` (a plain dict, easy to test).

    Late acks with prefetch 1 and requeue when a child dies (a photo that kills its worker is
    retried, then failed by the attempt counter in SQL); soft and hard time limits in seconds; the
    Redis visibility timeout above the hard limit; task events on for Flower; no result backend
    (results live in SQL).
    """
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
        "task_default_queue": QUEUE,
        "task_routes": {TAG_TASK: {"queue": QUEUE}},
        "worker_hijack_root_logger": False,
    }
