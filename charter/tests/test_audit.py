"""The audit journal: chained, verifiable, append-only, purged with a signed checkpoint."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta
from typing import Any

import pytest
import time_machine
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import DatabaseError, connection, transaction
from django.utils import timezone

from charter import audit, tasks
from charter.models import AuditCheckpoint, AuditEvent
from charter.tests.conftest import requires_postgresql
from tests import factories as f

pytestmark = pytest.mark.django_db


@contextmanager
def trigger_bypassed() -> Iterator[None]:
    """Play an attacker with SQL access: on PostgreSQL, switch the trigger off first."""
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("ALTER TABLE charter_auditevent DISABLE TRIGGER USER")
            cursor.execute("ALTER TABLE charter_auditcheckpoint DISABLE TRIGGER USER")
        yield
        with connection.cursor() as cursor:
            cursor.execute("ALTER TABLE charter_auditevent ENABLE TRIGGER USER")
            cursor.execute("ALTER TABLE charter_auditcheckpoint ENABLE TRIGGER USER")
    else:
        yield


def raw(sql: str, params: list[Any] | None = None) -> None:
    with trigger_bypassed(), connection.cursor() as cursor:
        cursor.execute(sql, params or [])


def three_events() -> list[AuditEvent]:
    return [audit.record("test.event", object_id=n, n=n) for n in range(3)]


def verify_fails_at(event_id: int) -> str:
    with pytest.raises(CommandError) as caught:
        call_command("verify_audit")
    message = str(caught.value)
    assert f"ligne {event_id} " in message
    return message


def test_verify_audit_accepts_an_intact_journal(capsys: pytest.CaptureFixture[str]) -> None:
    events = three_events()
    call_command("verify_audit")
    out = capsys.readouterr().out
    assert "intact" in out and events[-1].hash in out


def test_verify_audit_names_a_row_changed_with_raw_sql() -> None:
    events = three_events()
    raw("UPDATE charter_auditevent SET action = 'autre' WHERE id = %s", [events[1].id])
    assert "contenu modifié" in verify_fails_at(events[1].id)


def test_verify_audit_names_the_row_after_a_deleted_one() -> None:
    events = three_events()
    raw("DELETE FROM charter_auditevent WHERE id = %s", [events[1].id])
    assert "supprimées" in verify_fails_at(events[2].id)


def test_verify_audit_detects_that_the_first_row_was_deleted() -> None:
    events = three_events()
    raw("DELETE FROM charter_auditevent WHERE id = %s", [events[0].id])
    assert "début du journal" in verify_fails_at(events[1].id)


def test_verify_audit_names_a_forged_row_inserted_with_raw_sql() -> None:
    events = three_events()
    forged_id = events[-1].id + 1
    raw(
        "INSERT INTO charter_auditevent (id, at, actor_label, action, object_type, object_id, data,"
        " prev_hash, hash) VALUES (%s, %s, '', 'login.succeeded', '', '1', '{}', %s, %s)",
        [forged_id, timezone.now(), events[-1].hash, "f" * 64],
    )
    assert "contenu modifié" in verify_fails_at(forged_id)


def test_verify_audit_detects_a_row_replaced_by_a_self_consistent_forgery() -> None:
    events = three_events()
    forged = AuditEvent(
        id=events[1].id,
        at=events[1].at,
        actor_label="",
        action="forged",
        object_id="1",
        prev_hash=events[0].hash,
        data={},
    )
    forged.hash = audit._digest(forged.prev_hash, forged)
    raw("DELETE FROM charter_auditevent WHERE id = %s", [events[1].id])
    raw(
        "INSERT INTO charter_auditevent (id, at, actor_label, action, object_type, object_id, data,"
        " prev_hash, hash) VALUES (%s, %s, '', 'forged', '', '1', '{}', %s, %s)",
        [forged.id, forged.at, forged.prev_hash, forged.hash],
    )
    assert f"lien rompu avec la ligne {events[1].id}" in verify_fails_at(events[2].id)


def test_deleting_a_user_leaves_the_chain_intact() -> None:
    doctor = f.professional(enrol=False)
    audit.record("login.succeeded", actor=doctor, obj=doctor)
    doctor.delete()
    assert audit.verify_chain() is None
    assert AuditEvent.objects.get(action="login.succeeded").actor_id is not None


# --- PostgreSQL trigger -------------------------------------------------------------------


@requires_postgresql
@pytest.mark.parametrize(
    "sql",
    [
        "UPDATE charter_auditevent SET action = 'x' WHERE id = %s",
        "DELETE FROM charter_auditevent WHERE id = %s",
    ],
)
def test_the_database_refuses_to_update_or_delete_an_event(sql: str) -> None:
    assert connection.vendor == "postgresql"
    event = audit.record("test.event")
    with pytest.raises(DatabaseError, match="ajout seul"), transaction.atomic():
        connection.cursor().execute(sql, [event.id])
    assert AuditEvent.objects.get(id=event.id).action == "test.event"


@requires_postgresql
def test_the_database_refuses_an_orm_delete_of_the_journal() -> None:
    assert connection.vendor == "postgresql"
    audit.record("test.event")
    with pytest.raises(DatabaseError, match="ajout seul"), transaction.atomic():
        AuditEvent.objects.all().delete()


@requires_postgresql
def test_the_database_refuses_to_change_a_checkpoint() -> None:
    assert connection.vendor == "postgresql"
    with time_machine.travel(timezone.now() - timedelta(days=400)):
        audit.record("old.event")
    checkpoint = audit.purge_expired()
    assert checkpoint is not None
    with pytest.raises(DatabaseError, match="ajout seul"), transaction.atomic():
        AuditCheckpoint.objects.filter(pk=checkpoint.pk).update(purged_count=0)


# --- Retention ----------------------------------------------------------------------------


def events_aged(days: int, n: int) -> list[AuditEvent]:
    with time_machine.travel(timezone.now() - timedelta(days=days)):
        return [audit.record("test.event", n=i) for i in range(n)]


def test_the_purge_removes_old_events_and_the_rest_still_verifies(settings: Any) -> None:
    settings.AUDIT_RETENTION_DAYS = 365
    old = events_aged(400, 3)
    recent = events_aged(10, 2)
    checkpoint = audit.purge_expired()
    assert checkpoint is not None
    assert checkpoint.purged_count == 3 and checkpoint.last_event_id == old[-1].id
    assert not AuditEvent.objects.filter(id__lte=old[-1].id).exists()
    assert set(AuditEvent.objects.values_list("id", flat=True)) >= {e.id for e in recent}
    assert AuditEvent.objects.filter(action="audit.purged").exists()
    call_command("verify_audit")


def test_the_chain_goes_on_from_the_checkpoint_when_everything_was_purged(settings: Any) -> None:
    settings.AUDIT_RETENTION_DAYS = 30
    events_aged(60, 2)
    checkpoint = audit.purge_expired()
    assert checkpoint is not None
    # Only the purge's own event is left, chained to the checkpoint.
    assert AuditEvent.objects.get().prev_hash == checkpoint.last_hash
    audit.record("test.event")
    call_command("verify_audit")


def test_the_purge_does_nothing_when_no_event_is_old_enough() -> None:
    events_aged(1, 2)
    assert audit.purge_expired() is None
    assert AuditCheckpoint.objects.count() == 0


def test_the_purge_keeps_an_old_event_that_follows_a_recent_one(settings: Any) -> None:
    # A clock that went backwards must not punch a hole in the middle of the chain.
    settings.AUDIT_RETENTION_DAYS = 30
    first = events_aged(60, 1)[0]
    events_aged(1, 1)
    late_but_old = events_aged(90, 1)[0]
    checkpoint = audit.purge_expired()
    assert checkpoint is not None and checkpoint.last_event_id == first.id
    assert AuditEvent.objects.filter(id=late_but_old.id).exists()
    call_command("verify_audit")


def test_a_forged_checkpoint_is_detected(settings: Any) -> None:
    settings.AUDIT_RETENTION_DAYS = 30
    events_aged(60, 2)
    checkpoint = audit.purge_expired()
    assert checkpoint is not None
    raw("UPDATE charter_auditcheckpoint SET purged_count = 1 WHERE id = %s", [checkpoint.pk])
    assert "signature invalide" in verify_fails_at(checkpoint.last_event_id)


def test_a_deleted_checkpoint_is_detected(settings: Any) -> None:
    settings.AUDIT_RETENTION_DAYS = 30
    events_aged(60, 2)
    checkpoint = audit.purge_expired()
    assert checkpoint is not None
    raw("DELETE FROM charter_auditcheckpoint WHERE id = %s", [checkpoint.pk])
    first_left = AuditEvent.objects.order_by("id").first()
    assert first_left is not None
    verify_fails_at(first_left.id)


def test_a_checkpoint_signed_with_another_key_is_refused(settings: Any) -> None:
    settings.AUDIT_RETENTION_DAYS = 30
    events_aged(60, 2)
    audit.purge_expired()
    settings.AUDIT_CHECKPOINT_KEY = "une-autre-clé"
    assert audit.verify_chain() is not None


def test_the_purge_refuses_to_certify_a_tampered_journal(settings: Any) -> None:
    settings.AUDIT_RETENTION_DAYS = 30
    old = events_aged(60, 2)
    raw("UPDATE charter_auditevent SET action = 'autre' WHERE id = %s", [old[0].id])
    with pytest.raises(audit.AuditIntegrityError):
        audit.purge_expired()
    assert AuditEvent.objects.filter(id=old[0].id).exists()


def test_the_purge_task_runs_the_purge(settings: Any) -> None:
    settings.AUDIT_RETENTION_DAYS = 30
    events_aged(60, 2)
    assert tasks.purge_audit_journal.delay().get() == 2


# --- Admin --------------------------------------------------------------------------------


def test_the_admin_lists_and_filters_the_journal(staff_client: Any) -> None:
    audit.record("message.submitted", object_type="mailboxes.message", object_id="4242")
    audit.record("login.failed")
    page = staff_client.get("/admin/charter/auditevent/", {"action": "message.submitted"})
    assert page.status_code == 200
    assert [e.action for e in page.context["cl"].result_list] == ["message.submitted"]
    found = staff_client.get("/admin/charter/auditevent/", {"q": "4242"})
    assert [e.object_id for e in found.context["cl"].result_list] == ["4242"]
    dated = staff_client.get("/admin/charter/auditevent/", {"at__year": "1999"})
    assert dated.status_code == 200 and list(dated.context["cl"].result_list) == []


def test_nobody_can_add_change_or_delete_in_the_journal_admin(staff_client: Any) -> None:
    event = audit.record("login.failed")
    base = "/admin/charter/auditevent/"
    assert staff_client.get(f"{base}add/").status_code == 403
    assert staff_client.get(f"{base}{event.id}/delete/").status_code == 403
    assert staff_client.post(f"{base}{event.id}/change/", {"action": "x"}).status_code == 403
    assert staff_client.get(f"{base}{event.id}/change/").status_code == 200
    page = staff_client.get(base)
    assert b"delete_selected" not in page.content
    assert AuditEvent.objects.get(id=event.id).action == "login.failed"
