"""The journal's retention: whole seals purged behind a signed checkpoint, what is left still verifies.

Rows are sealed by the scheduled task before a purge can take them; on PostgreSQL only
committed transactions are sealed, hence ``transaction=True`` throughout.
"""

from __future__ import annotations

import base64
import json
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
import time_machine
from django.core.management import call_command
from django.db import DatabaseError, connection, transaction
from django.utils import timezone

from audit import journal, tasks
from audit.models import AuditCheckpoint, AuditEvent, AuditSeal
from audit.tests.conftest import raw, requires_postgresql
from audit.tests.test_audit import K1, anchor_now, seal_now, three_events, verify_fails

pytestmark = pytest.mark.django_db(transaction=True)


def events_aged(days: int, n: int) -> list[AuditEvent]:
    """n events written ``days`` ago, and sealed by the scheduled task."""
    with time_machine.travel(timezone.now() - timedelta(days=days)):
        written = [journal.record("test.event", n=i) for i in range(n)]
    seal_now()
    return written


def test_the_purge_removes_old_seals_and_the_rest_still_verifies(
    settings: Any, anchor_file: Path
) -> None:
    settings.AUDIT_RETENTION_DAYS = 365
    old = events_aged(400, 3)
    anchor_now()  # an anchor naming the seal the purge then removes
    purged_seal = AuditSeal.objects.get()
    recent = events_aged(10, 2)
    assert tasks.purge_journal.apply().get() == 3
    checkpoint = AuditCheckpoint.objects.get(kind="seals")
    assert checkpoint.purged_count == 3 and checkpoint.last_event_id == purged_seal.id
    assert checkpoint.last_hash == purged_seal.mac
    assert not AuditEvent.objects.filter(id__lte=old[-1].id).exists()
    assert set(AuditEvent.objects.values_list("id", flat=True)) >= {e.id for e in recent}
    assert AuditEvent.objects.filter(action="audit.purged").exists()
    # The newest purged seal stays, without its rows, as the start of what is kept.
    assert AuditSeal.objects.earliest("id") == purged_seal
    # The purge is recorded outside the database too.
    last = json.loads(anchor_file.read_text().splitlines()[-1])
    assert last["purge"] == ["seals", purged_seal.id, purged_seal.mac, 3]
    call_command("verify_audit")
    journal.record("test.event")
    anchor_now()
    call_command("verify_audit")


def test_the_journal_goes_on_from_the_checkpoint_when_everything_was_purged(
    settings: Any, anchor_file: Path
) -> None:
    settings.AUDIT_RETENTION_DAYS = 30
    events_aged(60, 2)
    anchor_now()
    checkpoint = journal.purge_expired()
    assert checkpoint is not None and checkpoint.purged_count == 2
    # Only the purge's own event is left, sealed after the seal the checkpoint names.
    left = AuditEvent.objects.get()
    assert left.action == "audit.purged"
    first, second = AuditSeal.objects.order_by("id")
    assert first.id == checkpoint.last_event_id and second.prev == first.mac
    journal.record("test.event")
    call_command("verify_audit")
    # And a second purge, from there.
    with time_machine.travel(timezone.now() + timedelta(days=90)):
        assert journal.purge_expired() is not None
        call_command("verify_audit")


def test_the_purge_does_nothing_when_no_event_is_old_enough() -> None:
    events_aged(1, 2)
    assert journal.purge_expired() is None
    assert AuditCheckpoint.objects.count() == 0


def test_the_purge_keeps_a_seal_that_follows_a_recent_one(settings: Any) -> None:
    # A clock that went backwards must not punch a hole in the middle of the journal.
    settings.AUDIT_RETENTION_DAYS = 30
    first = events_aged(60, 1)[0]
    events_aged(1, 1)
    late_but_old = events_aged(90, 1)[0]
    checkpoint = journal.purge_expired()
    assert checkpoint is not None and checkpoint.purged_count == 1
    assert not AuditEvent.objects.filter(id=first.id).exists()
    assert AuditEvent.objects.filter(id=late_but_old.id).exists()
    call_command("verify_audit")


def test_a_seal_with_one_recent_row_is_kept_whole(settings: Any) -> None:
    settings.AUDIT_RETENTION_DAYS = 30
    with time_machine.travel(timezone.now() - timedelta(days=60)):
        old = journal.record("test.event")
    journal.record("test.event")
    seal_now()
    assert journal.purge_expired() is None
    assert AuditEvent.objects.filter(id=old.id).exists()


def test_a_forged_checkpoint_is_detected(settings: Any) -> None:
    settings.AUDIT_RETENTION_DAYS = 30
    events_aged(60, 2)
    checkpoint = journal.purge_expired()
    assert checkpoint is not None
    raw("UPDATE charter_auditcheckpoint SET purged_count = 1 WHERE id = %s", [checkpoint.pk])
    assert "signature invalide" in verify_fails(checkpoint.last_event_id)


