"""The API's rate limit with the real Redis of `make test`, and without it.

With a Redis broker every web process counts a token's requests in Redis (no row lock
shared by a token's concurrent requests); a Redis that does not answer must not open the
door: the count falls back to the token's row. Either way every use is journaled.
"""

from __future__ import annotations

import os
from datetime import timedelta
from typing import Any

import pytest
from django.test import Client
from django.utils import timezone

from audit.models import AuditEvent
from mailboxes.models import ApiToken
from mailboxes.services import queue
from mssante.celery import app as celery_app
from tests.personas import Lab

pytestmark = [
    pytest.mark.services,
    pytest.mark.django_db(transaction=True),
    pytest.mark.skipif(
        not os.environ.get("MSSANTE_TEST_SERVICES"),
        reason="needs scripts/services (MSSANTE_TEST_SERVICES=1)",
    ),
]


def _list(lab: Lab) -> int:
    response = Client().get(
        f"/api/v1/mailboxes/{lab.box.address}/messages",
        headers={"Authorization": f"Bearer {lab.raw}"},
    )
    if response.status_code == 429:
        assert response.json()["code"] == "rate_limited"
        assert "Trop de requêtes" in response.json()["message"]
        assert int(response["Retry-After"]) >= 1
    return response.status_code


def _uses(token: ApiToken) -> int:
    return AuditEvent.objects.filter(action="api_token.used", object_id=str(token.pk)).count()


def test_the_limit_is_counted_in_redis_and_every_use_journaled(
    laboratoire: Lab, settings: Any
) -> None:
    settings.API_RATE_LIMIT = 2
    client = queue.broker_redis()
    assert client is not None, "make test runs the API with the Redis broker"
    token = laboratoire.token
    for key in client.scan_iter(f"mssante:api-rate:{token.pk}:*"):
        client.delete(key)

    assert [_list(laboratoire) for _ in range(3)] == [200, 200, 429]

    token.refresh_from_db()
    assert token.rate_count == 0  # counted in Redis, not on the row
    [key] = list(client.scan_iter(f"mssante:api-rate:{token.pk}:*"))
    assert int(client.get(key) or 0) == 3
    assert 0 < client.ttl(key) <= settings.API_RATE_WINDOW_SECONDS + 5
    assert _uses(token) == 3
    assert token.last_used_at is not None


def test_last_use_is_written_again_only_when_it_is_stale(laboratoire: Lab) -> None:
    token = laboratoire.token
    recent = timezone.now() - timedelta(seconds=5)
    ApiToken.objects.filter(pk=token.pk).update(last_used_at=recent)
    assert _list(laboratoire) == 200
    token.refresh_from_db()
    assert token.last_used_at == recent

    stale = timezone.now() - timedelta(minutes=5)
    ApiToken.objects.filter(pk=token.pk).update(last_used_at=stale)
    assert _list(laboratoire) == 200
    token.refresh_from_db()
    assert token.last_used_at is not None and token.last_used_at > stale
    assert _uses(token) == 2


def test_a_redis_that_does_not_answer_falls_back_to_the_token_row(
    laboratoire: Lab, settings: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings.API_RATE_LIMIT = 2
    # Nothing listens on port 1: every Redis call fails at once. (Celery reads the URL
    # from the environment before its settings.)
    monkeypatch.setenv("CELERY_BROKER_URL", "redis://127.0.0.1:1/0")
    monkeypatch.setattr(celery_app.conf, "broker_url", "redis://127.0.0.1:1/0")
    monkeypatch.setattr(celery_app.conf, "broker_write_url", None)
    assert queue.broker_redis() is not None

    assert [_list(laboratoire) for _ in range(3)] == [200, 200, 429]

    token = laboratoire.token
    token.refresh_from_db()
    assert token.rate_count == 3
    assert _uses(token) == 3
