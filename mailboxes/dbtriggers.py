"""The triggers that keep the folder counters (migration 0009).

The database maintains ``FolderCounter`` (and the IMAP UIDs, migration 0017) itself, whatever code writes the entries (an ORM call, ``bulk_create``, ``.update()``, a cascade, raw SQL): see
docs/decisions.md, "A big mailbox that stays fast". Migration 0009 installs the triggers;
this module knows their names, and puts the SQLite ones back after a ``migrate`` (Django
rebuilds a SQLite table to alter it, and the rebuilt table has no trigger).
"""

from __future__ import annotations

from typing import Any

from django.db import connections

# Trigger name → table, on both databases (PostgreSQL also empties the counters when the
# entries are truncated).
TRIGGERS = {
    "mailboxes_folder_counted": "mailboxes_folder",
    "mailboxes_entry_counted_insert": "mailboxes_entry",
    "mailboxes_entry_counted_update": "mailboxes_entry",
    "mailboxes_entry_counted_delete": "mailboxes_entry",
    # IMAP UIDs and modification sequences (migration 0017).
    "mailboxes_entry_uid_insert": "mailboxes_entry",
    "mailboxes_entry_uid_update": "mailboxes_entry",
}
POSTGRESQL_ONLY = {
    "mailboxes_entry_emptied": "mailboxes_entry",
    # The UIDs settled after each statement, counters locked in folder order (0017).
    "mailboxes_entry_assigned_insert": "mailboxes_entry",
    "mailboxes_entry_assigned_update": "mailboxes_entry",
    "mailboxes_entry_assigned_delete": "mailboxes_entry",
}
# (The search column's triggers of migration 0009 are gone: the search index is keyed
# tokens computed in Python where the plaintext is in hand, mailboxes.search.)
SQLITE_ONLY: dict[str, str] = {
    "mailboxes_entry_uid_kept": "mailboxes_entry",
    "mailboxes_entry_uid_delete": "mailboxes_entry",
}

