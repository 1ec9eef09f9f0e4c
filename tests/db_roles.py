"""The PostgreSQL test run uses two roles, as production does (docs/deployment.md).

``scripts/services`` creates the schema owner (CREATEDB) and the application's role
(no superuser, no CREATEDB); ``scripts/test`` exports DATABASE_URL (the application)
and DATABASE_OWNER_URL (the owner). pytest-django creates, migrates and finally drops
the test database as the owner, whose ``migrate`` grants the application's role
what it needs (audit.dbroles); every test then connects as the application's role,
so a write the application may not do fails here as it would in production.

TransactionTestCase empties the tables with TRUNCATE between tests, which the
application's role may not do on the audit journal: that one statement goes
through a short-lived owner connection.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import environ
from django.conf import settings
from django.db import connections


def _owner() -> dict[str, Any] | None:
    url = os.environ.get("DATABASE_OWNER_URL")
    if not url or connections["default"].vendor != "postgresql":
        return None
    config = environ.Env.db_url_config(url)
    return {"USER": config["USER"], "PASSWORD": config["PASSWORD"]}


def _use(credentials: dict[str, Any]) -> None:
    connection = connections["default"]
    connection.close()
    # The same dict as settings.DATABASES["default"]: processes the tests start
    # (a Celery worker) read their credentials from it too.
    connection.settings_dict.update(credentials)


def login_as_owner() -> None:
    """Before the test database is created: connect as its future owner."""
    owner = _owner()
    if owner is None:
        return
    app = connections["default"].settings_dict
    if not settings.DATABASE_APP_ROLE:
        settings.DATABASE_APP_ROLE = app["USER"]
    _app_credentials.update(USER=app["USER"], PASSWORD=app["PASSWORD"])
    _use(owner)


_app_credentials: dict[str, Any] = {}


@contextmanager
def as_app_role() -> Iterator[None]:
    """After the test database is migrated: every test connects as the application."""
    owner = _owner()
    if owner is None or not _app_credentials:
        yield
        return
    from django.db.backends.postgresql.operations import DatabaseOperations

    original = DatabaseOperations.execute_sql_flush

    def execute_sql_flush(self: Any, sql_list: Any) -> None:
        import psycopg

        params = self.connection.settings_dict
        # A process the test started (the live server's thread, a Celery worker
        # finishing a task) may still hold a lock on one table while waiting for
        # another the TRUNCATE already holds: PostgreSQL breaks that deadlock by
        # failing one side. The other side then finishes, and the TRUNCATE is tried
        # again rather than failing the test's teardown.
        for attempt in range(5):
            try:
                with (
                    psycopg.connect(
                        host=params["HOST"],
                        port=params["PORT"] or 5432,
                        dbname=params["NAME"],
                        user=owner["USER"],
                        password=owner["PASSWORD"],
                    ) as owner_connection,
                    owner_connection.cursor() as cursor,
                ):
                    cursor.execute("SET lock_timeout = '60s'")
                    for sql in sql_list:
                        cursor.execute(sql)
                return
            except psycopg.errors.DeadlockDetected:
                if attempt == 4:
                    raise
                time.sleep(0.5 * (attempt + 1))

    DatabaseOperations.execute_sql_flush = execute_sql_flush  # type: ignore[method-assign]
    _use(_app_credentials)
    try:
        yield
    finally:
        DatabaseOperations.execute_sql_flush = original  # type: ignore[method-assign]
        # The owner drops the test database.
        _use(owner)


@contextmanager
def as_owner() -> Iterator[None]:
    """Within a test that migrates: connect as the schema owner, then as the application again."""
    owner = _owner()
    if owner is None or not _app_credentials:
        yield
        return
    _use(owner)
    try:
        yield
    finally:
        _use(_app_credentials)
