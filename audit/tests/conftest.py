"""Shared fixtures for the audit journal's tests."""

from __future__ import annotations

import os
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from django.db import connection
from django.test import Client

from audit import journal
from tests import factories as f

# Tests of PostgreSQL-only behaviour (the append-only trigger) are skipped on the
# SQLite quick run, but `make test` sets MSSANTE_TEST_SERVICES=1: there they run,
# and fail if the database is not PostgreSQL rather than silently skip.
requires_postgresql = pytest.mark.skipif(
    connection.vendor != "postgresql" and not os.environ.get("MSSANTE_TEST_SERVICES"),
    reason="needs PostgreSQL (runs in `make test`, or with DATABASE_URL=postgres://…)",
)


@pytest.fixture(autouse=True)
def _seal_only_when_asked(monkeypatch: pytest.MonkeyPatch) -> None:
    """No seal after a commit unless the test asks (journal._next_seal = 0): here the
    scheduled task seals, at the moment the test says, so that what is sealed is known."""
    monkeypatch.setattr(journal, "_next_seal", float("inf"))


@pytest.fixture
def staff_client(db: None) -> Client:
    """A superuser past both login steps, so the admin opens."""
    boss = f.staff()
    client = Client()
    client.post("/connexion/", {"identifier": boss.username, "password": f.PASSWORD})
    client.post("/connexion/code/", {"code": f.code_for(boss)})
    return client


@pytest.fixture
def anchor_file(settings: Any, tmp_path: Path) -> Path:
    """Anchoring on, into a file of this test's own."""
    path = tmp_path / "ancrage" / "anchors.jsonl"
    settings.AUDIT_ANCHOR_FILE = str(path)
    return path


@contextmanager
def database_superuser() -> Iterator[Any]:
    """A cursor of whoever holds the database, with the append-only trigger switched off.

    On PostgreSQL: the cluster's superuser (MSSANTE_TEST_PG_SUPERUSER_URL, from
    scripts/services) on the test database, in its own connection: it sees only
    committed rows, so the tests that use it run with ``transaction=True``. On
    SQLite: the test's own connection (SQLite has no roles and no trigger).
    """
    if connection.vendor != "postgresql":
        with connection.cursor() as cursor:
            yield cursor
        return
    import psycopg

    url = os.environ.get("MSSANTE_TEST_PG_SUPERUSER_URL")
    if url:
        target = psycopg.conninfo.make_conninfo(url, dbname=connection.settings_dict["NAME"])
    else:  # a single-role setup run by hand: the test's own credentials
        params = connection.settings_dict
        target = psycopg.conninfo.make_conninfo(
            host=params["HOST"],
            port=params["PORT"] or 5432,
            dbname=params["NAME"],
            user=params["USER"],
            password=params["PASSWORD"],
        )
    tables = ("charter_auditevent", "charter_auditcheckpoint", "audit_auditseal")
    with psycopg.connect(target, autocommit=True) as attacker, attacker.cursor() as cursor:
        for table in tables:
            cursor.execute(f"ALTER TABLE {table} DISABLE TRIGGER USER")
        try:
            yield cursor
        finally:
            for table in tables:
                cursor.execute(f"ALTER TABLE {table} ENABLE TRIGGER USER")


def raw(sql: str, params: Sequence[Any] = ()) -> None:
    """Run SQL as whoever holds the database (see database_superuser)."""
    with database_superuser() as cursor:
        cursor.execute(sql, list(params))
