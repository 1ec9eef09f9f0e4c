"""The audit journal: keyed chain, external anchors, append-only, purged with a signed checkpoint.

Every attack is played as whoever holds the database (audit.tests.conftest.raw: on
PostgreSQL the cluster's superuser, trigger off), who knows the code but not AUDIT_KEYS,
and is caught by ``manage.py verify_audit``, the operator's check.
"""

from __future__ import annotations

import base64
import hashlib
import importlib
import json
import os
import socket
import subprocess
import sys
import tracemalloc
from datetime import timedelta
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import psycopg
import pytest
import time_machine
from django.core.checks import run_checks
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import DatabaseError, connection, transaction
from django.db.migrations.loader import MigrationLoader
from django.utils import timezone

from audit import chain, journal, tasks
from audit.models import AuditCheckpoint, AuditEvent
from audit.tests.conftest import raw, requires_postgresql
from tests import factories as f

pytestmark = pytest.mark.django_db
# Committed rows: the attacker's connection (PostgreSQL) sees only those, and the anchor
# after a purge is written on commit.
committed = pytest.mark.django_db(transaction=True)

K1 = "k1:" + base64.b64encode(b"1" * 32).decode()
K2 = "k2:" + base64.b64encode(b"2" * 32).decode()


def three_events() -> list[AuditEvent]:
    return [journal.record("test.event", object_id=n, n=n) for n in range(3)]


def verify_fails(at: int | None = None) -> str:
    with pytest.raises(CommandError) as caught:
        call_command("verify_audit")
    message = str(caught.value)
    if at is not None:
        assert f"ligne {at} " in message
    return message


def unkeyed(prev_hash: str, event: AuditEvent) -> str:
    """The plain SHA-256 anyone can compute from the code (the scheme before the keys)."""
    payload = json.dumps(
        [
            prev_hash,
            event.at.isoformat(),
            event.actor_id,
            event.actor_label,
            event.action,
            event.object_type,
            event.object_id,
            event.ip,
            event.data,
        ],
        sort_keys=True,
        ensure_ascii=False,
        separators=(",", ":"),
    )
    return hashlib.sha256(payload.encode()).hexdigest()


def rewrite_from(events: list[AuditEvent], index: int, **changes: Any) -> None:
    """The attack the keys stop: change one row, then recompute every hash after it."""
    prev = events[index - 1].hash if index else journal.GENESIS
    for position, event in enumerate(events[index:]):
        if position == 0:
            for name, value in changes.items():
                setattr(event, name, value)
        digest = unkeyed(prev, event)
        raw(
            "UPDATE charter_auditevent SET action = %s, prev_hash = %s, hash = %s, key_id = ''"
            " WHERE id = %s",
            [event.action, prev, digest, event.id],
        )
        prev = digest


def anchor_now() -> int:
    """The scheduled anchoring task, as Celery beat runs it; the id it anchored."""
    anchored: int = tasks.anchor_journal.apply().get()
    return anchored


# --- The chain ----------------------------------------------------------------------------


def test_verify_audit_accepts_an_intact_journal(capsys: pytest.CaptureFixture[str]) -> None:
    events = three_events()
    call_command("verify_audit")
    out = capsys.readouterr().out
    assert "intact" in out and events[-1].hash in out


def test_every_event_is_signed_with_the_current_key(settings: Any) -> None:
    settings.AUDIT_KEYS = K1
    event = journal.record("test.event")
    assert event.key_id == "k1"
    # Not the unkeyed digest: knowing the code is not enough to compute it.
    assert event.hash != unkeyed(event.prev_hash, event)


@committed
def test_verify_audit_names_a_row_changed_with_raw_sql() -> None:
    events = three_events()
    raw("UPDATE charter_auditevent SET action = 'autre' WHERE id = %s", [events[1].id])
    assert "contenu modifié" in verify_fails(events[1].id)


@committed
def test_a_row_changed_and_the_chain_recomputed_after_it_is_detected() -> None:
    events = three_events()
    rewrite_from(events, 1, action="login.succeeded")
    assert "sans clé" in verify_fails(events[1].id)


