"""An existing database keeps its journal when the journal becomes the app ``audit`` (issue 12)
and when the seals replace the chain (issue 13).

A scratch database is migrated as it stood before the move (charter's 0008: the journal
is charter's), used by the application's role (old rows purged under a signed
checkpoint, anchors, newer rows), then migrated forward by the schema owner as a
deployment does. The rows, the append-only trigger, the purge function, the role's
grants and the content types (so the permissions) must come through untouched, and
the journal must still verify and purge under the new code.
"""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest
from django.conf import settings

pytestmark = [
    pytest.mark.services,
    pytest.mark.skipif(
        not os.environ.get("MSSANTE_TEST_SERVICES"),
        reason="needs scripts/services (MSSANTE_TEST_SERVICES=1)",
    ),
]

BEFORE_THE_MOVE = ("charter", "0008_audit_keys_seal_and_restricted_role")

# The journal as the code of issues 11-12 wrote it (audit.tests.legacy): one chain, a purge
# behind a signed checkpoint, anchor lines naming rows.
WRITE_AS_BEFORE = """
from datetime import timedelta
import time_machine
from django.conf import settings
from django.utils import timezone
from audit.tests import legacy
now = timezone.now()
with time_machine.travel(now - timedelta(days=800)):
    for i in range(4): legacy.record("test.old", object_id=i)
with time_machine.travel(now - timedelta(days=500)):
    for i in range(3): legacy.record("test.old_kept", object_id=i)
with time_machine.travel(now - timedelta(days=300)):
    legacy.purge(timezone.now() - timedelta(days=365), anchor_to=settings.AUDIT_ANCHOR_FILE)
for i in range(5): legacy.record("test.recent", object_id=i, n=i)
legacy.anchor(settings.AUDIT_ANCHOR_FILE)
legacy.record("test.after_anchor")
"""

GRANT_TO_A_GROUP = """
from django.contrib.auth.models import Group, Permission
group = Group.objects.create(name="lecteurs du journal")
group.permissions.add(
    Permission.objects.get(codename="view_auditevent", content_type__app_label="charter")
)
"""

PURGE_AND_ANCHOR = """
from audit import tasks
print("purged", tasks.purge_journal.apply().get())
print("anchored", tasks.anchor_journal.apply().get())
"""

RECORD_AND_SEAL = """
from audit import journal, tasks
for i in range(3): journal.record("test.new", object_id=i)
print("sealed", tasks.seal_journal.apply().get())
"""


def _url(url: str, dbname: str) -> str:
    return psycopg.conninfo.make_conninfo(
        url.replace("postgres://", "postgresql://", 1), dbname=dbname
    )


def _user(url: str) -> str:
    params = psycopg.conninfo.conninfo_to_dict(url.replace("postgres://", "postgresql://", 1))
    return str(params["user"])


