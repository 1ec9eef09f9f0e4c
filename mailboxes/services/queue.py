"""Handing stored work to the Celery workers (always after the commit that made it).

The ``Delivery`` rows are the outbox: a task that never arrives (broker down, Redis
flushed) is enqueued again by the sweeper. Tasks are imported and called, never
named by a string. ``mailboxes.tasks`` calls the services and the services enqueue
its tasks: the two modules import each other as modules (attributes are looked up
when called, never at import time), which is the one cycle Celery's layout asks for.
"""

from __future__ import annotations

import contextlib
import contextvars
import logging
from collections.abc import Iterator
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


# Messages stored by a batch entrance (``batched``), waiting for the end of the batch.
_collected: contextvars.ContextVar[list[int] | None] = contextvars.ContextVar(
    "mailboxes_batch", default=None
)


def enqueue_processing(message_ids: list[int]) -> None:
    """Enqueue the processing (scan and local delivery) of stored messages (after commit only).

    One task per ``DELIVERY_BATCH`` messages; inside ``batched()``, the ids wait for
    the end of the batch so that a group committed together travels together.
    """
    collected = _collected.get()
    if collected is not None:
        collected.extend(message_ids)
        return
    size = settings.DELIVERY_BATCH
    for start in range(0, len(message_ids), size):
        enqueue(tasks.process_messages, message_ids[start : start + size])


@contextlib.contextmanager
def batched() -> Iterator[None]:
    """Gather the messages stored (and committed) inside the block into as few tasks as possible.

    For the entrances that store many messages at once (API batch, SMTP group
    commit): wrap the transaction, so that its on-commit callbacks run inside.
    """
    outer = _collected.get()
    if outer is not None:
        yield
        return
    collected: list[int] = []
    token = _collected.set(collected)
    try:
        yield
    finally:
        _collected.reset(token)
        enqueue_processing(collected)


def enqueue_batches(delivery_ids: list[int]) -> None:
    """Enqueue deliveries in batches of ``DELIVERY_BATCH`` (call after commit only)."""
    size = settings.DELIVERY_BATCH
    for start in range(0, len(delivery_ids), size):
        enqueue(tasks.deliver_batch, delivery_ids[start : start + size])
