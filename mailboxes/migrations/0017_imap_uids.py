"""Stable IMAP UIDs and modification sequences, given by the database (issue 15).

IMAP names a message by its UID in a folder: strictly ascending, never reused while the
folder's UIDVALIDITY stands (RFC 3501 2.3.1.1). The webmail, the delivery pipeline, the
rules and the bulk actions all place and move entries, each its own way (ORM calls,
``bulk_create``, ``.update()``): so, like the folder counters (migration 0009), the UIDs
are given by triggers, in the transaction of every write, whatever code writes:

- insert of an entry: it takes its folder's ``uid_next`` (``FolderCounter``), which goes
  up by one, and the folder's next modification sequence;
- change of folder (a move): the entry takes a new UID in its new folder (IMAP sees an
  EXPUNGE in the old one and a new message in the new one, as a MOVE must look); the old
  folder's modification sequence goes up too;
- change of seen, flagged or answered: a new modification sequence, the same UID;
- delete: the folder's modification sequence goes up;
- anything else Python writes (a stale instance saved whole): UID and sequence kept.

Existing entries get UIDs 1..n per folder in the order they arrived; the counters
continue from there. The SQLite triggers, dropped when Django rebuilds a table, are put
back after every migrate (``mailboxes.dbtriggers``).
"""

import mailboxes.models
from django.db import migrations, models


# --------------------------------------------------------------------------- PostgreSQL

