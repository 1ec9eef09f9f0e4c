"""The audit journal on PostgreSQL as deployed: two roles, and whoever holds the database.

The application logs in as its own role (DATABASE_URL), which may only add to the
journal; the schema owner ran the migrations. The attacks below are played with the
application's own login, and with the cluster's superuser (someone who holds the
database but not AUDIT_KEYS nor the anchor file): the first are refused by
PostgreSQL, the second caught by ``manage.py verify_audit``.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import connection

from audit import journal, tasks
from audit.models import AuditEvent, AuditSeal
from audit.tests.conftest import database_superuser
from audit.tests.test_audit import rewrite_from

pytestmark = [
    pytest.mark.services,
    pytest.mark.django_db(transaction=True),
    pytest.mark.skipif(
        not os.environ.get("MSSANTE_TEST_SERVICES"),
        reason="needs scripts/services (MSSANTE_TEST_SERVICES=1)",
    ),
]


@pytest.fixture
def app_login() -> Iterator[psycopg.Cursor[Any]]:
    """A session opened with the application's own credentials (DATABASE_URL)."""
    target = psycopg.conninfo.make_conninfo(
        os.environ["DATABASE_URL"].replace("postgres://", "postgresql://", 1),
        dbname=connection.settings_dict["NAME"],
    )
    with psycopg.connect(target, autocommit=True) as session, session.cursor() as cursor:
        yield cursor


def events(n: int = 5) -> list[AuditEvent]:
    return [journal.record("test.event", object_id=i, n=i) for i in range(n)]


def anchor_now() -> None:
    tasks.anchor_journal.apply().get()


def verify_fails() -> str:
    with pytest.raises(CommandError) as caught:
        call_command("verify_audit")
    return str(caught.value)


# --- The application's role -------------------------------------------------------------


def test_the_application_runs_under_a_role_that_does_not_own_the_journal(
    capsys: pytest.CaptureFixture[str],
) -> None:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT current_user, rolsuper, rolcreatedb, "
            "(SELECT tableowner FROM pg_tables WHERE tablename = 'charter_auditevent') "
            "FROM pg_roles WHERE rolname = current_user"
        )
        user, superuser, createdb, owner = cursor.fetchone()
    assert (
        user
        == psycopg.conninfo.conninfo_to_dict(
            os.environ["DATABASE_URL"].replace("postgres://", "postgresql://", 1)
        )["user"]
    )
    assert not superuser and not createdb and owner != user
    events(1)
    call_command("verify_audit")
    assert "Attention : le rôle" not in capsys.readouterr().err


@pytest.mark.parametrize(
    "sql",
    [
        "ALTER TABLE charter_auditevent DISABLE TRIGGER USER",
        "ALTER TABLE charter_auditevent DISABLE TRIGGER charter_auditevent_append_only",
        "ALTER TABLE charter_auditcheckpoint DISABLE TRIGGER USER",
        "ALTER TABLE audit_auditseal DISABLE TRIGGER USER",
        "CREATE OR REPLACE FUNCTION audit_xid() RETURNS bigint AS $$ SELECT 0::bigint $$ LANGUAGE sql",
        "DROP TRIGGER charter_auditevent_append_only ON charter_auditevent",
        "ALTER TABLE charter_auditevent OWNER TO CURRENT_USER",
        "SET session_replication_role = replica",
        "CREATE OR REPLACE FUNCTION charter_append_only() RETURNS trigger"
        " AS $$ BEGIN RETURN OLD; END $$ LANGUAGE plpgsql",
        "DROP FUNCTION charter_append_only() CASCADE",
    ],
)
def test_the_application_role_cannot_switch_the_append_only_trigger_off(
    app_login: psycopg.Cursor[Any], sql: str
) -> None:
    with pytest.raises(psycopg.errors.InsufficientPrivilege):
        app_login.execute(sql)
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT tgenabled FROM pg_trigger WHERE tgname = 'charter_auditevent_append_only'"
        )
        assert cursor.fetchone() == ("O",)


@pytest.mark.parametrize(
    "sql",
    [
        "UPDATE charter_auditevent SET action = 'autre'",
        "DELETE FROM charter_auditevent",
        "TRUNCATE charter_auditevent",
        "TRUNCATE charter_auditevent, charter_auditcheckpoint CASCADE",
        "UPDATE charter_auditcheckpoint SET purged_count = 0",
        "DELETE FROM charter_auditcheckpoint",
        "UPDATE audit_auditseal SET count = 0",
        "DELETE FROM audit_auditseal",
        "TRUNCATE audit_auditseal",
    ],
)
def test_the_application_role_cannot_rewrite_or_empty_the_journal(
    app_login: psycopg.Cursor[Any], sql: str
) -> None:
    written = events(3)
    tasks.seal_journal.apply()
    with pytest.raises(psycopg.errors.InsufficientPrivilege):
        app_login.execute(sql)
    assert list(AuditEvent.objects.order_by("id").values_list("action", flat=True)) == [
        "test.event"
    ] * len(written)
    assert AuditSeal.objects.get().count == len(written)


def test_the_purge_flag_does_not_open_the_journal_to_the_application(
    app_login: psycopg.Cursor[Any],
) -> None:
    written = events(2)
    app_login.execute("SET mssante.audit_purge = 'on'")
    with pytest.raises(psycopg.errors.InsufficientPrivilege):
        app_login.execute("DELETE FROM charter_auditevent")
    assert AuditEvent.objects.count() == len(written)


