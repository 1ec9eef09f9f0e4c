"""The PostgreSQL fast path: COPY into a staging table, then set-based SQL.

At national scale (535,000 lines, refreshed daily) building Django model
instances and binding parameters costs more than the database work itself.
Here parsed rows are streamed with COPY into a temporary table, and a handful
of statements do the rest: drop repeated keys, count, upsert only rows whose
digest changed (``ON CONFLICT … DO UPDATE … WHERE``), and find absent rows by
an anti-join with the staging table. Unchanged rows are never rewritten, so a
re-import of the same file writes nothing to the directory tables.
"""

# Every statement here is built from model metadata (table and column names) and
# constant SQL, never from file or user input; values travel through COPY.
# ruff: noqa: S608

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from django.db import connection

STAGE = "directory_import_stage"
# A run writing more rows than this (and than the table holds) rebuilds the bulk indexes.
BULK_REBUILD_ROWS = 50_000


class PgStage:
    """Rows of one import run, staged in a temporary table dropped at commit."""

    def __init__(
        self,
        table: str,
        key: str,
        columns: Sequence[str],
        owned: str,
        bulk_indexes: Sequence[tuple[str, str]] = (),
    ) -> None:
        self.table = table
        # (name, CREATE INDEX statement) of indexes cheaper to rebuild than to
        # maintain row by row when a run writes most of the table (first import).
        self.bulk_indexes = list(bulk_indexes)
        self.key = key
        self.columns = list(columns)
        # SQL condition on the target row (alias t) saying the import may
        # overwrite or deactivate it (e.g. not one of our own mailboxes).
        self.owned = owned
        cols = ", ".join(self.columns)
        with connection.cursor() as cursor:
            cursor.execute(f"DROP TABLE IF EXISTS {STAGE}")
            cursor.execute(
                f"CREATE TEMP TABLE {STAGE} ON COMMIT DROP AS "
                f"SELECT {cols} FROM {table} WITH NO DATA"
            )
            cursor.execute(f"ALTER TABLE {STAGE} ADD COLUMN line integer")

    def add(self, rows: Sequence[Sequence[Any]]) -> None:
        cols = ", ".join([*self.columns, "line"])
        with connection.cursor() as cursor:
            raw = cursor.cursor  # the psycopg cursor: COPY is not in the DB-API
            with raw.copy(f"COPY {STAGE} ({cols}) FROM STDIN") as copy:
                for row in rows:
                    copy.write_row(row)

    def drop_repeated_keys(self) -> list[int]:
        """Remove later lines repeating a key already staged; return their line numbers."""
        with connection.cursor() as cursor:
            cursor.execute(f"CREATE INDEX ON {STAGE} ({self.key}, line)")
            cursor.execute(f"ANALYZE {STAGE}")
            cursor.execute(
                f"DELETE FROM {STAGE} s USING {STAGE} f "
                f"WHERE s.{self.key} = f.{self.key} AND s.line > f.line RETURNING s.line"
            )
            lines = sorted({row[0] for row in cursor.fetchall()})
        return lines

    def drop_keys_in(self, subquery: str) -> list[int]:
        """Remove staged rows whose key the subquery returns; return their line numbers."""
        if not subquery:
            return []
        with connection.cursor() as cursor:
            cursor.execute(f"DELETE FROM {STAGE} WHERE {self.key} IN ({subquery}) RETURNING line")
            return sorted(row[0] for row in cursor.fetchall())

    def counts(self) -> tuple[int, int, int]:
        """(added, updated, unchanged) the upsert is about to produce."""
        with connection.cursor() as cursor:
            cursor.execute(
                f"SELECT count(*) FILTER (WHERE t.{self.key} IS NULL), "
                f"count(*) FILTER (WHERE t.{self.key} IS NOT NULL AND {self.owned} "
                f"  AND (t.content_hash <> s.content_hash OR NOT t.active)), "
                f"count(*) FILTER (WHERE t.{self.key} IS NOT NULL AND NOT ({self.owned} "
                f"  AND (t.content_hash <> s.content_hash OR NOT t.active))) "
                f"FROM {STAGE} s LEFT JOIN {self.table} t ON t.{self.key} = s.{self.key}"
            )
            added, updated, unchanged = cursor.fetchone()
        return added, updated, unchanged

    def upsert(self, written: int) -> None:
        """Write new and changed rows; ``written`` is how many the counts announced."""
        with connection.cursor() as cursor:
            cursor.execute(f"SELECT count(*) FROM {self.table}")
            stored = int(cursor.fetchone()[0])
        # Dropping an index takes an exclusive lock until commit: only worth it
        # (and acceptable) when the table is mostly new, as on a first import. Only the
        # table's owner may drop it: the application's own role (two-role deployments,
        # docs/deployment.md) keeps the index and loads a little slower.
        big = written > BULK_REBUILD_ROWS and written > stored
        rebuild = self.bulk_indexes if big and self._owns_table() else []
        with connection.cursor() as cursor:
            for name, _ in rebuild:
                cursor.execute(f"DROP INDEX IF EXISTS {name}")
        self._upsert()
        with connection.cursor() as cursor:
            if rebuild:
                cursor.execute("SET LOCAL maintenance_work_mem = '256MB'")
            for _, create in rebuild:
                cursor.execute(create)

    def _owns_table(self) -> bool:
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT pg_has_role(current_user, tableowner, 'USAGE') FROM pg_tables "
                "WHERE schemaname = current_schema() AND tablename = %s",
                [self.table],
            )
            row = cursor.fetchone()
        return bool(row and row[0])

    def _upsert(self) -> None:
        cols = ", ".join(self.columns)
        sets = ", ".join(f"{c} = EXCLUDED.{c}" for c in self.columns if c != self.key)
        owned = self.owned.replace("t.", f"{self.table}.")
        with connection.cursor() as cursor:
            cursor.execute(
                f"INSERT INTO {self.table} ({cols}) SELECT {cols} FROM {STAGE} ORDER BY {self.key} "
                f"ON CONFLICT ({self.key}) DO UPDATE SET {sets} "
                f"WHERE {owned} AND ({self.table}.content_hash <> EXCLUDED.content_hash "
                f"OR NOT {self.table}.active)"
            )

    def _absent(self, scope: str) -> str:
        return (
            f"FROM {self.table} t WHERE t.active AND {scope} AND NOT EXISTS "
            f"(SELECT 1 FROM {STAGE} s WHERE s.{self.key} = t.{self.key})"
        )

    def count_absent(self, scope: str) -> int:
        with connection.cursor() as cursor:
            cursor.execute(f"SELECT count(*) {self._absent(scope)}")
            return int(cursor.fetchone()[0])

    def deactivate_absent(self, scope: str) -> int:
        with connection.cursor() as cursor:
            cursor.execute(
                f"UPDATE {self.table} SET active = false WHERE id IN (SELECT t.id {self._absent(scope)})"
            )
            return int(cursor.rowcount)
