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
import functools
import logging
from collections.abc import Iterator
from datetime import timedelta

import redis
from celery import Task
from django.conf import settings

from mailboxes import tasks

log = logging.getLogger(__name__)


def retry_delay() -> timedelta:
    """How long a scan or delivery may wait before the sweeper enqueues it again."""
    return timedelta(seconds=settings.DELIVERY_RETRY_SECONDS)


def enqueue(task: Task, *args: int | list[int]) -> None:
    """Enqueue ``task(*args)`` (call after commit only)."""
    try:
        task.delay(*args)
    except Exception:
        # The row is committed and due: the sweeper will enqueue it again later.
        # A broker outage must delay a message, not fail its submission.
        if getattr(task.app.conf, "task_always_eager", False):
            raise
        log.exception("could not enqueue %s%s; the sweeper will retry", task.name, args)


# --- Waking the drain ------------------------------------------------------------------
#
# With a Redis broker, a stored message does not get a task of its own: its commit sets
# this key if it is not set (SET NX with a short expiry) and enqueues one ``drain`` only
# when it did. The drain deletes the key before each batch it takes, so a message
# committed after that wakes another drain; one committed before it is in that batch.
# A drain task lost with the key set delays the messages of the next WAKE_MS at most
# until the sweeper (DELIVERY_RETRY_SECONDS), never loses them.
WAKE_KEY = "mssante:pipeline:wake"


@functools.cache
def _redis(url: str) -> redis.Redis:
    return redis.Redis.from_url(url, socket_timeout=2, socket_connect_timeout=2)


def _wake_client() -> redis.Redis | None:
    """The broker's Redis when the pipeline drains (a worker, a Redis broker), else None."""
    return broker_redis()


def broker_redis() -> redis.Redis | None:
    """The broker's Redis when tasks go to workers through one, else None (embedded default).

    Shared by every process of the deployment: the drain's wake, the API's rate counter.
    """
    conf = tasks.drain.app.conf
    if conf.task_always_eager:
        return None
    # Where the tasks are written: the drain that deletes the key reads the same broker.
    url = str(conf.broker_write_url or conf.broker_url or "")
    if not url.startswith(("redis://", "rediss://")):
        return None
    return _redis(url)


def wake(*, force: bool = False) -> bool:
    """Have a drain run soon; False when it must be done otherwise (no Redis broker)."""
    client = _wake_client()
    if client is None:
        return False
    try:
        woken = client.set(WAKE_KEY, b"1", nx=not force, px=settings.PIPELINE_WAKE_MS)
    except redis.RedisError:
        log.exception("could not wake the pipeline; the sweeper will")
        return True
    if woken:
        enqueue(tasks.drain)
    return True


def rearm() -> None:
    """Let the next commit wake a drain again (the running drain calls it before each batch)."""
    client = _wake_client()
    if client is None:
        return
    try:
        client.delete(WAKE_KEY)
    except redis.RedisError:
        # The key expires by itself within PIPELINE_WAKE_MS.
        log.warning("could not re-arm the pipeline's wake")


# Messages stored by a batch entrance (``batched``), waiting for the end of the batch.
_collected: contextvars.ContextVar[list[int] | None] = contextvars.ContextVar(
    "mailboxes_batch", default=None
)


def enqueue_processing(message_ids: list[int], *, force: bool = False) -> None:
    """Enqueue the processing (scan and local delivery) of stored messages (after commit only).

    With a Redis broker, a wake of the drain (below); otherwise (tasks run eagerly, or
    another broker) one task per ``DELIVERY_BATCH`` messages. Inside ``batched()``, the
    ids wait for the end of the batch so that a group committed together travels together.
    ``force``: wake a drain even if a wake is pending (the sweeper: that wake may be lost).
    """
    collected = _collected.get()
    if collected is not None:
        collected.extend(message_ids)
        return
    if not message_ids or wake(force=force):
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