PG_FORWARD = [
    "LOCK TABLE mailboxes_entry, mailboxes_foldercounter IN SHARE ROW EXCLUSIVE MODE",
    """UPDATE mailboxes_entry AS e SET uid = r.n, modseq = 1
        FROM (SELECT id, row_number() OVER (
                PARTITION BY folder_id ORDER BY received_at, id) AS n
              FROM mailboxes_entry) AS r
        WHERE r.id = e.id""",
    """UPDATE mailboxes_foldercounter AS c SET modseq = 1, uid_next = 1 + coalesce(
        (SELECT max(e.uid) FROM mailboxes_entry AS e WHERE e.folder_id = c.folder_id), 0)""",
    # Numbers are taken without a lock by each row (the counter read, then one more
    # per row of the same folder in this transaction), then settled after the statement
    # with the counters locked in folder order — the order of migration 0009's counter
    # triggers, which fire after these ("assigned" < "counted"): writers touching the same
    # folders queue in the same order and cannot deadlock on them. A transaction that
    # finds its numbers taken meanwhile numbers its rows again after the others (rare: a
    # second write of those rows only); the counter's lock, held to the commit, makes a
    # folder's UIDs ascend in commit order (RFC 3501 2.3.1.1).
    """CREATE FUNCTION mailboxes_entry_next_uid(folder bigint) RETURNS bigint
        LANGUAGE plpgsql AS $$
    DECLARE
        key text := 'mailboxes.uid_' || folder;
        last text := current_setting(key, true);
        uid bigint;
    BEGIN
        IF last IS NULL OR last = '' THEN
            SELECT uid_next INTO uid FROM mailboxes_foldercounter WHERE folder_id = folder;
            uid := coalesce(uid, 1);
        ELSE
            uid := last::bigint + 1;
        END IF;
        PERFORM set_config(key, uid::text, true);
        RETURN uid;
    END $$""",
    """CREATE FUNCTION mailboxes_entry_uid_insert() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
        NEW.uid := mailboxes_entry_next_uid(NEW.folder_id);
        SELECT modseq + 1 INTO NEW.modseq FROM mailboxes_foldercounter
            WHERE folder_id = NEW.folder_id;
        NEW.modseq := coalesce(NEW.modseq, 1);
        RETURN NEW;
    END $$""",
    """CREATE FUNCTION mailboxes_entry_uid_update() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
        IF NEW.folder_id IS DISTINCT FROM OLD.folder_id THEN
            NEW.uid := mailboxes_entry_next_uid(NEW.folder_id);
            SELECT greatest(modseq, OLD.modseq) + 1 INTO NEW.modseq
                FROM mailboxes_foldercounter WHERE folder_id = NEW.folder_id;
        ELSIF pg_trigger_depth() > 1 THEN
            -- The settling below numbering its rows again.
            RETURN NEW;
        ELSIF NEW.seen IS DISTINCT FROM OLD.seen OR NEW.flagged IS DISTINCT FROM OLD.flagged
                OR NEW.answered IS DISTINCT FROM OLD.answered THEN
            NEW.uid := OLD.uid;
            SELECT greatest(modseq, OLD.modseq) + 1 INTO NEW.modseq
                FROM mailboxes_foldercounter WHERE folder_id = NEW.folder_id;
        ELSE
            NEW.uid := OLD.uid;
            NEW.modseq := OLD.modseq;
        END IF;
        RETURN NEW;
    END $$""",
    """CREATE FUNCTION mailboxes_entry_uids_settle(arrivals bigint[], touched bigint[])
        RETURNS void LANGUAGE plpgsql AS $$
    DECLARE
        f record;
        hi bigint;
    BEGIN
        IF touched IS NULL OR cardinality(touched) = 0 THEN
            RETURN;
        END IF;
        PERFORM 1 FROM mailboxes_foldercounter
            WHERE folder_id = ANY (touched) ORDER BY folder_id FOR NO KEY UPDATE;
        FOR f IN
            SELECT e.folder_id, min(e.uid) AS lo, max(e.uid) AS hi, count(*) AS n,
                   max(e.modseq) AS top, c.uid_next
              FROM mailboxes_entry AS e
              JOIN mailboxes_foldercounter AS c ON c.folder_id = e.folder_id
             WHERE e.id = ANY (arrivals)
             GROUP BY e.folder_id, c.uid_next
        LOOP
            hi := f.hi;
            IF f.lo < f.uid_next THEN
                -- Taken meanwhile by a transaction that committed first: after theirs.
                UPDATE mailboxes_entry AS e SET uid = f.uid_next + r.n - 1
                  FROM (SELECT id, row_number() OVER (ORDER BY uid, id) AS n
                          FROM mailboxes_entry
                         WHERE id = ANY (arrivals) AND folder_id = f.folder_id) AS r
                 WHERE e.id = r.id;
                hi := f.uid_next + f.n - 1;
            END IF;
            UPDATE mailboxes_foldercounter SET uid_next = greatest(uid_next, hi + 1)
                WHERE folder_id = f.folder_id;
            PERFORM set_config('mailboxes.uid_' || f.folder_id, hi::text, true);
        END LOOP;
        UPDATE mailboxes_foldercounter AS c
           SET modseq = greatest(c.modseq + 1, coalesce(
               (SELECT max(e.modseq) FROM mailboxes_entry AS e
                 WHERE e.id = ANY (arrivals) AND e.folder_id = c.folder_id), 0))
         WHERE c.folder_id = ANY (touched);
    END $$""",
    """CREATE FUNCTION mailboxes_entry_assigned_insert() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
        IF pg_trigger_depth() > 1 THEN
            RETURN NULL;
        END IF;
        PERFORM mailboxes_entry_uids_settle(
            (SELECT array_agg(id) FROM new_entries),
            (SELECT array_agg(DISTINCT folder_id) FROM new_entries));
        RETURN NULL;
    END $$""",
    """CREATE FUNCTION mailboxes_entry_assigned_update() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
        IF pg_trigger_depth() > 1 THEN
            RETURN NULL;
        END IF;
        PERFORM mailboxes_entry_uids_settle(
            (SELECT array_agg(n.id) FROM new_entries AS n JOIN old_entries AS o ON o.id = n.id
              WHERE n.folder_id <> o.folder_id),
            (SELECT array_agg(DISTINCT x) FROM (
                SELECT unnest(ARRAY[n.folder_id, o.folder_id]) AS x
                  FROM new_entries AS n JOIN old_entries AS o ON o.id = n.id
                 WHERE n.folder_id <> o.folder_id OR n.seen <> o.seen
                    OR n.flagged <> o.flagged OR n.answered <> o.answered) AS t));
        RETURN NULL;
    END $$""",
    """CREATE FUNCTION mailboxes_entry_assigned_delete() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
        PERFORM mailboxes_entry_uids_settle(
            ARRAY[]::bigint[], (SELECT array_agg(DISTINCT folder_id) FROM old_entries));
        RETURN NULL;
    END $$""",
    """CREATE TRIGGER mailboxes_entry_uid_insert BEFORE INSERT ON mailboxes_entry
        FOR EACH ROW EXECUTE FUNCTION mailboxes_entry_uid_insert()""",
    """CREATE TRIGGER mailboxes_entry_uid_update BEFORE UPDATE ON mailboxes_entry
        FOR EACH ROW EXECUTE FUNCTION mailboxes_entry_uid_update()""",
    """CREATE TRIGGER mailboxes_entry_assigned_insert AFTER INSERT ON mailboxes_entry
        REFERENCING NEW TABLE AS new_entries
        FOR EACH STATEMENT EXECUTE FUNCTION mailboxes_entry_assigned_insert()""",
    """CREATE TRIGGER mailboxes_entry_assigned_update AFTER UPDATE ON mailboxes_entry
        REFERENCING OLD TABLE AS old_entries NEW TABLE AS new_entries
        FOR EACH STATEMENT EXECUTE FUNCTION mailboxes_entry_assigned_update()""",
    """CREATE TRIGGER mailboxes_entry_assigned_delete AFTER DELETE ON mailboxes_entry
        REFERENCING OLD TABLE AS old_entries
        FOR EACH STATEMENT EXECUTE FUNCTION mailboxes_entry_assigned_delete()""",
]