@committed
def test_a_chain_recomputed_with_a_guessed_key_is_detected(settings: Any) -> None:
    settings.AUDIT_KEYS = K1
    events = three_events()
    # The attacker signs like the application, with a key of their own under our key id.
    settings.AUDIT_KEYS = "k1:" + base64.b64encode(b"x" * 32).decode()
    prev = events[0].hash
    for event in events[1:]:
        event.action = "login.succeeded" if event is events[1] else event.action
        digest = chain._row_mac(b"x" * 32, "k1", prev, chain._event_content(event))
        raw(
            "UPDATE charter_auditevent SET action = %s, prev_hash = %s, hash = %s WHERE id = %s",
            [event.action, prev, digest, event.id],
        )
        prev = digest
    settings.AUDIT_KEYS = K1
    assert "contenu modifié" in verify_fails(events[1].id)


@committed
def test_verify_audit_names_the_row_after_a_deleted_one() -> None:
    events = three_events()
    raw("DELETE FROM charter_auditevent WHERE id = %s", [events[1].id])
    assert "supprimées" in verify_fails(events[2].id)


@committed
def test_verify_audit_detects_that_the_first_row_was_deleted() -> None:
    events = three_events()
    raw("DELETE FROM charter_auditevent WHERE id = %s", [events[0].id])
    assert "début du journal" in verify_fails(events[1].id)


@committed
def test_verify_audit_names_a_forged_row_inserted_with_raw_sql() -> None:
    events = three_events()
    forged_id = events[-1].id + 1
    raw(
        "INSERT INTO charter_auditevent (id, at, actor_label, action, object_type, object_id, data,"
        " prev_hash, hash, key_id) VALUES (%s, %s, '', 'login.succeeded', '', '1', '{}', %s, %s,"
        " %s)",
        [forged_id, timezone.now(), events[-1].hash, "f" * 64, events[-1].key_id],
    )
    assert "contenu modifié" in verify_fails(forged_id)


def test_deleting_a_user_leaves_the_chain_intact() -> None:
    doctor = f.professional(enrol=False)
    journal.record("login.succeeded", actor=doctor, obj=doctor)
    doctor.delete()
    assert journal.verify_chain() is None
    assert AuditEvent.objects.get(action="login.succeeded").actor_id is not None


# --- What reaches the journal ---------------------------------------------------------------


def test_hostile_strings_are_journaled_and_still_verify() -> None:
    # A peer's MAIL FROM or a header can carry NUL, lone surrogates, megabytes.
    event = journal.record(
        "smtp.peer_refused",
        object_id="x" * 500,
        mail_from="a\x00b@exemple.fr",
        peer="\ud800" + "y" * 100_000,
        nested={"\x00": ["\udfff", 1, 2.5, None]},
        ids={1: "un", 10: "dix", 2: "deux"},
    )
    stored = AuditEvent.objects.get(id=event.id)
    assert "\x00" not in json.dumps(stored.data) and len(stored.data["peer"]) == 1000
    assert len(stored.object_id) == 64
    assert journal.verify_chain() is None


def test_an_address_written_differently_by_the_database_still_verifies(client: Any) -> None:
    # PostgreSQL's inet gives 2001:db8::1 back for 2001:0DB8:0:0::1.
    client.post(
        "/connexion/",
        {"identifier": "10000000000", "password": "mauvais-mot-de-passe"},
        REMOTE_ADDR="2001:0DB8:0:0::1",
    )
    client.post(
        "/connexion/",
        {"identifier": "10000000000", "password": "mauvais-mot-de-passe"},
        REMOTE_ADDR="::ffff:192.0.2.7",
    )
    assert AuditEvent.objects.filter(action="login.failed").count() == 2
    assert journal.verify_chain() is None


def test_secrets_and_content_are_refused_by_the_journal() -> None:
    for name in ("token", "password", "subject", "body"):
        with pytest.raises(ValueError, match=name):
            journal.record("test.event", **{name: "valeur"})
    assert not AuditEvent.objects.exists()


