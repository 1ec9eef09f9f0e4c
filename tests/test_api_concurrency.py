"""Concurrent retries with one Idempotency-Key, against the real server on PostgreSQL."""

from __future__ import annotations

import threading
from typing import Any

import pytest
from django.db import connection

from mailboxes.models import Delivery, IdempotencyRecord, Mailbox, Message
from tests.personas import Lab, api_post

pytestmark = pytest.mark.django_db(transaction=True)

THREADS = 12


def test_concurrent_retries_with_one_key_send_exactly_one_message(
    live_server, laboratoire: Lab, doctor: Mailbox
) -> None:
    if connection.vendor != "postgresql":
        pytest.skip("needs PostgreSQL (DATABASE_URL): SQLite serialises every writer anyway")
    lab, raw, doctor_box = laboratoire.box, laboratoire.raw, doctor
    body = {"to": [doctor_box.address], "subject": "Résultats", "text": "Glycémie normale."}
    barrier = threading.Barrier(THREADS)
    answers: list[tuple[int, dict[str, Any]]] = []
    lock = threading.Lock()

    def retry() -> None:
        barrier.wait()
        answer = api_post(f"{live_server.url}/api/v1/messages", raw, body, "resultat-000123")
        with lock:
            answers.append(answer)

    threads = [threading.Thread(target=retry) for _ in range(THREADS)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)

    assert [status for status, _b in answers] == [201] * THREADS, answers
    assert len({b["id"] for _s, b in answers}) == 1
    assert Message.objects.filter(sender_mailbox=lab).count() == 1
    assert Delivery.objects.filter(recipient=doctor_box.address).count() == 1
    assert IdempotencyRecord.objects.count() == 1


def test_concurrent_retries_with_one_key_and_another_body_get_409(
    live_server, laboratoire: Lab, doctor: Mailbox
) -> None:
    if connection.vendor != "postgresql":
        pytest.skip("needs PostgreSQL (DATABASE_URL)")
    lab, raw, doctor_box = laboratoire.box, laboratoire.raw, doctor
    bodies = [
        {"to": [doctor_box.address], "subject": f"Résultats {i % 2}", "text": "."} for i in range(6)
    ]
    barrier = threading.Barrier(len(bodies))
    answers: list[int] = []
    lock = threading.Lock()

    def retry(body: dict[str, Any]) -> None:
        barrier.wait()
        status, _b = api_post(f"{live_server.url}/api/v1/messages", raw, body, "k-1")
        with lock:
            answers.append(status)

    threads = [threading.Thread(target=retry, args=(b,)) for b in bodies]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert sorted(answers) == [201, 201, 201, 409, 409, 409]
    assert Message.objects.filter(sender_mailbox=lab).count() == 1
