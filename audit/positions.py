"""PostgreSQL: keep the journal's positions going forward after a logical restore.

A row's position is the id of the transaction that inserted it (``audit_xid()``), and
the sealer seals up to the oldest transaction still running (``audit_xid_horizon()``).
Physical backups, replicas and pg_upgrade keep PostgreSQL's transaction ids; a
``pg_dump`` restored into a new cluster starts them again near zero, below the
positions already sealed. After every ``migrate`` run by the schema owner, this
checks the next position against the highest one used and, when it is below, adds an
offset to both functions (their body is one expression, so PostgreSQL inlines them:
the INSERT pays nothing for it). Run ``migrate`` after such a restore, before the
application journals (the sealer refuses to seal meanwhile, logging CRITICAL).
"""

from __future__ import annotations

from typing import Any

from django.db import connections

FUNCTIONS = """
CREATE OR REPLACE FUNCTION audit_xid() RETURNS bigint LANGUAGE sql VOLATILE
AS $$ SELECT pg_current_xact_id()::text::bigint + {offset} $$;
CREATE OR REPLACE FUNCTION audit_xid_horizon() RETURNS bigint LANGUAGE sql VOLATILE
AS $$ SELECT pg_snapshot_xmin(pg_current_snapshot())::text::bigint + {offset} $$;
"""
# Room left above the highest position used (transactions of the restore itself...).
MARGIN = 1_000_000


def realign(cursor: Any) -> int | None:
    """Move the positions past the highest one used, if they fell below; the new offset.

    ``cursor``: a DB-API cursor of the functions' owner, in a transaction.
    """
    cursor.execute(
        "SELECT GREATEST((SELECT max(xid) FROM charter_auditevent), "
        "(SELECT max(hi) FROM audit_auditseal)), "
        "audit_xid() - pg_current_xact_id()::text::bigint, audit_xid()"
    )
    highest, offset, position = cursor.fetchone()
    if highest is None or position > highest:
        return None
    offset += highest - position + MARGIN
    cursor.execute(FUNCTIONS.replace("{offset}", str(int(offset))))
    return int(offset)


def realign_after_migrate(sender: Any, using: str = "default", **kwargs: Any) -> None:
    """post_migrate receiver (connected in AuditConfig.ready), by the functions' owner only."""
    connection = connections[using]
    if connection.vendor != "postgresql":
        return
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT p.proowner = (SELECT oid FROM pg_roles WHERE rolname = current_user) "
            "FROM pg_proc p WHERE p.oid = to_regprocedure('audit_xid()')"
        )
        row = cursor.fetchone()
        if row is None or not row[0]:
            return  # below audit's migration 0002, or not the owner
        realign(cursor)