# The same statements as migration 0009's (IF NOT EXISTS: running them again is harmless).
SQLITE_TRIGGERS = [
    """CREATE TRIGGER IF NOT EXISTS mailboxes_folder_counted AFTER INSERT ON mailboxes_folder
    BEGIN
        INSERT OR IGNORE INTO mailboxes_foldercounter (folder_id, total, unread)
            VALUES (NEW.id, 0, 0);
    END""",
    """CREATE TRIGGER IF NOT EXISTS mailboxes_entry_counted_insert AFTER INSERT ON mailboxes_entry
    BEGIN
        UPDATE mailboxes_foldercounter
            SET total = total + 1, unread = unread + (NOT NEW.seen)
            WHERE folder_id = NEW.folder_id;
    END""",
    """CREATE TRIGGER IF NOT EXISTS mailboxes_entry_counted_delete AFTER DELETE ON mailboxes_entry
    BEGIN
        UPDATE mailboxes_foldercounter
            SET total = total - 1, unread = unread - (NOT OLD.seen)
            WHERE folder_id = OLD.folder_id;
    END""",
    """CREATE TRIGGER IF NOT EXISTS mailboxes_entry_counted_update
        AFTER UPDATE OF folder_id, seen ON mailboxes_entry
        WHEN OLD.folder_id IS NOT NEW.folder_id OR OLD.seen IS NOT NEW.seen
    BEGIN
        UPDATE mailboxes_foldercounter
            SET total = total - 1, unread = unread - (NOT OLD.seen)
            WHERE folder_id = OLD.folder_id;
        UPDATE mailboxes_foldercounter
            SET total = total + 1, unread = unread + (NOT NEW.seen)
            WHERE folder_id = NEW.folder_id;
    END""",
    # Migration 0017's (IMAP UIDs): the same statements.
    """CREATE TRIGGER IF NOT EXISTS mailboxes_entry_uid_insert AFTER INSERT ON mailboxes_entry
    BEGIN
        UPDATE mailboxes_foldercounter SET uid_next = uid_next + 1, modseq = modseq + 1
            WHERE folder_id = NEW.folder_id;
        UPDATE mailboxes_entry SET
            uid = (SELECT uid_next - 1 FROM mailboxes_foldercounter WHERE folder_id = NEW.folder_id),
            modseq = (SELECT modseq FROM mailboxes_foldercounter WHERE folder_id = NEW.folder_id)
            WHERE id = NEW.id;
    END""",
    """CREATE TRIGGER IF NOT EXISTS mailboxes_entry_uid_update
        AFTER UPDATE OF folder_id, seen, flagged, answered ON mailboxes_entry
        WHEN OLD.folder_id IS NOT NEW.folder_id OR OLD.seen IS NOT NEW.seen
            OR OLD.flagged IS NOT NEW.flagged OR OLD.answered IS NOT NEW.answered
    BEGIN
        UPDATE mailboxes_foldercounter SET modseq = modseq + 1
            WHERE folder_id = OLD.folder_id AND OLD.folder_id IS NOT NEW.folder_id;
        -- Above the entry's old sequence too (sequences are per folder): the entry's
        -- row only ever goes up, which is how "kept" tells a stale save from this.
        UPDATE mailboxes_foldercounter SET modseq = max(modseq, OLD.modseq) + 1,
            uid_next = uid_next + (OLD.folder_id IS NOT NEW.folder_id)
            WHERE folder_id = NEW.folder_id;
        UPDATE mailboxes_entry SET
            uid = CASE WHEN OLD.folder_id IS NOT NEW.folder_id THEN (SELECT uid_next - 1
                FROM mailboxes_foldercounter WHERE folder_id = NEW.folder_id) ELSE OLD.uid END,
            modseq = (SELECT modseq FROM mailboxes_foldercounter WHERE folder_id = NEW.folder_id)
            WHERE id = NEW.id;
    END""",
    """CREATE TRIGGER IF NOT EXISTS mailboxes_entry_uid_kept
        AFTER UPDATE OF uid, modseq ON mailboxes_entry
        WHEN OLD.uid <> 0 AND OLD.folder_id IS NEW.folder_id AND NEW.modseq <= OLD.modseq
            AND (NEW.uid IS NOT OLD.uid OR NEW.modseq IS NOT OLD.modseq)
    BEGIN
        UPDATE mailboxes_entry SET uid = OLD.uid, modseq = max(modseq, OLD.modseq)
            WHERE id = NEW.id;
    END""",
    """CREATE TRIGGER IF NOT EXISTS mailboxes_entry_uid_delete AFTER DELETE ON mailboxes_entry
    BEGIN
        UPDATE mailboxes_foldercounter SET modseq = modseq + 1 WHERE folder_id = OLD.folder_id;
    END""",
]


def expected(vendor: str) -> dict[str, str]:
    """The triggers the database must have (name → table)."""
    return {**TRIGGERS, **(POSTGRESQL_ONLY if vendor == "postgresql" else SQLITE_ONLY)}


def installed(using: str = "default") -> dict[str, str]:
    """The triggers the database has on the folders and the entries (name → table)."""
    connection = connections[using]
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.execute(
                "SELECT t.tgname, c.relname FROM pg_trigger AS t "
                "JOIN pg_class AS c ON c.oid = t.tgrelid WHERE NOT t.tgisinternal "
                "AND c.relname IN ('mailboxes_entry', 'mailboxes_folder')"
            )
        else:
            cursor.execute(
                "SELECT name, tbl_name FROM sqlite_master WHERE type = 'trigger' "
                "AND tbl_name IN ('mailboxes_entry', 'mailboxes_folder')"
            )
        return {name: table for name, table in cursor.fetchall()}


def missing(using: str = "default") -> list[str]:
    """The triggers the database should have and has not (empty when all are there)."""
    vendor = connections[using].vendor
    have = installed(using)
    return sorted(name for name, table in expected(vendor).items() if have.get(name) != table)


def restore_sqlite_triggers(sender: Any, using: str = "default", **kwargs: Any) -> None:
    """post_migrate: put back the SQLite triggers a table rebuild dropped.

    A rebuild copies the rows as they are (counters and search text stay true); what
    would be lost is the triggers for what comes next. Before migration 0009 (its table
    absent) there is nothing to restore.
    """
    connection = connections[using]
    if connection.vendor != "sqlite":
        return
    if "mailboxes_foldercounter" not in connection.introspection.table_names():
        return
    with connection.cursor() as cursor:
        for sql in SQLITE_TRIGGERS:
            cursor.execute(sql)
