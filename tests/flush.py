"""Emptying the database between transactional tests, without rebuilding what never changes.

Django's ``TransactionTestCase`` ends each test with ``flush``: every table is emptied, then
the ``post_migrate`` signal creates the content types and permissions again. With about a
hundred and fifty models, that second part is most of a test's teardown (≈0.2 s of the
≈0.25 s, measured with py-spy) and, over the suite's transactional tests, minutes.

Here the content types and the permissions are left in place and the signal is not sent:
no test changes them (a test that migrates runs ``migrate``, which sends the signal
itself), and the other receivers have nothing to do after a flush (the audit journal's
grants and realignment are the schema owner's, on a schema that does not change;
mailboxes' triggers are SQLite's, which ``flush`` does not drop). A test that moved the
schema (tests/migrations.py) calls ``full_next()``: a migration may have renamed or added
content types, so its teardown is Django's whole flush.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from django.core.management import call_command
from django.core.management.commands import flush
from django.test import testcases

KEPT = frozenset({"django_content_type", "auth_permission"})
_full = False


def full_next() -> None:
    """The current test changed the schema: end it with Django's whole flush."""
    global _full
    _full = True


def _sql_flush(
    style: Any, connection: Any, reset_sequences: bool = True, allow_cascade: bool = False
) -> list[str]:
    tables = [
        table
        for table in connection.introspection.django_table_names(
            only_existing=True, include_views=False
        )
        if _full or table not in KEPT
    ]
    return list(
        connection.ops.sql_flush(
            style, tables, reset_sequences=reset_sequences, allow_cascade=allow_cascade
        )
    )


def _fixture_teardown(self: testcases.TransactionTestCase) -> None:
    global _full
    for db_name in self._databases_names(include_mirrors=False):
        call_command(
            "flush",
            verbosity=0,
            interactive=False,
            database=db_name,
            reset_sequences=False,
            allow_cascade=self.available_apps is not None,
            inhibit_post_migrate=not _full,
        )
    _full = False


@contextmanager
def keeping_content_types() -> Iterator[None]:
    """For the test session: flush every table but the content types and permissions."""
    original_sql, original_teardown = (
        flush.sql_flush,
        testcases.TransactionTestCase._fixture_teardown,
    )
    flush.sql_flush = _sql_flush
    testcases.TransactionTestCase._fixture_teardown = _fixture_teardown
    try:
        yield
    finally:
        flush.sql_flush = original_sql
        testcases.TransactionTestCase._fixture_teardown = original_teardown