def test_the_application_role_cannot_purge_without_a_matching_checkpoint(
    app_login: psycopg.Cursor[Any],
) -> None:
    written = events(3)
    with pytest.raises(psycopg.errors.InsufficientPrivilege, match="point de contrôle"):
        app_login.execute("SELECT charter_audit_purge(%s)", [written[1].id])
    # A checkpoint that does not describe the rows (wrong count): still refused.
    app_login.execute(
        "INSERT INTO charter_auditcheckpoint (kind, created_at, last_event_id, last_hash,"
        " purged_count, cutoff, key_id, signature) VALUES ('purge', now(), %s, %s, 1,"
        " now() + interval '1 day', '', '')",
        [written[1].id, written[1].hash],
    )
    with pytest.raises(psycopg.errors.InsufficientPrivilege):
        app_login.execute("SELECT charter_audit_purge(%s)", [written[1].id])
    assert AuditEvent.objects.count() == len(written)


def test_a_purge_forged_by_the_application_role_is_detected(
    app_login: psycopg.Cursor[Any],
) -> None:
    # With a checkpoint that describes the rows, the function lets the prefix go: the
    # signature it cannot compute without AUDIT_KEYS gives it away.
    written = events(3)
    app_login.execute("BEGIN")
    app_login.execute(
        "INSERT INTO charter_auditcheckpoint (kind, created_at, last_event_id, last_hash,"
        " purged_count, cutoff, key_id, signature) VALUES ('purge', now(), %s, %s, 2,"
        " now() + interval '1 day', %s, %s)",
        [written[1].id, written[1].hash, written[1].key_id, "0" * 64],
    )
    app_login.execute("SELECT charter_audit_purge(%s)", [written[1].id])
    app_login.execute("COMMIT")
    assert AuditEvent.objects.count() == 1
    assert "signature invalide" in verify_fails()


# --- Whoever holds the database (superuser, no key, no anchor file) -------------------------


def test_a_superuser_who_edits_a_row_and_rehashes_the_chain_is_caught() -> None:
    written = events()
    rewrite_from(written, 2, action="login.succeeded")
    assert AuditEvent.objects.get(id=written[2].id).action == "login.succeeded"
    message = verify_fails()
    assert f"ligne {written[2].id} " in message and "sans clé" in message


def test_a_superuser_who_deletes_the_newest_rows_is_caught(anchor_file: Path) -> None:
    events()
    anchor_now()
    seal = AuditSeal.objects.get()
    newest = list(AuditEvent.objects.order_by("-id").values_list("id", flat=True)[:2])
    with database_superuser() as cursor:
        cursor.execute("DELETE FROM charter_auditevent WHERE id = ANY(%s)", [newest])
    message = verify_fails()
    assert f"scellement n°{seal.id} " in message and "supprimées" in message


def test_a_superuser_who_deletes_the_newest_rows_and_their_seal_is_caught(
    anchor_file: Path,
) -> None:
    events()
    anchor_now()
    newest = events(3)
    anchored = tasks.anchor_journal.apply().get()
    with database_superuser() as cursor:
        cursor.execute("DELETE FROM charter_auditevent WHERE id >= %s", [newest[0].id])
        cursor.execute("DELETE FROM audit_auditseal WHERE id = %s", [anchored])
    message = verify_fails()
    assert f"scellement n°{anchored} " in message and "ancrage externe" in message


def test_a_superuser_who_truncates_the_journal_is_caught(anchor_file: Path) -> None:
    events()
    anchor_now()
    with database_superuser() as cursor:
        cursor.execute("TRUNCATE charter_auditevent, charter_auditcheckpoint, audit_auditseal")
    assert AuditEvent.objects.count() == 0
    assert "table vidée" in verify_fails()


def test_a_superuser_who_edits_a_seal_is_caught() -> None:
    events()
    tasks.seal_journal.apply()
    seal = AuditSeal.objects.get()
    with database_superuser() as cursor:
        cursor.execute("UPDATE audit_auditseal SET count = 4, total = 4 WHERE id = %s", [seal.id])
    assert "signature invalide" in verify_fails()


def test_an_untouched_journal_passes_under_the_application_role(
    anchor_file: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    events()
    anchor_now()
    events(2)
    call_command("verify_audit")
    assert "intact" in capsys.readouterr().out


def test_verify_audit_under_a_read_only_role_verifies_what_is_there(
    capsys: pytest.CaptureFixture[str],
) -> None:
    # An auditor's role may read the journal but not seal it: the check still runs.
    events(2)
    app_role = connection.settings_dict["USER"]
    with database_superuser() as cursor:
        cursor.execute("CREATE ROLE audit_reader")
        cursor.execute("GRANT SELECT ON ALL TABLES IN SCHEMA public TO audit_reader")
        cursor.execute(f'GRANT audit_reader TO "{app_role}"')
    try:
        with connection.cursor() as cursor:
            cursor.execute("SET ROLE audit_reader")
        call_command("verify_audit")
    finally:
        with connection.cursor() as cursor:
            cursor.execute("RESET ROLE")
        with database_superuser() as cursor:
            cursor.execute("REVOKE ALL ON ALL TABLES IN SCHEMA public FROM audit_reader")
            cursor.execute("DROP ROLE audit_reader")
    captured = capsys.readouterr()
    assert "intact : 2 événement(s) (2 pas encore scellé(s)" in captured.out
    assert "scellement impossible" in captured.err