class Scratch:
    """A database of its own, and manage.py run against it as the owner or the application."""

    def __init__(self, name: str, var: Path) -> None:
        self.name = name
        self.owner = _url(os.environ["DATABASE_OWNER_URL"], name)
        self.app = _url(os.environ["DATABASE_URL"], name)
        self.env = {
            **os.environ,
            "MSSANTE_IGNORE_DOTENV": "true",
            "MSSANTE_VAR_DIR": str(var),  # the same AUDIT_KEYS for every run
            "AUDIT_ANCHOR_FILE": str(var / "anchors.jsonl"),
            "AUDIT_RETENTION_DAYS": "365",
            "DATABASE_APP_ROLE": _user(os.environ["DATABASE_URL"]),
        }
        self.env.pop("CELERY_BROKER_URL", None)  # tasks in-process

    def manage(self, *args: str, as_owner: bool = False) -> str:
        url = self.owner if as_owner else self.app
        # manage.py reads DATABASE_URL as a URL: rebuild one from the conninfo.
        params = psycopg.conninfo.conninfo_to_dict(url)
        database_url = (
            f"postgres://{params['user']}:{params.get('password', '')}@{params['host']}:"
            f"{params['port']}/{params['dbname']}"
        )
        done = subprocess.run(
            [sys.executable, "manage.py", *args],
            cwd=settings.BASE_DIR,
            env={**self.env, "DATABASE_URL": database_url},
            capture_output=True,
            text=True,
            timeout=600,
        )
        assert done.returncode == 0, done.stdout + done.stderr
        return done.stdout

    def rows(self, sql: str, params: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
        with psycopg.connect(self.owner) as connection, connection.cursor() as cursor:
            cursor.execute(sql, params)
            return cursor.fetchall()


@pytest.fixture
def scratch(tmp_path: Path) -> Iterator[Scratch]:
    name = f"journal_move_{uuid.uuid4().hex[:8]}"
    superuser = _url(os.environ["MSSANTE_TEST_PG_SUPERUSER_URL"], "postgres")
    owner = _user(os.environ["DATABASE_OWNER_URL"])
    with psycopg.connect(superuser, autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{name}" OWNER "{owner}"')
    try:
        yield Scratch(name, tmp_path)
    finally:
        with psycopg.connect(superuser, autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


EVENTS = "SELECT id, at, actor_id, action, object_type, object_id, data::text, prev_hash, hash, key_id FROM charter_auditevent ORDER BY id"
CHECKPOINTS = "SELECT * FROM charter_auditcheckpoint ORDER BY id"
CONTENT_TYPES = (
    "SELECT id, app_label, model FROM django_content_type "
    "WHERE model IN ('auditevent', 'auditcheckpoint') ORDER BY id"
)


def test_a_journal_written_before_the_move_comes_through_whole(scratch: Scratch) -> None:
    app_role = _user(os.environ["DATABASE_URL"])
    scratch.manage("migrate", *BEFORE_THE_MOVE, "-v0", as_owner=True)
    scratch.manage("shell", "-v0", "-c", WRITE_AS_BEFORE)
    scratch.manage("shell", "-v0", "-c", GRANT_TO_A_GROUP, as_owner=True)
    events, checkpoints = scratch.rows(EVENTS), scratch.rows(CHECKPOINTS)
    types = scratch.rows(CONTENT_TYPES)
    assert len(events) == 10 and len(checkpoints) == 1
    assert {label for _, label, _ in types} == {"charter"}

    migrated = scratch.manage("migrate", as_owner=True)

    assert "Applying audit.0001_journal_from_charter... OK" in migrated
    assert "Applying audit.0002_journal_sealed_without_a_global_lock... OK" in migrated
    assert scratch.rows(EVENTS) == events
    # The old chain's end is signed: the checkpoints before, then one naming the newest row.
    *before, end = scratch.rows(CHECKPOINTS)
    assert before == checkpoints
    assert scratch.rows(
        "SELECT kind, last_event_id, last_hash FROM charter_auditcheckpoint WHERE id = %s",
        (end[0],),
    ) == [("end", events[-1][0], events[-1][8])]
    assert scratch.rows("SELECT count(*) FROM charter_auditevent WHERE xid IS NOT NULL") == [(0,)]
    # Renamed, not recreated: what pointed at the journal's types still does.
    assert scratch.rows(CONTENT_TYPES) == [(pk, "audit", model) for pk, _, model in types]
    assert scratch.rows(
        "SELECT ct.app_label, p.codename FROM auth_group_permissions gp "
        "JOIN auth_permission p ON p.id = gp.permission_id "
        "JOIN django_content_type ct ON ct.id = p.content_type_id"
    ) == [("audit", "view_auditevent")]
    assert scratch.rows(
        "SELECT tgname, tgenabled FROM pg_trigger WHERE NOT tgisinternal AND tgrelid IN "
        "('charter_auditevent'::regclass, 'charter_auditcheckpoint'::regclass) ORDER BY tgname"
    ) == [("charter_auditcheckpoint_append_only", "O"), ("charter_auditevent_append_only", "O")]
    assert scratch.rows(
        "SELECT tgname, tgenabled FROM pg_trigger WHERE tgrelid = 'audit_auditseal'::regclass "
        "AND NOT tgisinternal"
    ) == [("audit_auditseal_append_only", "O")]
    privileges = (
        "SELECT has_table_privilege(%s, 'charter_auditevent', 'INSERT, SELECT'), "
        "has_table_privilege(%s, 'charter_auditevent', 'UPDATE, DELETE, TRUNCATE'), "
        "has_table_privilege(%s, 'charter_auditcheckpoint', 'UPDATE, DELETE, TRUNCATE'), "
        "has_function_privilege(%s, 'charter_audit_purge(bigint)', 'EXECUTE'), "
        "has_table_privilege(%s, 'audit_auditseal', 'INSERT, SELECT'), "
        "has_table_privilege(%s, 'audit_auditseal', 'UPDATE, DELETE, TRUNCATE'), "
        "has_function_privilege(%s, 'audit_purge_seals(bigint)', 'EXECUTE')"
    )
    assert scratch.rows(privileges, (app_role,) * 7) == [
        (True, False, False, True, True, False, True)
    ]

    # The new code, as the application's role: the old chain verifies against the
    # anchors written before, and the purge still goes through the owner's function.
    assert "concorde" in scratch.manage("verify_audit")
    assert "purged 3" in scratch.manage("shell", "-v0", "-c", PURGE_AND_ANCHOR)
    assert "intact" in scratch.manage("verify_audit")
    # New rows are sealed after the old chain, and the whole still verifies.
    scratch.manage("shell", "-v0", "-c", RECORD_AND_SEAL)
    verified = scratch.manage("verify_audit")
    assert "intact" in verified and "de l'ancienne chaîne" in verified
    assert "pas encore scellé" not in verified
    assert scratch.rows(
        "SELECT count(*) FROM charter_auditevent e WHERE e.action = 'test.new' AND "
        "e.xid < (SELECT max(hi) FROM audit_auditseal)"
    ) == [(3,)]
    with (
        psycopg.connect(scratch.app, autocommit=True) as app,
        pytest.raises(psycopg.errors.InsufficientPrivilege),
    ):
        app.execute("UPDATE charter_auditevent SET action = 'autre'")
