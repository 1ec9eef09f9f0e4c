"""Tests of a migration on a deployment's data: the schema as it was, then today's.

``schema_at(targets)`` migrates back to ``targets`` as the schema owner (who alone may
change it, tests/db_roles.py), yields the models as they were there, and always ends
with a full ``migrate``: its post_migrate grants the application's role the tables the
later migrations create again. ``migrate(targets)`` moves the schema within a test.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from django.core.management import call_command
from django.db import connection
from django.db.migrations.executor import MigrationExecutor

from tests import db_roles, flush


def migrate(targets: list[tuple[str, str]]) -> Any:
    """Migrate to ``targets``; the models as they were at that point."""
    flush.full_next()
    executor = MigrationExecutor(connection)
    executor.loader.build_graph()
    executor.migrate(targets)
    executor.loader.build_graph()
    return executor.loader.project_state(targets).apps


@contextmanager
def schema_at(targets: list[tuple[str, str]]) -> Iterator[Any]:
    """The schema at ``targets`` for the block (as its owner), then today's."""
    flush.full_next()
    with db_roles.as_owner():
        try:
            yield migrate(targets)
        finally:
            call_command("migrate", verbosity=0)
