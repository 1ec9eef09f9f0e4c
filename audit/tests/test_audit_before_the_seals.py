"""A journal written before the seals stays verifiable: its old chain up to a signed end, then seals.

Rows written before issue 13 are chained (``prev_hash``); rows written before the keys
are unkeyed, vouched for by charter's migration 0008. audit's migration 0002 signs where
the chain ends; the first seal links to that signature. Tests that build such a journal
run those migrations' functions on the rows they wrote (audit.tests.legacy writes like
the code of issues 11 and 12), then act as today.
"""

from __future__ import annotations

import importlib
from datetime import timedelta
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
import time_machine
from django.core.management import call_command
from django.db import connection
from django.db.migrations.loader import MigrationLoader
from django.utils import timezone

from audit import checkpoints, journal
from audit.models import AuditCheckpoint, AuditEvent, AuditSeal
from audit.tests import legacy
from audit.tests.conftest import raw
from audit.tests.test_audit import (
    anchor_now,
    rewrite_from,
    seal_now,
    three_events,
    unkeyed,
    verify_fails,
)

pytestmark = pytest.mark.django_db(transaction=True)


def _run_migration(app: str, name: str, function: str) -> None:
    migration = importlib.import_module(f"{app}.migrations.{name}")
    # The models as that migration saw them.
    historical = MigrationLoader(connection).project_state((app, name)).apps
    getattr(migration, function)(historical, SimpleNamespace(connection=connection))


def seal_the_unkeyed_rows() -> None:
    _run_migration("charter", "0008_audit_keys_seal_and_restricted_role", "seal_unkeyed_rows")


def mark_the_end_of_the_chain() -> None:
    _run_migration("audit", "0002_journal_sealed_without_a_global_lock", "mark_chain_end")


def unkeyed_rows(n: int) -> list[AuditEvent]:
    """Rows as the application wrote them before AUDIT_KEYS: plain SHA-256, no key id."""
    rows, prev = [], journal.GENESIS
    for i in range(n):
        event = AuditEvent(
            at=timezone.now(),
            action="test.legacy",
            object_id=str(i),
            data={},
            prev_hash=prev,
            xid=None,
        )
        event.hash = unkeyed(prev, event)
        event.save(force_insert=True)
        rows.append(event)
        prev = event.hash
    return rows


def chained(n: int) -> list[AuditEvent]:
    """Keyed rows chained as issues 11 and 12 wrote them."""
    ids = [legacy.record("test.chained", object_id=i, n=i) for i in range(n)]
    return list(AuditEvent.objects.filter(id__in=ids).order_by("id"))


# --- Unkeyed rows (charter's migration 0008) -------------------------------------------------


def test_rows_from_before_the_keys_verify_once_sealed(capsys: pytest.CaptureFixture[str]) -> None:
    unkeyed_rows(3)
    seal_the_unkeyed_rows()
    mark_the_end_of_the_chain()
    journal.record("test.event")
    call_command("verify_audit")
    out = capsys.readouterr().out
    assert "intact : 4 événement(s) (3 de l'ancienne chaîne, dont 3 antérieur(s) aux clés)" in out


def test_unkeyed_rows_without_a_seal_are_refused() -> None:
    written = unkeyed_rows(2)
    assert "sans clé" in verify_fails(written[0].id)


def test_the_sealed_rows_cannot_be_rewritten() -> None:
    unkeyed_rows(3)
    seal_the_unkeyed_rows()
    mark_the_end_of_the_chain()
    journal.record("test.event")
    rewrite_from(list(AuditEvent.objects.order_by("id"))[:3], 1, action="autre")
    verify_fails()


def test_the_whole_journal_rewritten_as_unkeyed_rows_is_detected() -> None:
    old = unkeyed_rows(2)
    seal_the_unkeyed_rows()
    mark_the_end_of_the_chain()
    keyed = three_events()
    seal_now()
    rewrite_from([*old, *keyed], 1, action="autre")
    verify_fails()