def test_a_deleted_checkpoint_is_detected(settings: Any) -> None:
    settings.AUDIT_ANCHOR_FILE = ""  # the seals alone show it (the anchors too: below)
    settings.AUDIT_RETENTION_DAYS = 30
    events_aged(60, 2)
    checkpoint = journal.purge_expired()
    assert checkpoint is not None
    raw("DELETE FROM charter_auditcheckpoint WHERE id = %s", [checkpoint.pk])
    # The seal it kept now stands for rows that are not there.
    verify_fails(seal=checkpoint.last_event_id)


def test_a_purge_checkpoint_missing_from_the_database_is_named_by_the_anchor(
    settings: Any, anchor_file: Path
) -> None:
    settings.AUDIT_RETENTION_DAYS = 30
    events_aged(60, 2)
    checkpoint = journal.purge_expired()
    assert checkpoint is not None
    raw("DELETE FROM charter_auditcheckpoint WHERE id = %s", [checkpoint.pk])
    assert "absent de la base" in verify_fails(seal=checkpoint.last_event_id)


def test_the_seal_kept_by_a_purge_deleted_is_detected(settings: Any) -> None:
    settings.AUDIT_RETENTION_DAYS = 30
    events_aged(60, 2)
    checkpoint = journal.purge_expired()
    assert checkpoint is not None
    seal_now()
    raw("DELETE FROM audit_auditseal WHERE id = %s", [checkpoint.last_event_id])
    assert "gardé" in verify_fails()


def test_a_row_put_back_into_a_purged_seal_is_detected(settings: Any) -> None:
    settings.AUDIT_RETENTION_DAYS = 30
    old = events_aged(60, 2)
    checkpoint = journal.purge_expired()
    assert checkpoint is not None
    seal_now()
    # A copy of a purged row (its MAC holds), put back where it was.
    position = ", xid" if connection.vendor == "postgresql" else ""
    value = f", {old[0].xid}" if connection.vendor == "postgresql" else ""
    raw(
        f"INSERT INTO charter_auditevent (id, at, actor_label, action, object_type, object_id,"  # noqa: S608
        f" data, prev_hash, hash, key_id{position}) VALUES (%s, %s, '', %s, '', '', %s, '',"
        f" %s, %s{value})",
        [old[0].id, old[0].at, old[0].action, json.dumps(old[0].data), old[0].hash, old[0].key_id],
    )
    assert "partie déjà purgée" in verify_fails(old[0].id)


def test_a_checkpoint_signed_with_another_key_is_refused(settings: Any) -> None:
    settings.AUDIT_RETENTION_DAYS = 30
    settings.AUDIT_KEYS = K1
    events_aged(60, 2)
    journal.purge_expired()
    settings.AUDIT_KEYS = "k1:" + base64.b64encode(b"y" * 32).decode()
    broken = journal.verify_chain()
    assert broken is not None and "signature invalide" in broken.reason


def test_the_purge_refuses_to_certify_a_tampered_journal(settings: Any) -> None:
    settings.AUDIT_RETENTION_DAYS = 30
    old = events_aged(60, 2)
    raw("UPDATE charter_auditevent SET action = 'autre' WHERE id = %s", [old[0].id])
    with pytest.raises(journal.AuditIntegrityError):
        journal.purge_expired()
    assert AuditEvent.objects.filter(id=old[0].id).exists()
    assert not AuditCheckpoint.objects.exists()


def test_the_purge_task_runs_the_purge(settings: Any) -> None:
    settings.AUDIT_RETENTION_DAYS = 30
    events_aged(60, 2)
    assert tasks.purge_journal.delay().get() == 2


@requires_postgresql
def test_the_application_may_not_change_a_checkpoint(settings: Any) -> None:
    assert connection.vendor == "postgresql"
    settings.AUDIT_RETENTION_DAYS = 30
    events_aged(60, 1)
    checkpoint = journal.purge_expired()
    assert checkpoint is not None
    with pytest.raises(DatabaseError, match="permission denied"), transaction.atomic():
        AuditCheckpoint.objects.filter(pk=checkpoint.pk).update(purged_count=0)


@requires_postgresql
def test_the_application_cannot_purge_seals_without_a_matching_checkpoint() -> None:
    three_events()
    seal_now()
    seal = AuditSeal.objects.get()
    with pytest.raises(DatabaseError, match="point de contrôle"), transaction.atomic():
        connection.cursor().execute("SELECT audit_purge_seals(%s)", [seal.id])
    assert AuditEvent.objects.count() == 3
