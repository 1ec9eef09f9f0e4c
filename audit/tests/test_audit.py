"""The audit journal: rows signed alone, sealed in order, anchored outside, append-only.

Every attack is played as whoever holds the database (audit.tests.conftest.raw: on
PostgreSQL the cluster's superuser, trigger off), who knows the code but not AUDIT_KEYS,
and is caught by ``manage.py verify_audit``, the operator's check. Rows are sealed by
the scheduled task (``seal_now``), as Celery beat runs it; on PostgreSQL only committed
transactions can be sealed, hence the tests marked ``committed``.
"""

# The attacks are SQL built here from fixed table and column names, no outside input.
# ruff: noqa: S608

from __future__ import annotations

import base64
import hashlib
import json
import os
import socket
import subprocess
import sys
import tracemalloc
from pathlib import Path
from typing import Any

import psycopg
import pytest
from django.core.checks import run_checks
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import DatabaseError, connection, transaction
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from audit import journal, rows, seals, tasks
from audit.models import AuditEvent, AuditSeal
from audit.tests.conftest import raw, requires_postgresql
from tests import factories as f
from tests.personas import login, start_draft

pytestmark = pytest.mark.django_db
# Committed rows: only those can be sealed (PostgreSQL), and the attacker's connection
# sees only those.
committed = pytest.mark.django_db(transaction=True)

K1 = "k1:" + base64.b64encode(b"1" * 32).decode()
K2 = "k2:" + base64.b64encode(b"2" * 32).decode()


def three_events() -> list[AuditEvent]:
    return [journal.record("test.event", object_id=n, n=n) for n in range(3)]


def seal_now() -> int:
    """The scheduled sealing task, as Celery beat runs it; how many rows it sealed."""
    sealed: int = tasks.seal_journal.apply().get()
    return sealed


def anchor_now() -> int:
    """The scheduled anchoring task, as Celery beat runs it; the seal it anchored."""
    anchored: int = tasks.anchor_journal.apply().get()
    return anchored


def newest_seal() -> AuditSeal:
    return AuditSeal.objects.latest("id")


def verify_fails(at: int | None = None, *, seal: int | None = None) -> str:
    with pytest.raises(CommandError) as caught:
        call_command("verify_audit")
    message = str(caught.value)
    if at is not None:
        assert f"ligne {at} " in message, message
    if seal is not None:
        assert f"scellement n°{seal} " in message, message
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


# --- Writing: one INSERT, a MAC of its own ------------------------------------------------


def test_recording_an_event_is_one_insert_with_no_lock_and_no_read() -> None:
    journal.record("test.event")  # a journal that already has rows
    with CaptureQueriesContext(connection) as queries:
        journal.record("test.event", object_id=7, n=1)
    statements = [q["sql"].split()[0].upper() for q in queries.captured_queries]
    assert statements == ["INSERT"], queries.captured_queries
    assert "lock" not in queries.captured_queries[0]["sql"].lower()


def test_a_batch_of_events_is_one_insert_and_each_verifies() -> None:
    doctor = f.professional(enrol=False)
    with CaptureQueriesContext(connection) as queries:
        written = journal.record_many(
            [
                ("message.delivered", doctor, {"delivery": 1}),
                ("message.delivered", ("mailboxes.message", 42), {"delivery": 2}),
                ("message.delivered", None, {"delivery": 2}),
            ],
            actor=doctor,
        )
    assert [q["sql"].split()[0].upper() for q in queries.captured_queries] == ["INSERT"]
    assert [e.id for e in written] == sorted(e.id for e in written)
    stored = list(AuditEvent.objects.order_by("id").filter(action="message.delivered"))
    assert [(e.object_type, e.object_id) for e in stored] == [
        ("accounts.user", str(doctor.pk)),
        ("mailboxes.message", "42"),
        ("", ""),
    ]
    assert {e.actor_id for e in stored} == {doctor.pk}
    # The same content at the same microsecond: two rows, one MAC, both valid.
    assert stored[2].data == {"delivery": 2} and journal.verify_chain() is None


def test_a_batch_refuses_content_like_a_single_event() -> None:
    with pytest.raises(ValueError, match="subject"):
        journal.record_many([("message.delivered", None, {"subject": "Bilan"})])
    assert not AuditEvent.objects.exists()