PG_BACKWARD = [
    "DROP TRIGGER IF EXISTS mailboxes_entry_assigned_delete ON mailboxes_entry",
    "DROP TRIGGER IF EXISTS mailboxes_entry_assigned_update ON mailboxes_entry",
    "DROP TRIGGER IF EXISTS mailboxes_entry_assigned_insert ON mailboxes_entry",
    "DROP TRIGGER IF EXISTS mailboxes_entry_uid_update ON mailboxes_entry",
    "DROP TRIGGER IF EXISTS mailboxes_entry_uid_insert ON mailboxes_entry",
    "DROP FUNCTION IF EXISTS mailboxes_entry_assigned_delete()",
    "DROP FUNCTION IF EXISTS mailboxes_entry_assigned_update()",
    "DROP FUNCTION IF EXISTS mailboxes_entry_assigned_insert()",
    "DROP FUNCTION IF EXISTS mailboxes_entry_uids_settle(bigint[], bigint[])",
    "DROP FUNCTION IF EXISTS mailboxes_entry_uid_update()",
    "DROP FUNCTION IF EXISTS mailboxes_entry_uid_insert()",
    "DROP FUNCTION IF EXISTS mailboxes_entry_next_uid(bigint)",
]

# --------------------------------------------------------------------------- SQLite
# (The same statements as mailboxes.dbtriggers.SQLITE_TRIGGERS.) A SQLite trigger cannot
# set NEW: the AFTER triggers write the row again; a stale save is undone by "kept"
# (recursive triggers are off: a trigger's own UPDATE does not fire it again).

SQLITE_FORWARD = [
    """UPDATE mailboxes_entry AS e SET uid = r.n, modseq = 1
        FROM (SELECT id, row_number() OVER (
                PARTITION BY folder_id ORDER BY received_at, id) AS n
              FROM mailboxes_entry) AS r
        WHERE r.id = e.id""",
    """UPDATE mailboxes_foldercounter SET modseq = 1, uid_next = 1 + coalesce(
        (SELECT max(e.uid) FROM mailboxes_entry AS e
         WHERE e.folder_id = mailboxes_foldercounter.folder_id), 0)""",
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

SQLITE_BACKWARD = [
    "DROP TRIGGER IF EXISTS mailboxes_entry_uid_delete",
    "DROP TRIGGER IF EXISTS mailboxes_entry_uid_kept",
    "DROP TRIGGER IF EXISTS mailboxes_entry_uid_update",
    "DROP TRIGGER IF EXISTS mailboxes_entry_uid_insert",
]


def _run(statements):
    def run(apps, schema_editor):
        for sql in statements.get(schema_editor.connection.vendor, []):
            schema_editor.execute(sql, params=None)

    return run


class Migration(migrations.Migration):

    dependencies = [
        ('mailboxes', '0016_folder_name_sealed'),
    ]

    operations = [
        migrations.AddField(
            model_name='entry',
            name='modseq',
            field=models.BigIntegerField(db_default=0, default=0, editable=False),
        ),
        migrations.AddField(
            model_name='entry',
            name='uid',
            field=models.BigIntegerField(db_default=0, default=0, editable=False),
        ),
        migrations.AddField(
            model_name='folder',
            name='uid_validity',
            field=models.PositiveIntegerField(default=mailboxes.models.new_uid_validity, editable=False),
        ),
        migrations.AddField(
            model_name='foldercounter',
            name='modseq',
            field=models.BigIntegerField(db_default=1, default=1),
        ),
        migrations.AddField(
            model_name='foldercounter',
            name='uid_next',
            field=models.BigIntegerField(db_default=1, default=1),
        ),
        migrations.AddIndex(
            model_name="entry",
            index=models.Index(fields=["folder", "uid"], name="entry_folder_uid"),
        ),
        migrations.RunPython(
            _run({"postgresql": PG_FORWARD, "sqlite": SQLITE_FORWARD}),
            _run({"postgresql": PG_BACKWARD, "sqlite": SQLITE_BACKWARD}),
        ),
    ]