def test_a_checkpoint_from_before_the_keys_still_verifies(settings: Any) -> None:
    # Written by the version before the keys: signed with AUDIT_CHECKPOINT_KEY, no key id.
    old = unkeyed_rows(2)
    checkpoint = AuditCheckpoint(
        created_at=timezone.now(),
        last_event_id=old[0].id,
        last_hash=old[0].hash,
        purged_count=1,
        cutoff=timezone.now(),
    )
    checkpoint.signature = checkpoints.signature(checkpoint)
    checkpoint.save()
    seal_the_unkeyed_rows()
    mark_the_end_of_the_chain()
    raw("DELETE FROM charter_auditevent WHERE id = %s", [old[0].id])
    assert journal.verify_chain() is None
    settings.AUDIT_CHECKPOINT_KEY = "une-autre-clé"
    assert journal.verify_chain() is not None


# --- The old chain, then the seals (audit's migration 0002) ---------------------------------


def test_a_chain_written_before_the_seals_verifies_and_the_seals_follow_it(
    anchor_file: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    old = chained(4)
    legacy.anchor(anchor_file)  # a line of the old format, naming a row
    mark_the_end_of_the_chain()
    call_command("verify_audit")
    assert f"(ligne {old[-1].id}) concorde" in capsys.readouterr().out
    three_events()
    anchored = anchor_now()  # the first line of the new format, checked against the old one
    end = AuditCheckpoint.objects.get(kind="end")
    assert end.last_event_id == old[-1].id and end.last_hash == old[-1].hash
    assert AuditSeal.objects.get(id=anchored).prev == end.signature
    call_command("verify_audit")
    out = capsys.readouterr().out
    assert "intact : 7 événement(s) (4 de l'ancienne chaîne)" in out
    assert f"(scellement n°{anchored}) concorde" in out


def test_a_row_of_the_old_chain_changed_is_detected() -> None:
    old = chained(3)
    mark_the_end_of_the_chain()
    raw("UPDATE charter_auditevent SET action = 'autre' WHERE id = %s", [old[1].id])
    assert "contenu modifié" in verify_fails(old[1].id)


def test_a_row_of_the_old_chain_deleted_is_detected() -> None:
    old = chained(3)
    mark_the_end_of_the_chain()
    raw("DELETE FROM charter_auditevent WHERE id = %s", [old[1].id])
    assert "supprimées" in verify_fails(old[2].id)


def test_the_old_chains_newest_row_deleted_is_detected() -> None:
    old = chained(3)
    mark_the_end_of_the_chain()
    journal.record("test.event")
    seal_now()
    raw("DELETE FROM charter_auditevent WHERE id = %s", [old[-1].id])
    assert f"devait finir à la ligne {old[-1].id}" in verify_fails()


def test_the_signed_end_of_the_old_chain_deleted_is_detected() -> None:
    chained(3)
    mark_the_end_of_the_chain()
    journal.record("test.event")
    seal_now()
    raw("DELETE FROM charter_auditcheckpoint WHERE kind = 'end'")
    verify_fails()


def test_a_chained_row_written_after_the_end_is_detected() -> None:
    # Old code left running after the migration (or someone imitating it with the key).
    chained(3)
    mark_the_end_of_the_chain()
    legacy.record("test.chained")
    verify_fails()


def test_the_old_chain_is_purged_as_before_then_whole_seals(
    settings: Any, anchor_file: Path
) -> None:
    settings.AUDIT_RETENTION_DAYS = 365
    with time_machine.travel(timezone.now() - timedelta(days=400)):
        old = chained(3)
    mark_the_end_of_the_chain()
    three_events()
    seal_now()
    checkpoint = journal.purge_expired()
    assert checkpoint is not None and checkpoint.kind == "purge"
    assert checkpoint.purged_count == 3 and checkpoint.last_event_id == old[-1].id
    assert not AuditEvent.objects.filter(id__in=[e.id for e in old]).exists()
    call_command("verify_audit")
    with time_machine.travel(timezone.now() + timedelta(days=400)):
        checkpoint = journal.purge_expired()
        assert checkpoint is not None and checkpoint.kind == "seals"
        call_command("verify_audit")
