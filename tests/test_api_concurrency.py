"""Concurrent retries with one Idempotency-Key, against the real server on PostgreSQL."""

from __future__ import annotations

import json
import threading
import urllib.error
import urllib.request
from typing import Any

import pytest
from django.db import connection

from mailboxes.models import Delivery, IdempotencyRecord, Mailbox, Message
from tests import factories

pytestmark = pytest.mark.django_db(transaction=True)

THREADS = 12


def post(url: str, token: str, body: dict[str, Any], key: str) -> tuple[int, dict[str, Any]]:
    request = urllib.request.Request(  # noqa: S310 - the test server
        url,
        method="POST",
        data=json.dumps(body).encode(),
        headers={
            "Authorization": f"Bearer {token}",
            "Content-Type": "application/json",
            "Idempotency-Key": key,
        },
    )
    try:
        with urllib.request.urlopen(request, timeout=60) as response:  # noqa: S310 - live_server
            return response.status, json.load(response)
    except urllib.error.HTTPError as exc:
        return exc.code, json.load(exc)


def test_concurrent_retries_with_one_key_send_exactly_one_message(live_server) -> None:
    if connection.vendor != "postgresql":
        pytest.skip("needs PostgreSQL (DATABASE_URL): SQLite serialises every writer anyway")
    responsible = factories.professional(first_name="Sophie", last_name="Bernard")
    lab = factories.shared_mailbox(responsible, kind=Mailbox.Kind.APPLICATIVE, local="labo")
    _token, raw = factories.api_token(lab)
    doctor_box = factories.mailbox()
    body = {"to": [doctor_box.address], "subject": "Résultats", "text": "Glycémie normale."}
    barrier = threading.Barrier(THREADS)
    answers: list[tuple[int, dict[str, Any]]] = []
    lock = threading.Lock()

    def retry() -> None:
        barrier.wait()
        answer = post(f"{live_server.url}/api/v1/messages", raw, body, "resultat-000123")
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


def test_concurrent_retries_with_one_key_and_another_body_get_409(live_server) -> None:
    if connection.vendor != "postgresql":
        pytest.skip("needs PostgreSQL (DATABASE_URL)")
    responsible = factories.professional(first_name="Sophie", last_name="Bernard")
    lab = factories.shared_mailbox(responsible, kind=Mailbox.Kind.APPLICATIVE, local="labo")
    _token, raw = factories.api_token(lab)
    doctor_box = factories.mailbox()
    bodies = [
        {"to": [doctor_box.address], "subject": f"Résultats {i % 2}", "text": "."} for i in range(6)
    ]
    barrier = threading.Barrier(len(bodies))
    answers: list[int] = []
    lock = threading.Lock()

    def retry(body: dict[str, Any]) -> None:
        barrier.wait()
        status, _b = post(f"{live_server.url}/api/v1/messages", raw, body, "k-1")
        with lock:
            answers.append(status)

    threads = [threading.Thread(target=retry, args=(b,)) for b in bodies]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert sorted(answers) == [201, 201, 201, 409, 409, 409]
    assert Message.objects.filter(sender_mailbox=lab).count() == 1
