"""The suite's real services: PostgreSQL, Redis and a Celery worker, as `make test` starts them."""

from __future__ import annotations

import os

import pytest
from django.db import connection

from accounts import services
from audit import journal
from audit.models import AuditEvent
from mssante.celery import app as celery_app
from tests import factories as f

needs_services = pytest.mark.skipif(
    os.environ.get("MSSANTE_TEST_SERVICES") != "1",
    reason="needs the services of `make test` (scripts/services start)",
)


@needs_services
@pytest.mark.django_db
def test_the_suite_runs_on_postgresql():
    assert connection.vendor == "postgresql"


@needs_services
@pytest.mark.services
def test_a_celery_worker_answers_on_the_redis_broker():
    replies = celery_app.control.ping(timeout=2.0)
    assert replies, "no Celery worker answered: is scripts/services running?"


@needs_services
@pytest.mark.django_db(transaction=True)
def test_identities_and_login_keys_are_unique_on_postgresql():
    doctor = f.professional()
    with pytest.raises(services.AccountError):
        services.create_professional(
            identifier=doctor.professional.id_number,
            first_name="X",
            last_name="Y",
            profession_code="10",
        )


@needs_services
@pytest.mark.django_db(transaction=True)
def test_audit_events_written_from_threads_keep_one_chain():
    from concurrent.futures import ThreadPoolExecutor

    from django.db import connections

    def write(i: int) -> None:
        try:
            journal.record("test.concurrent", object_id=i)
        finally:
            connections.close_all()

    with ThreadPoolExecutor(max_workers=8) as pool:
        list(pool.map(write, range(40)))
    assert AuditEvent.objects.filter(action="test.concurrent").count() == 40
    assert journal.verify_chain() is None
