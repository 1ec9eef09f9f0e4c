"""The journal as issues 11 and 12 wrote it, to build what an existing deployment holds.

Before issue 13 each row was chained to the previous one (``prev_hash``, and ``hash`` =
HMAC over the previous hash, the key id and the row), the purge removed a prefix of that
chain behind a signed checkpoint, and each anchor line (version 1) named the newest row.
These helpers write exactly that with plain SQL (no ``xid``: the column does not exist
before audit's migration 0002, and is NULL on the rows written before it), so that the
upgrade can be tested on a database migrated to charter's 0008 as well as on today's.
"""

# The attacks are SQL built here from fixed table and column names, no outside input.
# ruff: noqa: S608

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path
from typing import Any

from django.db import connection, transaction
from django.utils import timezone

from audit import anchors, checkpoints, keys, rows
from audit.models import AuditCheckpoint

GENESIS = "0" * 64
_COLUMNS = "at, actor_label, action, object_type, object_id, data, prev_hash, hash, key_id"


def _head() -> tuple[int, str]:
    with connection.cursor() as cursor:
        cursor.execute("SELECT id, hash FROM charter_auditevent ORDER BY id DESC LIMIT 1")
        row = cursor.fetchone()
        if row is not None:
            return int(row[0]), str(row[1])
        cursor.execute(
            "SELECT last_event_id, last_hash FROM charter_auditcheckpoint "
            "WHERE kind = 'purge' ORDER BY last_event_id DESC LIMIT 1"
        )
        row = cursor.fetchone()
    return (int(row[0]), str(row[1])) if row is not None else (0, GENESIS)


def _has_xid() -> bool:
    with connection.cursor() as cursor:
        columns = connection.introspection.get_table_description(cursor, "charter_auditevent")
    return any(column.name == "xid" for column in columns)


def record(
    action: str, *, object_id: str | int = "", at: datetime | None = None, **data: Any
) -> int:
    """One chained row, as ``journal.record`` wrote it before issue 13; its id."""
    key_id, keyring = keys.keyring()
    at = at or timezone.now()
    data = rows.clean_data(data)
    columns, extra = _COLUMNS, ""
    if _has_xid():  # today's schema: a row of the old chain has no transaction id
        columns, extra = f"{_COLUMNS}, xid", ", NULL"
    with transaction.atomic():
        _, prev = _head()
        mac = rows.row_mac(
            keyring[key_id],
            key_id,
            prev,
            rows.content(at, None, "", action, "", str(object_id), None, data),
        )
        with connection.cursor() as cursor:
            cursor.execute(
                f"INSERT INTO charter_auditevent ({columns}) "
                f"VALUES (%s, '', %s, '', %s, %s, %s, %s, %s{extra})",
                [at, action, str(object_id), json.dumps(data), prev, mac, key_id],
            )
        event_id, _ = _head()
    return event_id


def _events_up_to(last_id: int) -> int:
    purged = sum(
        AuditCheckpoint.objects.filter(kind="purge").values_list("purged_count", flat=True)
    )
    with connection.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM charter_auditevent WHERE id <= %s", [last_id])
        return purged + int(cursor.fetchone()[0])


def anchor(path: str | Path, *, purge: tuple[int, str, int] | None = None) -> None:
    """Append a version 1 anchor line naming the newest row."""
    key_id, keyring = keys.keyring()
    with anchors.AnchorStore(path) as store:
        previous = None
        for text in store.newest_lines():
            previous = json.loads(text)
            break
        last_id, head = _head()
        line: dict[str, Any] = {
            "v": 1,
            "n": previous["n"] + 1 if previous else 1,
            "at": timezone.now().isoformat(),
            "last_id": last_id,
            "head": head,
            "events": _events_up_to(last_id),
            "prev": previous["mac"] if previous else "",
            "key": key_id,
        }
        if purge is not None:
            line["purge"] = list(purge)
        line["mac"] = keys.sign(keyring[key_id], "anchor", line)
        store.append(json.dumps(line, sort_keys=True, separators=(",", ":")))


def purge(cutoff: datetime, *, anchor_to: str | Path | None = None) -> int:
    """Purge the prefix older than ``cutoff`` behind a signed checkpoint; how many went."""
    key_id, keyring = keys.keyring()
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("SELECT min(id) FROM charter_auditevent WHERE at >= %s", [cutoff])
        first_kept = cursor.fetchone()[0]
        cursor.execute(
            "SELECT id, hash FROM charter_auditevent WHERE id < %s ORDER BY id DESC LIMIT 1",
            [first_kept if first_kept is not None else 2**62],
        )
        last = cursor.fetchone()
        if last is None:
            return 0
        cursor.execute("SELECT count(*) FROM charter_auditevent WHERE id <= %s", [last[0]])
        count = int(cursor.fetchone()[0])
        checkpoint = AuditCheckpoint(
            kind="purge",
            created_at=timezone.now(),
            last_event_id=last[0],
            last_hash=last[1],
            purged_count=count,
            cutoff=cutoff,
            key_id=key_id,
        )
        checkpoint.signature = checkpoints.signature(checkpoint, keyring[key_id])
        checkpoint.save(force_insert=True)
        if connection.vendor == "postgresql":
            cursor.execute("SELECT charter_audit_purge(%s)", [last[0]])
        else:
            cursor.execute("DELETE FROM charter_auditevent WHERE id <= %s", [last[0]])
    record("audit.purged", count=count, last_event_id=last[0])
    if anchor_to:
        anchor(anchor_to, purge=(last[0], last[1], count))
    return count