def test_every_event_is_signed_with_the_current_key(settings: Any) -> None:
    settings.AUDIT_KEYS = K1
    event = journal.record("test.event")
    assert event.key_id == "k1" and event.prev_hash == ""
    # Not the unkeyed digest: knowing the code is not enough to compute it.
    assert event.hash != unkeyed(event.prev_hash, event)


@committed
def test_verify_audit_accepts_an_intact_journal(capsys: pytest.CaptureFixture[str]) -> None:
    three_events()
    assert seal_now() == 3
    call_command("verify_audit")
    out = capsys.readouterr().out
    assert "intact : 3 événement(s)," in out and newest_seal().mac in out
    assert "pas encore scellé" not in out


@committed
def test_a_message_sent_through_the_webmail_is_sealed_by_the_scheduled_task(
    claire: Any, julien: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    (user, box), (_, nurse) = claire, julien
    client = login(user)
    draft = start_draft(client, box)
    response = client.post(
        reverse("webmail_draft_send", args=[draft.pk]),
        {"to": f"{nurse.address}\n", "cc": "", "subject": "Bilan", "text": "Voici."},
    )
    assert response.status_code == 302
    journaled = AuditEvent.objects.filter(action__startswith="message.").count()
    assert journaled >= 2  # submitted, delivered
    sealed = seal_now()
    assert sealed == AuditEvent.objects.count()
    call_command("verify_audit")
    out = capsys.readouterr().out
    assert f"intact : {sealed} événement(s)," in out and "pas encore scellé" not in out


@committed
def test_a_request_that_journals_has_its_rows_sealed_after_commit(
    client: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(journal, "_next_seal", 0.0)  # as in a process that starts
    client.post("/connexion/", {"identifier": "10000000000", "password": "mauvais"})
    failed = AuditEvent.objects.get(action="login.failed")
    seal = newest_seal()
    assert seal.count == 1 and seal.total == 1
    # Throttled: the next request within AUDIT_SEAL_SECONDS leaves it to beat.
    client.post("/connexion/", {"identifier": "10000000000", "password": "mauvais"})
    assert AuditSeal.objects.count() == 1
    assert seal_now() == 1 and failed.id < AuditEvent.objects.latest("id").id


@committed
@pytest.mark.parametrize("sealed", [True, False], ids=["sealed", "not-sealed-yet"])
def test_verify_audit_names_a_row_changed_with_raw_sql(sealed: bool) -> None:
    events = three_events()
    if sealed:
        seal_now()
    raw("UPDATE charter_auditevent SET action = 'autre' WHERE id = %s", [events[1].id])
    assert "contenu modifié" in verify_fails(events[1].id)


@committed
def test_a_row_rewritten_with_a_digest_anyone_can_compute_is_detected() -> None:
    events = three_events()
    seal_now()
    rewrite_from(events, 1, action="login.succeeded")
    assert "sans clé" in verify_fails(events[1].id)


@committed
def test_a_row_signed_with_a_guessed_key_is_detected(settings: Any) -> None:
    settings.AUDIT_KEYS = K1
    events = three_events()
    seal_now()
    # The attacker signs like the application, with a key of their own under our key id.
    event = events[1]
    event.action = "login.succeeded"
    digest = rows.row_mac(b"x" * 32, "k1", "", rows.event_content(event))
    raw(
        "UPDATE charter_auditevent SET action = %s, hash = %s WHERE id = %s",
        [event.action, digest, event.id],
    )
    assert "contenu modifié" in verify_fails(events[1].id)


@committed
def test_a_sealed_row_deleted_is_detected() -> None:
    three_events()
    seal_now()
    raw("DELETE FROM charter_auditevent WHERE id = %s", [AuditEvent.objects.all()[1].id])
    message = verify_fails(seal=newest_seal().id)
    assert "2 ligne(s) dans sa plage, il en compte 3" in message and "supprimées" in message


@committed
def test_the_first_sealed_row_deleted_is_detected() -> None:
    events = three_events()
    seal_now()
    raw("DELETE FROM charter_auditevent WHERE id = %s", [events[0].id])
    assert "supprimées" in verify_fails(seal=newest_seal().id)


@committed
def test_an_old_prefix_deleted_without_a_purge_is_detected() -> None:
    events = three_events()
    seal_now()
    three_events()
    seal_now()
    raw("DELETE FROM charter_auditevent WHERE id <= %s", [events[1].id])
    first = AuditSeal.objects.earliest("id")
    assert "supprimées" in verify_fails(seal=first.id)


@committed
def test_a_forged_row_inserted_with_raw_sql_is_detected() -> None:
    events = three_events()
    seal_now()
    forged_id = events[-1].id + 1
    raw(
        "INSERT INTO charter_auditevent (id, at, actor_label, action, object_type, object_id, data,"
        " prev_hash, hash, key_id) VALUES (%s, %s, '', 'login.succeeded', '', '1', '{}', '', %s,"
        " %s)",
        [forged_id, timezone.now(), "f" * 64, events[-1].key_id],
    )
    assert "contenu modifié" in verify_fails(forged_id)


@committed
def test_a_genuine_row_copied_into_a_sealed_range_is_detected() -> None:
    # A replay: the attacker cannot sign, so they copy a row (its MAC holds) into the past.
    events = three_events()
    seal_now()
    source = events[1]
    position = ", xid" if connection.vendor == "postgresql" else ""
    raw(
        "INSERT INTO charter_auditevent (at, actor_label, action, object_type, object_id, ip,"
        f" data, prev_hash, hash, key_id{position}) SELECT at, actor_label, action,"
        f" object_type, object_id, ip, data, prev_hash, hash, key_id{position}"
        " FROM charter_auditevent WHERE id = %s",
        [source.id],
    )
    if connection.vendor != "postgresql":  # on SQLite the position is the id: put it inside
        raw(
            "UPDATE charter_auditevent SET id = 0 WHERE id = (SELECT max(id) FROM charter_auditevent)"
        )
    assert "insérée" in verify_fails()


@committed
def test_sealed_rows_swapped_are_detected() -> None:
    events = three_events()
    seal_now()
    a, b = events[0].id, events[2].id
    raw("UPDATE charter_auditevent SET id = -1 WHERE id = %s", [a])
    raw("UPDATE charter_auditevent SET id = %s WHERE id = %s", [a, b])
    raw("UPDATE charter_auditevent SET id = %s WHERE id = -1", [b])
    assert "déplacées" in verify_fails(seal=newest_seal().id)


@committed
@requires_postgresql
def test_a_row_moved_to_another_seal_is_detected() -> None:
    first = three_events()
    seal_now()
    three_events()
    seal_now()
    # Its transaction id rewritten into the next seal's range.
    raw(
        "UPDATE charter_auditevent SET xid = (SELECT lo FROM audit_auditseal ORDER BY id DESC"
        " LIMIT 1) WHERE id = %s",
        [first[1].id],
    )
    assert "supprimées ou insérées" in verify_fails(seal=AuditSeal.objects.earliest("id").id)


def test_deleting_a_user_leaves_the_journal_intact() -> None:
    doctor = f.professional(enrol=False)
    journal.record("login.succeeded", actor=doctor, obj=doctor)
    doctor.delete()
    assert journal.verify_chain() is None
    assert AuditEvent.objects.get(action="login.succeeded").actor_id is not None


# --- The seals ------------------------------------------------------------------------------


@committed
def test_a_deleted_seal_is_detected() -> None:
    for _ in range(3):
        three_events()
        seal_now()
    middle = AuditSeal.objects.order_by("id")[1]
    raw("DELETE FROM audit_auditseal WHERE id = %s", [middle.id])
    assert "ne suit pas le précédent" in verify_fails(seal=middle.id + 1)


@committed
def test_the_first_seal_deleted_is_detected() -> None:
    three_events()
    seal_now()
    three_events()
    seal_now()
    first = AuditSeal.objects.earliest("id")
    raw("DELETE FROM audit_auditseal WHERE id = %s", [first.id])
    verify_fails(seal=first.id + 1)


@committed
@pytest.mark.parametrize(
    "change",
    ["count = count + 1, total = total + 1", "hi = hi + 1", "digest = md5(digest) || md5(digest)"],
)
def test_an_edited_seal_is_detected(change: str) -> None:
    three_events()
    seal_now()
    seal = newest_seal()
    if connection.vendor != "postgresql":
        # Another first character (a fixed '0' changed nothing once in 16 runs).
        change = change.replace(
            "md5(digest) || md5(digest)",
            "(CASE WHEN substr(digest, 1, 1) = '0' THEN '1' ELSE '0' END) || substr(digest, 2)",
        )
    raw(f"UPDATE audit_auditseal SET {change} WHERE id = %s", [seal.id])
    assert "signature invalide" in verify_fails(seal=seal.id)


@committed
def test_a_seal_forged_over_deleted_rows_is_detected() -> None:
    # The attacker deletes a row and recomputes the seal's digest and count, without the key.
    events = three_events()
    seal_now()
    seal = newest_seal()
    raw("DELETE FROM charter_auditevent WHERE id = %s", [events[1].id])
    digest = seals.Digest()
    for event in (events[0], events[2]):
        digest.add(event.id, event.hash, event.at)
    raw(
        "UPDATE audit_auditseal SET count = 2, total = 2, digest = %s WHERE id = %s",
        [digest.hexdigest(), seal.id],
    )
    assert "signature invalide" in verify_fails(seal=seal.id)


@committed
def test_the_sealer_seals_each_row_once_and_nothing_when_idle() -> None:
    three_events()
    assert seal_now() == 3
    assert seal_now() == 0
    journal.record("test.event")
    assert seal_now() == 1
    first, second = AuditSeal.objects.order_by("id")
    assert second.lo == first.hi and second.prev == first.mac and second.total == 4
    assert journal.verify_chain() is None


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


@committed
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
    assert [s.key_id for s in AuditSeal.objects.order_by("id")] == ["k1", "k2"]
    call_command("verify_audit")
    assert "intact" in capsys.readouterr().out


def test_a_key_removed_too_early_is_named(settings: Any) -> None:
    settings.AUDIT_KEYS = K1
    first = journal.record("test.event")
    settings.AUDIT_KEYS = K2
    journal.record("test.event")
    assert "clé inconnue « k1 »" in verify_fails(first.id)


@committed
def test_a_seal_whose_key_was_removed_is_named(settings: Any) -> None:
    settings.AUDIT_KEYS = K1
    journal.record("test.event")
    seal_now()
    settings.AUDIT_KEYS = K2
    assert "clé inconnue « k1 »" in verify_fails(seal=newest_seal().id)


# --- Anchors outside the database ---------------------------------------------------------


@committed
def test_the_newest_rows_deleted_after_an_anchor_are_detected(anchor_file: Path) -> None:
    events = [*three_events(), *three_events()]
    anchor_now()
    raw("DELETE FROM charter_auditevent WHERE id >= %s", [events[4].id])
    assert "supprimées" in verify_fails(seal=newest_seal().id)


@committed
def test_the_newest_rows_deleted_with_their_seal_after_an_anchor_are_detected(
    anchor_file: Path,
) -> None:
    # Made to look as if they had never been sealed: the anchor names the seal.
    three_events()
    seal_now()
    newest = three_events()
    anchored = anchor_now()
    raw("DELETE FROM charter_auditevent WHERE id >= %s", [newest[0].id])
    raw("DELETE FROM audit_auditseal WHERE id = %s", [anchored])
    message = verify_fails(seal=anchored)
    assert "ancrage externe" in message and "supprimées" in message


@committed
def test_an_emptied_journal_is_detected(anchor_file: Path) -> None:
    three_events()
    anchor_now()
    tables = "charter_auditevent, charter_auditcheckpoint, audit_auditseal"
    if connection.vendor == "postgresql":
        raw(f"TRUNCATE {tables}")
    else:
        for table in tables.split(", "):
            raw(f"DELETE FROM {table}")
    assert "table vidée" in verify_fails()
    # The application carries on with a fresh journal: still caught, and the next anchor
    # refuses to certify it.
    journal.record("login.succeeded")
    assert "table vidée" in verify_fails()
    with pytest.raises(journal.AuditIntegrityError):
        anchor_now()


@committed
def test_a_journal_restored_from_an_older_backup_is_detected(anchor_file: Path) -> None:
    events = three_events()
    anchor_now()
    journal.record("login.succeeded")
    anchored = anchor_now()
    raw("DELETE FROM charter_auditevent WHERE id > %s", [events[-1].id])
    raw("DELETE FROM audit_auditseal WHERE id >= %s", [anchored])
    verify_fails(seal=anchored)


@committed
def test_anchoring_restarts_after_a_restored_backup_with_the_reason_kept(
    anchor_file: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    three_events()
    anchor_now()
    newer = three_events()
    anchored = anchor_now()
    # Disaster recovery: the database comes back from a backup older than the last anchor.
    raw("DELETE FROM charter_auditevent WHERE id >= %s", [newer[0].id])
    raw("DELETE FROM audit_auditseal WHERE id >= %s", [anchored])
    verify_fails(seal=anchored)
    with pytest.raises(journal.AuditIntegrityError):
        anchor_now()
    call_command("anchor_audit", "--restart", "restauration de la sauvegarde du 3 mars")
    call_command("verify_audit")
    captured = capsys.readouterr()
    assert "intact" in captured.out
    assert "ancrage repris" in captured.err and "sauvegarde du 3 mars" in captured.err
    restarted = AuditEvent.objects.get(action="audit.anchor_restarted")
    assert AuditSeal.objects.filter(hi__gt=restarted.xid or restarted.id).exists()
    anchor_now()  # and anchoring goes on from there


@committed
def test_a_restart_never_covers_a_row_changed_in_the_middle(anchor_file: Path) -> None:
    events = three_events()
    anchor_now()
    raw("UPDATE charter_auditevent SET action = 'autre' WHERE id = %s", [events[1].id])
    with pytest.raises(CommandError, match="ancrage refusé"):
        call_command("anchor_audit", "--restart", "on efface tout")
    verify_fails(events[1].id)


@committed
def test_rows_added_after_the_last_anchor_still_verify(
    anchor_file: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    three_events()
    first = anchor_now()
    three_events()
    call_command("verify_audit")
    out = capsys.readouterr().out
    assert "intact" in out and f"(scellement n°{first}) concorde" in out


@committed
def test_an_anchor_line_is_appended_every_n_sealed_events(settings: Any, anchor_file: Path) -> None:
    settings.AUDIT_ANCHOR_EVERY = 3
    for n in range(7):
        journal.record("test.event", n=n)
        seal_now()
    lines = [json.loads(line) for line in anchor_file.read_text().splitlines()]
    # Each crossing of a multiple of 3 sealed events (3, 6).
    assert [line["n"] for line in lines] == [1, 2]
    assert [line["events"] for line in lines] == [3, 6]
    call_command("verify_audit")


def test_every_scheduled_journal_task_is_registered_and_the_anchor_routed(
    tmp_path: Path,
) -> None:
    # Beat and the routes name the tasks by string (the only names left): a name that
    # no longer matches a task (audit.tasks since issue 12) would silently never run.
    script = (
        "import django; django.setup(); from celery import current_app; "
        "from django.conf import settings; "
        "from audit.tasks import anchor_journal, seal_journal; "
        "current_app.loader.import_default_modules(); "
        "names = [e['task'] for e in settings.CELERY_BEAT_SCHEDULE.values()]; "
        "print([n for n in names if n not in current_app.tasks], "
        "anchor_journal.name in names, seal_journal.name in names, "
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
    assert done.stdout.strip() == "[] True True audit-anchor"


@committed
def test_the_anchor_file_is_private_and_holds_no_content(anchor_file: Path) -> None:
    journal.record("message.submitted", object_id=42, mailbox="dr.martin@exemple.mssante.fr")
    anchor_now()
    assert anchor_file.stat().st_mode & 0o777 == 0o600
    assert anchor_file.parent.stat().st_mode & 0o777 == 0o700
    assert "dr.martin" not in anchor_file.read_text()


@committed
def test_a_line_removed_from_the_anchor_file_is_detected(anchor_file: Path) -> None:
    for _ in range(3):
        journal.record("test.event")
        anchor_now()
    lines = anchor_file.read_text().splitlines()
    anchor_file.write_text("\n".join([lines[0], lines[2]]) + "\n")
    assert "ne suit pas la précédente" in verify_fails()


@committed
def test_a_forged_anchor_line_is_detected(anchor_file: Path) -> None:
    journal.record("test.event")
    anchor_now()
    *before, newest = anchor_file.read_text().splitlines()
    line = json.loads(newest)
    line["events"] = 99
    anchor_file.write_text("\n".join([*before, json.dumps(line)]) + "\n")
    assert "signature invalide" in verify_fails()


@committed
def test_a_torn_anchor_line_is_skipped_and_anchoring_goes_on(
    anchor_file: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    journal.record("test.event")
    anchor_now()
    with anchor_file.open("a") as handle:
        handle.write('{"v":2,"n":2,"at":"2026-')  # a crash in the middle of a write
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


@committed
def test_anchoring_refuses_to_certify_rows_deleted_from_a_seal_since_the_last_anchor(
    anchor_file: Path,
) -> None:
    three_events()
    anchor_now()
    more = three_events()
    seal_now()
    raw("DELETE FROM charter_auditevent WHERE id = %s", [more[1].id])
    with pytest.raises(journal.AuditIntegrityError, match="supprimées"):
        anchor_now()


@committed
def test_the_anchor_command_appends_a_line(
    anchor_file: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    journal.record("test.event")
    call_command("anchor_audit")
    seal = newest_seal()
    assert f"scellement n°{seal.id}" in capsys.readouterr().out
    line = json.loads(anchor_file.read_text().splitlines()[-1])
    assert line["head"] == seal.mac and line["seal"] == seal.id and line["v"] == 2


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


@committed
def test_each_anchor_line_also_goes_to_syslog(settings: Any, anchor_file: Path) -> None:
    receiver = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    receiver.bind(("127.0.0.1", 0))
    receiver.settimeout(5)
    settings.AUDIT_ANCHOR_SYSLOG = f"127.0.0.1:{receiver.getsockname()[1]}"
    try:
        journal.record("test.event")
        anchor_now()
        datagram = receiver.recv(4096).decode()
    finally:
        receiver.close()
    assert "mssante-audit-anchor" in datagram and newest_seal().mac in datagram


# --- Bounded verification -----------------------------------------------------------------


def _journal_of(n: int, settings: Any) -> None:
    """n rows written in batches and sealed (the journal of a busy operator, quickly)."""
    settings.AUDIT_KEYS = K1
    for start in range(0, n, 1000):
        journal.record_many(
            [("test.bulk", ("test", i), {"n": i}) for i in range(start, min(n, start + 1000))]
        )
    seal_now()


def _peak_verifying() -> int:
    tracemalloc.start()
    try:
        assert journal.verify_chain() is None
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


@committed
def test_verification_streams_the_journal_in_bounded_memory(
    settings: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(seals, "CHUNK", 200)
    _journal_of(1_000, settings)
    small = _peak_verifying()
    _journal_of(9_000, settings)
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
@pytest.mark.parametrize(
    "sql",
    [
        "UPDATE audit_auditseal SET count = 0",
        "DELETE FROM audit_auditseal",
        "TRUNCATE audit_auditseal",
    ],
)
def test_the_application_may_not_change_or_delete_a_seal(sql: str) -> None:
    assert connection.vendor == "postgresql"
    journal.record("test.event")
    seal_now()
    with pytest.raises(DatabaseError, match="permission denied"), transaction.atomic():
        connection.cursor().execute(sql)
    assert AuditSeal.objects.get().count == 1


@committed
@requires_postgresql
@pytest.mark.parametrize("table", ["charter_auditevent", "audit_auditseal"])
def test_the_trigger_still_refuses_an_update_by_a_role_with_the_privilege(table: str) -> None:
    # Someone granted UPDATE by mistake, or a single-role installation: the trigger.
    assert connection.vendor == "postgresql"
    journal.record("test.event")
    seal_now()
    url = os.environ.get("MSSANTE_TEST_PG_SUPERUSER_URL")
    if not url:
        pytest.skip("needs MSSANTE_TEST_PG_SUPERUSER_URL (scripts/services env)")
    target = psycopg.conninfo.make_conninfo(url, dbname=connection.settings_dict["NAME"])
    with (
        psycopg.connect(target, autocommit=True) as owner,
        owner.cursor() as cursor,
        pytest.raises(psycopg.errors.InsufficientPrivilege, match="ajout seul"),
    ):
        cursor.execute(f"UPDATE {table} SET key_id = 'x'")


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


@committed
def test_the_admin_shows_the_seals_read_only(staff_client: Any) -> None:
    journal.record("login.failed")
    seal_now()
    seal = newest_seal()
    base = "/admin/audit/auditseal/"
    page = staff_client.get(base)
    assert page.status_code == 200 and list(page.context["cl"].result_list) == [seal]
    assert staff_client.get(f"{base}{seal.id}/change/").status_code == 200
    assert staff_client.get(f"{base}{seal.id}/delete/").status_code == 403
