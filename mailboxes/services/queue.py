"""Handing stored work to the Celery workers (always after the commit that made it).

The ``Delivery`` rows are the outbox: a task that never arrives (broker down, Redis
flushed) is enqueued again by the sweeper. Tasks are imported and called, never
named by a string. ``mailboxes.tasks`` calls the services and the services enqueue
its tasks: the two modules import each other as modules (attributes are looked up
when called, never at import time), which is the one cycle Celery's layout asks for.
"""

from __future__ import annotations

import logging
from datetime import timedelta

from celery import Task
from django.conf import settings

from mailboxes import tasks

log = logging.getLogger(__name__)


def retry_delay() -> timedelta:
    """How long a scan or delivery may wait before the sweeper enqueues it again."""
    return timedelta(seconds=settings.DELIVERY_RETRY_SECONDS)


def enqueue(task: Task, object_id: int | list[int]) -> None:
    """Enqueue ``task(object_id)`` (call after commit only)."""
    try:
        task.delay(object_id)
    except Exception:
        # The row is committed and due: the sweeper will enqueue it again later.
        # A broker outage must delay a message, not fail its submission.
        if getattr(task.app.conf, "task_always_eager", False):
            raise
        log.exception("could not enqueue %s(%s); the sweeper will retry", task.name, object_id)


def enqueue_scans(message_ids: list[int]) -> None:
    """Enqueue the scan of each message (call after commit only)."""
    for message_id in message_ids:
        enqueue(tasks.scan_message, message_id)


def enqueue_batches(delivery_ids: list[int]) -> None:
    """Enqueue deliveries in batches of ``DELIVERY_BATCH`` (call after commit only)."""
    size = settings.DELIVERY_BATCH
    for start in range(0, len(delivery_ids), size):
        enqueue(tasks.deliver_batch, delivery_ids[start : start + size])
