"""The delivery pipeline against PostgreSQL, Redis and a real Celery worker.

Needs PostgreSQL and Redis from ``scripts/services start``. The module starts its
own prefork worker on the test database and on a Redis database of its own: a
worker left running with older code on the shared queue would otherwise take
these tasks and discard them as unregistered. The worker sees only committed
rows, so these tests commit for real (``transaction=True``).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from django.conf import settings
from django.db import connection
from django.utils import timezone

from audit.models import AuditEvent
from mailboxes import services, tasks
from mailboxes.models import Delivery, Entry, Mailbox, Message
from mailboxes.services import pipeline, queue
from mssante.celery import app as celery_app
from tests.personas import person

pytestmark = [
    pytest.mark.services,
    pytest.mark.django_db(transaction=True),
    pytest.mark.skipif(
        not os.environ.get("MSSANTE_TEST_SERVICES"),
        reason="needs scripts/services (MSSANTE_TEST_SERVICES=1)",
    ),
]

N = 20
TIMEOUT = 60.0


BROKER_DB = 2 + os.getpid() % 14  # concurrent runs rarely share a queue
_broker: list[str] = []
_log: list[Path] = []


def broker_url() -> str:
    return _broker[0]


def _url_with_db(url: str, db: int) -> str:
    base, _, _tail = url.rpartition("/")
    return f"{base}/{db}" if base.count("/") >= 2 else f"{url.rstrip('/')}/{db}"


def _use_broker(url: str) -> None:
    # Celery derives read and write URLs from the first one it saw: set all three.
    celery_app.conf.update(broker_url=url, broker_write_url=url, broker_read_url=url)
    # The app caches its connection pools: forget them so the next send uses ``url``.
    celery_app._pool = None
    celery_app.amqp._producer_pool = None


@pytest.fixture(scope="module", autouse=True)
def worker(
    django_db_setup: Any, django_db_blocker: Any, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[None]:
    """A prefork worker (two processes) on the test database and a private Redis database."""
    import redis

    db = connection.settings_dict
    database_url = (
        f"postgres://{db['USER']}:{db['PASSWORD']}@{db['HOST']}:{db['PORT']}/{db['NAME']}"
    )
    url = _url_with_db(settings.CELERY_BROKER_URL, BROKER_DB)
    redis.Redis.from_url(url).flushdb()
    log = tmp_path_factory.mktemp("worker") / "worker.log"
    env = {
        **os.environ,
        "DATABASE_URL": database_url,
        "CELERY_BROKER_URL": url,
        "MSSANTE_MASTER_KEYS": settings.MSSANTE_MASTER_KEYS,
        "MSSANTE_IGNORE_DOTENV": "true",
    }
    root = Path(__file__).resolve().parent.parent
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "celery", "-A", "mssante", "worker", "--pool=prefork",
             "--concurrency=2", "--without-gossip", "--without-mingle", "--loglevel=INFO"],
            cwd=root, env=env, stdout=out, stderr=subprocess.STDOUT,
        )  # fmt: skip
    old_url = settings.CELERY_BROKER_URL
    _use_broker(url)
    _broker.append(url)
    _log.append(log)
    try:
        deadline = time.monotonic() + 30
        while b"ready" not in log.read_bytes():
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError("the Celery worker did not start:\n" + log.read_text())
            time.sleep(0.1)
        yield
    finally:
        _broker.clear()
        _log.clear()
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        _use_broker(old_url)
        # Connections the worker left open would make DROP DATABASE fail at the end.
        with django_db_blocker.unblock(), connection.cursor() as cursor:
            cursor.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                "WHERE datname = current_database() AND pid <> pg_backend_pid()"
            )


@pytest.fixture(autouse=True)
def _no_wake_left() -> None:
    # A test that lost its drain task on purpose leaves the wake set for PIPELINE_WAKE_MS.
    queue.rearm()


@pytest.fixture
def boxes(doctor: Mailbox, nurse: Mailbox) -> tuple[Mailbox, Mailbox, Mailbox]:
    pharmacist = person("Sophie", "Bernard", profession="21").box
    return doctor, nurse, pharmacist


def wait_for(condition: Callable[[], bool], what: str, timeout: float = TIMEOUT) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.1)
    tail = _log[0].read_text(errors="replace")[-3000:] if _log else ""
    raise AssertionError(f"timed out waiting for {what}; worker log ends with:\n{tail}")


def all_delivered() -> bool:
    return not Delivery.objects.exclude(status=Delivery.Status.DELIVERED).exists()


def broker_idle() -> bool:
    import redis

    client = redis.Redis.from_url(broker_url())
    # The queue is empty and nothing is held unacknowledged by a worker.
    return client.llen("celery") == 0 and client.hlen("unacked") == 0


def send_many(doctor: Mailbox, to: list[str], cc: list[str], n: int = N) -> list[Message]:
    return [
        services.submit_message(
            mailbox=doctor,
            author=doctor.owner,
            to=to,
            cc=cc,
            subject=f"Message {i}",
            text=f"Corps {i}",
        )
        for i in range(n)
    ]


def assert_exactly_one_entry_per_recipient(
    messages: list[Message], recipients: list[Mailbox]
) -> None:
    for box in recipients:
        got = sorted(Entry.objects.filter(mailbox=box).values_list("message_id", flat=True))
        assert got == sorted(m.pk for m in messages), box.address


def test_n_messages_give_exactly_n_entries_per_recipient(
    boxes: tuple[Mailbox, Mailbox, Mailbox],
) -> None:
    doctor, nurse, pharmacist = boxes
    messages = send_many(doctor, [nurse.address], [pharmacist.address])
    wait_for(all_delivered, "every delivery")
    assert_exactly_one_entry_per_recipient(messages, [nurse, pharmacist])
    assert Entry.objects.filter(mailbox=doctor, folder__role="sent").count() == N
    # The worker scans with the real clamd (CLAMD_ADDRESS in scripts/services).
    assert set(Message.objects.values_list("scan_status", flat=True)) == {"clean"}


def test_tasks_run_twice_deliver_once(
    boxes: tuple[Mailbox, Mailbox, Mailbox], monkeypatch: pytest.MonkeyPatch
) -> None:
    doctor, nurse, pharmacist = boxes
    monkeypatch.setattr(queue, "enqueue", lambda *a: None)
    messages = send_many(doctor, [nurse.address, pharmacist.address], [])
    for m in messages:
        services.scan(m.pk)
    monkeypatch.undo()
    ids = list(Delivery.objects.values_list("pk", flat=True))
    # Each delivery is enqueued twice; the worker's two processes race on them.
    for delivery_id in ids + ids:
        tasks.deliver.delay(delivery_id)
    for m in messages:
        tasks.process_messages.delay([m.pk])
    wait_for(all_delivered, "every delivery")
    wait_for(broker_idle, "the broker to drain")
    time.sleep(0.5)
    assert_exactly_one_entry_per_recipient(messages, [nurse, pharmacist])
    # Each delivery is journaled once, whichever task got there first.
    journaled = [
        d
        for e in AuditEvent.objects.filter(action="message.delivered")
        for d in e.data["deliveries"]
    ]
    assert sorted(journaled) == sorted(ids)


def test_the_sweeper_recovers_messages_lost_when_the_broker_is_flushed(
    boxes: tuple[Mailbox, Mailbox, Mailbox],
) -> None:
    import redis

    doctor, nurse, pharmacist = boxes
    # Stop the worker from consuming, submit, then lose everything the broker held.
    celery_app.control.cancel_consumer("celery", reply=True, timeout=5, limit=1)
    try:
        messages = send_many(doctor, [nurse.address], [pharmacist.address])
        client = redis.Redis.from_url(broker_url())
        assert client.llen("celery") >= 1  # the commits woke the drain...
        client.flushdb()  # ...and the broker lost its task
    finally:
        celery_app.control.add_consumer("celery", reply=True, timeout=5, limit=1)
    time.sleep(1.0)
    assert not Entry.objects.filter(mailbox=nurse).exists()
    assert Delivery.objects.filter(status=Delivery.Status.QUEUED).count() == 2 * N

    # The next sweep after the retry delay finds the stuck scans, then the deliveries.
    later = timezone.now() + timedelta(seconds=settings.DELIVERY_RETRY_SECONDS + 1)
    assert services.sweep(now=later) == N
    wait_for(
        lambda: not Message.objects.filter(scan_status="pending").exists(), "the scans to run again"
    )
    wait_for(all_delivered, "every delivery")
    assert_exactly_one_entry_per_recipient(messages, [nurse, pharmacist])
    # A further sweep finds nothing left to do.
    assert services.sweep(now=later + timedelta(hours=1)) == 0


def test_a_lost_processing_task_is_re_enqueued_by_the_sweeper(
    boxes: tuple[Mailbox, Mailbox, Mailbox], monkeypatch: pytest.MonkeyPatch
) -> None:
    doctor, nurse, _pharmacist = boxes
    # The message is stored but its task (scan and delivery) never reached the broker.
    monkeypatch.setattr(queue, "enqueue", lambda *a: None)
    (message,) = send_many(doctor, [nurse.address], [], n=1)
    monkeypatch.undo()
    assert services.sweep() == 0  # not due yet
    later = timezone.now() + timedelta(seconds=settings.DELIVERY_RETRY_SECONDS + 1)
    assert services.sweep(now=later) == 1
    wait_for(all_delivered, "the delivery")
    assert Entry.objects.filter(mailbox=nurse, message=message).count() == 1


def test_a_burst_wakes_one_drain_that_delivers_it_in_batches(
    boxes: tuple[Mailbox, Mailbox, Mailbox], monkeypatch: pytest.MonkeyPatch
) -> None:
    doctor, nurse, pharmacist = boxes
    woken: list[str] = []
    # A drain is already due (its task not run yet): the burst's commits wake nothing more.
    monkeypatch.setattr(queue, "enqueue", lambda task, *args: woken.append(task.name))
    messages = send_many(doctor, [nurse.address, pharmacist.address], [], n=N)
    assert woken == ["mailboxes.tasks.drain"]
    batches: list[int] = []
    process = pipeline.process

    def counted(ids: list[int]) -> int:
        batches.append(len(ids))
        return process(ids)

    monkeypatch.setattr(pipeline, "process", counted)
    monkeypatch.setattr(settings, "DELIVERY_BATCH", 8)
    assert services.drain() == 2 * N
    assert batches == [8, 8, 4]
    assert_exactly_one_entry_per_recipient(messages, [nurse, pharmacist])
    # The drain re-armed the wake: the next message wakes a drain again.
    send_many(doctor, [nurse.address], [], n=1)
    assert woken == ["mailboxes.tasks.drain", "mailboxes.tasks.drain"]
