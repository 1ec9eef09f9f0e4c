"""Shared fixtures for the charter's tests."""

from __future__ import annotations

import os

import pytest
from django.db import connection
from django.test import Client

from tests import factories as f

# Tests of PostgreSQL-only behaviour (the append-only trigger) are skipped on the
# SQLite quick run, but `make test` sets MSSANTE_TEST_SERVICES=1: there they run,
# and fail if the database is not PostgreSQL rather than silently skip.
requires_postgresql = pytest.mark.skipif(
    connection.vendor != "postgresql" and not os.environ.get("MSSANTE_TEST_SERVICES"),
    reason="needs PostgreSQL (runs in `make test`, or with DATABASE_URL=postgres://…)",
)


@pytest.fixture
def staff_client(db: None) -> Client:
    """A superuser past both login steps, so the admin opens."""
    boss = f.staff()
    client = Client()
    client.post("/connexion/", {"identifier": boss.username, "password": f.PASSWORD})
    client.post("/connexion/code/", {"code": f.code_for(boss)})
    return client