# --- Key rotation ---------------------------------------------------------------------------


def test_the_journal_verifies_across_a_key_rotation(
    settings: Any, anchor_file: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    settings.AUDIT_KEYS = K1
    before = three_events()
    anchor_now()
    settings.AUDIT_KEYS = f"{K2},{K1}"  # new key first, the old one kept to verify
    after = three_events()
    anchor_now()
    assert {e.key_id for e in before} == {"k1"}
    assert {AuditEvent.objects.get(id=e.id).key_id for e in after} == {"k2"}
    call_command("verify_audit")
    assert "intact" in capsys.readouterr().out


def test_a_key_removed_too_early_is_named(settings: Any) -> None:
    settings.AUDIT_KEYS = K1
    first = journal.record("test.event")
    settings.AUDIT_KEYS = K2
    journal.record("test.event")
    assert "clé inconnue « k1 »" in verify_fails(first.id)


# --- Anchors outside the database ---------------------------------------------------------


@committed
def test_the_newest_rows_deleted_after_an_anchor_are_detected(anchor_file: Path) -> None:
    events = [*three_events(), *three_events()]
    anchor_now()
    raw("DELETE FROM charter_auditevent WHERE id >= %s", [events[4].id])
    message = verify_fails(events[-1].id)
    assert "ancrage externe" in message and "supprimées" in message


@committed
def test_an_emptied_journal_is_detected(anchor_file: Path) -> None:
    three_events()
    anchor_now()
    table = "TRUNCATE charter_auditevent, charter_auditcheckpoint"
    raw(table if connection.vendor == "postgresql" else "DELETE FROM charter_auditevent")
    assert "table vidée" in verify_fails()
    # The application carries on with a fresh chain: still caught, and the next anchor
    # refuses to certify it.
    journal.record("login.succeeded")
    assert "table vidée" in verify_fails()
    with pytest.raises(journal.AuditIntegrityError):
        anchor_now()


@committed
def test_a_journal_restored_from_an_older_backup_is_detected(anchor_file: Path) -> None:
    events = three_events()
    anchor_now()
    newer = journal.record("login.succeeded")
    anchor_now()
    raw("DELETE FROM charter_auditevent WHERE id > %s", [events[-1].id])
    verify_fails(newer.id)


@committed
def test_anchoring_restarts_after_a_restored_backup_with_the_reason_kept(
    anchor_file: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    events = three_events()
    anchor_now()
    newer = three_events()
    anchor_now()
    # Disaster recovery: the database comes back from a backup older than the last anchor.
    raw("DELETE FROM charter_auditevent WHERE id >= %s", [newer[0].id])
    verify_fails(newer[-1].id)
    with pytest.raises(journal.AuditIntegrityError):
        anchor_now()
    call_command("anchor_audit", "--restart", "restauration de la sauvegarde du 3 mars")
    call_command("verify_audit")
    captured = capsys.readouterr()
    assert "intact" in captured.out
    assert "ancrage repris" in captured.err and "sauvegarde du 3 mars" in captured.err
    restarted = AuditEvent.objects.get(action="audit.anchor_restarted")
    assert restarted.prev_hash == events[-1].hash
    anchor_now()  # and anchoring goes on from there


@committed
def test_a_restart_never_covers_a_row_changed_in_the_middle(anchor_file: Path) -> None:
    events = three_events()
    anchor_now()
    raw("UPDATE charter_auditevent SET action = 'autre' WHERE id = %s", [events[1].id])
    with pytest.raises(CommandError, match="ancrage refusé"):
        call_command("anchor_audit", "--restart", "on efface tout")
    verify_fails(events[1].id)


def test_rows_added_after_the_last_anchor_still_verify(
    anchor_file: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    three_events()
    first = anchor_now()
    three_events()
    call_command("verify_audit")
    out = capsys.readouterr().out
    assert "intact" in out and f"(ligne {first}) concorde" in out


@committed
def test_an_anchor_line_is_appended_every_n_events(settings: Any, anchor_file: Path) -> None:
    settings.AUDIT_ANCHOR_EVERY = 3
    for n in range(7):
        journal.record("test.event", n=n)
    lines = [json.loads(line) for line in anchor_file.read_text().splitlines()]
    # The first event of a chain, then each crossing of a multiple of 3.
    assert len(lines) >= 3
    assert [line["n"] for line in lines] == list(range(1, len(lines) + 1))
    assert lines[-1]["last_id"] >= AuditEvent.objects.order_by("-id").first().id - 2
    call_command("verify_audit")


def test_every_scheduled_journal_task_is_registered_and_the_anchor_routed(
    tmp_path: Path,
) -> None:
    # Beat and the routes name the tasks by string (the only names left): a name that
    # no longer matches a task (audit.tasks since issue 12) would silently never run.
    script = (
        "import django; django.setup(); from celery import current_app; "
        "from django.conf import settings; from audit.tasks import anchor_journal; "
        "current_app.loader.import_default_modules(); "
        "names = [e['task'] for e in settings.CELERY_BEAT_SCHEDULE.values()]; "
        "print([n for n in names if n not in current_app.tasks], "
        "anchor_journal.name in names, "
        "current_app.amqp.router.route({}, anchor_journal.name)['queue'].name)"
    )
    env = {
        **os.environ,
        "MSSANTE_VAR_DIR": str(tmp_path),
        "MSSANTE_IGNORE_DOTENV": "true",
        "AUDIT_ANCHOR_QUEUE": "audit-anchor",
    }
    env.pop("DATABASE_URL", None)
    done = subprocess.run(
        [sys.executable, "-c", script], env=env, capture_output=True, text=True, check=True
    )
    assert done.stdout.strip() == "[] True audit-anchor"


def test_the_anchor_file_is_private_and_holds_no_content(anchor_file: Path) -> None:
    journal.record("message.submitted", object_id=42, mailbox="dr.martin@exemple.mssante.fr")
    anchor_now()
    assert anchor_file.stat().st_mode & 0o777 == 0o600
    assert anchor_file.parent.stat().st_mode & 0o777 == 0o700
    assert "dr.martin" not in anchor_file.read_text()


def test_a_line_removed_from_the_anchor_file_is_detected(anchor_file: Path) -> None:
    for _ in range(3):
        journal.record("test.event")
        anchor_now()
    lines = anchor_file.read_text().splitlines()
    anchor_file.write_text("\n".join([lines[0], lines[2]]) + "\n")
    assert "ne suit pas la précédente" in verify_fails()


def test_a_forged_anchor_line_is_detected(anchor_file: Path) -> None:
    journal.record("test.event")
    anchor_now()
    *before, newest = anchor_file.read_text().splitlines()
    line = json.loads(newest)
    line["events"] = 99
    anchor_file.write_text("\n".join([*before, json.dumps(line)]) + "\n")
    assert "signature invalide" in verify_fails()


def test_a_torn_anchor_line_is_skipped_and_anchoring_goes_on(
    anchor_file: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    journal.record("test.event")
    anchor_now()
    with anchor_file.open("a") as handle:
        handle.write('{"v":1,"n":2,"at":"2026-')  # a crash in the middle of a write
    journal.record("test.event")
    anchor_now()
    call_command("verify_audit")
    captured = capsys.readouterr()
    assert "intact" in captured.out and "illisible" in captured.err


@committed
def test_anchoring_refuses_to_certify_a_tampered_tail(anchor_file: Path) -> None:
    events = three_events()
    anchor_now()
    more = three_events()
    rewrite_from([*events, *more], 4, action="login.succeeded")
    written = anchor_file.read_text()
    with pytest.raises(journal.AuditIntegrityError):
        anchor_now()
    assert anchor_file.read_text() == written


def test_the_anchor_command_appends_a_line(
    anchor_file: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    event = journal.record("test.event")
    call_command("anchor_audit")
    assert f"ligne {event.id}" in capsys.readouterr().out
    assert json.loads(anchor_file.read_text().splitlines()[-1])["head"] == event.hash


def test_the_anchor_command_says_when_anchoring_is_off(settings: Any) -> None:
    settings.AUDIT_ANCHOR_FILE = ""
    with pytest.raises(CommandError, match="désactivé"):
        call_command("anchor_audit")


def test_verify_audit_warns_when_nothing_is_anchored(
    settings: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    settings.AUDIT_ANCHOR_FILE = ""
    journal.record("test.event")
    call_command("verify_audit")
    assert "n'est attestée nulle part" in capsys.readouterr().err


def test_each_anchor_line_also_goes_to_syslog(settings: Any, anchor_file: Path) -> None:
    receiver = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    receiver.bind(("127.0.0.1", 0))
    receiver.settimeout(5)
    settings.AUDIT_ANCHOR_SYSLOG = f"127.0.0.1:{receiver.getsockname()[1]}"
    try:
        event = journal.record("test.event")
        anchor_now()
        datagram = receiver.recv(4096).decode()
    finally:
        receiver.close()
    assert "mssante-audit-anchor" in datagram and event.hash in datagram


# --- Unkeyed rows written before the keys (migration 0008's seal) -------------------------


def _legacy_rows(n: int) -> list[AuditEvent]:
    """Rows as the application wrote them before AUDIT_KEYS: plain SHA-256, no key id."""
    rows, prev = [], journal.GENESIS
    for i in range(n):
        event = AuditEvent(
            at=timezone.now(), action="test.legacy", object_id=str(i), data={}, prev_hash=prev
        )
        event.hash = unkeyed(prev, event)
        event.save(force_insert=True)
        rows.append(event)
        prev = event.hash
    return rows


def _run_the_seal_migration() -> None:
    name = ("charter", "0008_audit_keys_seal_and_restricted_role")
    migration = importlib.import_module(f"{name[0]}.migrations.{name[1]}")
    # The models as that migration saw them: the journal was still charter's then.
    historical = MigrationLoader(connection).project_state(name).apps
    migration.seal_unkeyed_rows(historical, SimpleNamespace(connection=connection))


def test_rows_from_before_the_keys_verify_once_sealed(capsys: pytest.CaptureFixture[str]) -> None:
    _legacy_rows(3)
    _run_the_seal_migration()
    journal.record("test.event")
    call_command("verify_audit")
    assert "dont 3 antérieur(s) aux clés" in capsys.readouterr().out


def test_unkeyed_rows_without_a_seal_are_refused() -> None:
    legacy = _legacy_rows(2)
    assert "sans clé" in verify_fails(legacy[0].id)


@committed
def test_the_sealed_rows_cannot_be_rewritten() -> None:
    _legacy_rows(3)
    _run_the_seal_migration()
    journal.record("test.event")
    newest = AuditEvent.objects.order_by("id")
    rewrite_from(list(newest)[:3], 1, action="autre")
    verify_fails()


@committed
def test_the_whole_journal_rewritten_as_unkeyed_rows_is_detected() -> None:
    legacy = _legacy_rows(2)
    _run_the_seal_migration()
    keyed = three_events()
    rewrite_from([*legacy, *keyed], 1, action="autre")
    verify_fails()


# --- Retention ----------------------------------------------------------------------------


def events_aged(days: int, n: int) -> list[AuditEvent]:
    with time_machine.travel(timezone.now() - timedelta(days=days)):
        return [journal.record("test.event", n=i) for i in range(n)]


@committed
def test_the_purge_removes_old_events_and_the_rest_still_verifies(
    settings: Any, anchor_file: Path
) -> None:
    settings.AUDIT_RETENTION_DAYS = 365
    old = events_aged(400, 3)
    anchor_now()  # an anchor naming rows the purge then removes
    recent = events_aged(10, 2)
    assert tasks.purge_journal.apply().get() == 3
    checkpoint = AuditCheckpoint.objects.get(kind="purge")
    assert checkpoint.purged_count == 3 and checkpoint.last_event_id == old[-1].id
    assert not AuditEvent.objects.filter(id__lte=old[-1].id).exists()
    assert set(AuditEvent.objects.values_list("id", flat=True)) >= {e.id for e in recent}
    assert AuditEvent.objects.filter(action="audit.purged").exists()
    # The purge is recorded outside the database too.
    last = json.loads(anchor_file.read_text().splitlines()[-1])
    assert last["purge"] == [old[-1].id, old[-1].hash, 3]
    call_command("verify_audit")
    journal.record("test.event")
    anchor_now()
    call_command("verify_audit")


@committed
def test_the_chain_goes_on_from_the_checkpoint_when_everything_was_purged(
    settings: Any, anchor_file: Path
) -> None:
    settings.AUDIT_RETENTION_DAYS = 30
    events_aged(60, 2)
    anchor_now()
    checkpoint = journal.purge_expired()
    assert checkpoint is not None
    # Only the purge's own event is left, chained to the checkpoint.
    assert AuditEvent.objects.get().prev_hash == checkpoint.last_hash
    journal.record("test.event")
    call_command("verify_audit")


def test_the_purge_does_nothing_when_no_event_is_old_enough() -> None:
    events_aged(1, 2)
    assert journal.purge_expired() is None
    assert AuditCheckpoint.objects.count() == 0


def test_the_purge_keeps_an_old_event_that_follows_a_recent_one(settings: Any) -> None:
    # A clock that went backwards must not punch a hole in the middle of the chain.
    settings.AUDIT_RETENTION_DAYS = 30
    first = events_aged(60, 1)[0]
    events_aged(1, 1)
    late_but_old = events_aged(90, 1)[0]
    checkpoint = journal.purge_expired()
    assert checkpoint is not None and checkpoint.last_event_id == first.id
    assert AuditEvent.objects.filter(id=late_but_old.id).exists()
    call_command("verify_audit")


@committed
def test_a_forged_checkpoint_is_detected(settings: Any) -> None:
    settings.AUDIT_RETENTION_DAYS = 30
    events_aged(60, 2)
    checkpoint = journal.purge_expired()
    assert checkpoint is not None
    raw("UPDATE charter_auditcheckpoint SET purged_count = 1 WHERE id = %s", [checkpoint.pk])
    assert "signature invalide" in verify_fails(checkpoint.last_event_id)


@committed
def test_a_deleted_checkpoint_is_detected(settings: Any) -> None:
    settings.AUDIT_ANCHOR_FILE = ""  # the chain alone shows it (the anchors too: below)
    settings.AUDIT_RETENTION_DAYS = 30
    events_aged(60, 2)
    checkpoint = journal.purge_expired()
    assert checkpoint is not None
    raw("DELETE FROM charter_auditcheckpoint WHERE id = %s", [checkpoint.pk])
    first_left = AuditEvent.objects.order_by("id").first()
    assert first_left is not None
    verify_fails(first_left.id)


@committed
def test_a_purge_checkpoint_missing_from_the_database_is_named_by_the_anchor(
    settings: Any, anchor_file: Path
) -> None:
    settings.AUDIT_RETENTION_DAYS = 30
    events_aged(60, 2)
    checkpoint = journal.purge_expired()
    assert checkpoint is not None
    raw("DELETE FROM charter_auditcheckpoint WHERE id = %s", [checkpoint.pk])
    assert "absent de la base" in verify_fails(checkpoint.last_event_id)


@committed
def test_an_old_prefix_deleted_without_a_purge_is_detected(settings: Any) -> None:
    events = three_events()
    raw("DELETE FROM charter_auditevent WHERE id <= %s", [events[1].id])
    assert "début du journal" in verify_fails(events[2].id)


def test_a_checkpoint_signed_with_another_key_is_refused(settings: Any) -> None:
    settings.AUDIT_RETENTION_DAYS = 30
    settings.AUDIT_KEYS = K1
    events_aged(60, 2)
    journal.purge_expired()
    settings.AUDIT_KEYS = "k1:" + base64.b64encode(b"y" * 32).decode()
    broken = journal.verify_chain()
    assert broken is not None and "signature invalide" in broken.reason


@committed
def test_a_checkpoint_from_before_the_keys_still_verifies(settings: Any) -> None:
    # Written by the previous version: signed with AUDIT_CHECKPOINT_KEY, no key id.
    legacy = _legacy_rows(2)
    checkpoint = AuditCheckpoint(
        created_at=timezone.now(),
        last_event_id=legacy[0].id,
        last_hash=legacy[0].hash,
        purged_count=1,
        cutoff=timezone.now(),
    )
    checkpoint.signature = chain._checkpoint_signature(checkpoint)
    checkpoint.save()
    _run_the_seal_migration()
    raw("DELETE FROM charter_auditevent WHERE id = %s", [legacy[0].id])
    assert journal.verify_chain() is None
    settings.AUDIT_CHECKPOINT_KEY = "une-autre-clé"
    assert journal.verify_chain() is not None


@committed
def test_the_purge_refuses_to_certify_a_tampered_journal(settings: Any) -> None:
    settings.AUDIT_RETENTION_DAYS = 30
    old = events_aged(60, 2)
    raw("UPDATE charter_auditevent SET action = 'autre' WHERE id = %s", [old[0].id])
    with pytest.raises(journal.AuditIntegrityError):
        journal.purge_expired()
    assert AuditEvent.objects.filter(id=old[0].id).exists()


def test_the_purge_task_runs_the_purge(settings: Any) -> None:
    settings.AUDIT_RETENTION_DAYS = 30
    events_aged(60, 2)
    assert tasks.purge_journal.delay().get() == 2


# --- Bounded verification -----------------------------------------------------------------


def _chain(n: int, settings: Any) -> None:
    """n keyed rows written in bulk (the journal of a busy operator, quickly)."""
    settings.AUDIT_KEYS = K1
    _, keys = journal.keyring()
    last = AuditEvent.objects.order_by("-id").first()
    prev = last.hash if last else journal.GENESIS
    rows, at = [], timezone.now()
    for i in range(n):
        event = AuditEvent(
            at=at, action="test.bulk", object_id=str(i), data={"n": i}, prev_hash=prev, key_id="k1"
        )
        event.hash = chain._row_mac(keys["k1"], "k1", prev, chain._event_content(event))
        rows.append(event)
        prev = event.hash
    AuditEvent.objects.bulk_create(rows, batch_size=1000)


def _peak_verifying() -> int:
    tracemalloc.start()
    try:
        assert journal.verify_chain() is None
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def test_verification_streams_the_journal_in_bounded_memory(
    settings: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(chain, "VERIFY_CHUNK", 200)
    _chain(1_000, settings)
    small = _peak_verifying()
    _chain(9_000, settings)
    large = _peak_verifying()
    # Ten times the rows, about the same memory (the rows are read a chunk at a time).
    assert large < small * 1.5 + 200_000, (small, large)


# --- Deployment checks ----------------------------------------------------------------------


def test_check_deploy_warns_when_nothing_is_anchored(settings: Any) -> None:
    settings.AUDIT_ANCHOR_FILE = ""
    ids = {m.id for m in run_checks(include_deployment_checks=True)}
    assert "audit.W002" in ids
    settings.AUDIT_ANCHOR_FILE = "/var/lib/mssante-audit/anchors.jsonl"
    assert "audit.W002" not in {m.id for m in run_checks(include_deployment_checks=True)}


@requires_postgresql
def test_check_deploy_warns_when_the_application_and_the_owner_are_one_role(
    settings: Any,
) -> None:
    settings.DATABASE_APP_ROLE = ""
    assert "audit.W001" in {m.id for m in run_checks(include_deployment_checks=True)}


@requires_postgresql
def test_the_database_check_finds_nothing_to_say_about_the_application_role() -> None:
    messages = run_checks(tags=["database"], databases=["default"])
    assert "audit.W003" not in {m.id for m in messages}


# --- PostgreSQL: the application's role -----------------------------------------------------


@requires_postgresql
@pytest.mark.parametrize(
    "sql",
    [
        "UPDATE charter_auditevent SET action = 'x' WHERE id = %s",
        "DELETE FROM charter_auditevent WHERE id = %s",
    ],
)
def test_the_application_may_not_update_or_delete_an_event(sql: str) -> None:
    assert connection.vendor == "postgresql"
    event = journal.record("test.event")
    with pytest.raises(DatabaseError, match="permission denied"), transaction.atomic():
        connection.cursor().execute(sql, [event.id])
    assert AuditEvent.objects.get(id=event.id).action == "test.event"


@requires_postgresql
def test_the_application_may_not_delete_the_journal_through_the_orm() -> None:
    assert connection.vendor == "postgresql"
    journal.record("test.event")
    with pytest.raises(DatabaseError, match="permission denied"), transaction.atomic():
        AuditEvent.objects.all().delete()


@committed
@requires_postgresql
def test_the_trigger_still_refuses_an_update_by_a_role_with_the_privilege() -> None:
    # Someone granted UPDATE by mistake, or a single-role installation: the trigger.
    assert connection.vendor == "postgresql"
    event = journal.record("test.event")
    url = os.environ.get("MSSANTE_TEST_PG_SUPERUSER_URL")
    if not url:
        pytest.skip("needs MSSANTE_TEST_PG_SUPERUSER_URL (scripts/services env)")
    target = psycopg.conninfo.make_conninfo(url, dbname=connection.settings_dict["NAME"])
    with (
        psycopg.connect(target, autocommit=True) as owner,
        owner.cursor() as cursor,
        pytest.raises(psycopg.errors.InsufficientPrivilege, match="ajout seul"),
    ):
        cursor.execute("UPDATE charter_auditevent SET action = 'x' WHERE id = %s", [event.id])


@requires_postgresql
def test_the_application_may_not_change_a_checkpoint(settings: Any) -> None:
    assert connection.vendor == "postgresql"
    settings.AUDIT_RETENTION_DAYS = 30
    events_aged(60, 1)
    checkpoint = journal.purge_expired()
    assert checkpoint is not None
    with pytest.raises(DatabaseError, match="permission denied"), transaction.atomic():
        AuditCheckpoint.objects.filter(pk=checkpoint.pk).update(purged_count=0)


# --- Admin --------------------------------------------------------------------------------


def test_the_admin_lists_and_filters_the_journal(staff_client: Any) -> None:
    journal.record("message.submitted", object_type="mailboxes.message", object_id="4242")
    journal.record("login.failed")
    page = staff_client.get("/admin/audit/auditevent/", {"action": "message.submitted"})
    assert page.status_code == 200
    assert [e.action for e in page.context["cl"].result_list] == ["message.submitted"]
    found = staff_client.get("/admin/audit/auditevent/", {"q": "4242"})
    assert [e.object_id for e in found.context["cl"].result_list] == ["4242"]
    dated = staff_client.get("/admin/audit/auditevent/", {"at__year": "1999"})
    assert dated.status_code == 200 and list(dated.context["cl"].result_list) == []


def test_nobody_can_add_change_or_delete_in_the_journal_admin(staff_client: Any) -> None:
    event = journal.record("login.failed")
    base = "/admin/audit/auditevent/"
    assert staff_client.get(f"{base}add/").status_code == 403
    assert staff_client.get(f"{base}{event.id}/delete/").status_code == 403
    assert staff_client.post(f"{base}{event.id}/change/", {"action": "x"}).status_code == 403
    assert staff_client.get(f"{base}{event.id}/change/").status_code == 200
    page = staff_client.get(base)
    assert b"delete_selected" not in page.content
    assert AuditEvent.objects.get(id=event.id).action == "login.failed"
