"""Folder counters kept by the database, and an indexed search column (issue 13).

Every webmail page counted all the messages of the box (the switcher and the side menu);
the search read the whole message table. Now:

- ``FolderCounter``: one row per folder (total, unread), created with the folder and kept
  by triggers on ``mailboxes_entry`` in the transaction of every insert, move, flag change
  and delete, whatever code writes; filled here from a real count;
- ``Entry.search_text``: the subject, correspondents and attachment names of the entry's
  message, written by a trigger when the entry is inserted, filled here for existing ones;
  on PostgreSQL a trigram index over (mailbox_id, search_text) (extensions pg_trgm and
  btree_gin, both "trusted": the schema owner may create them);
- ``entry_mailbox_page``: the box newest first, what a search for a common word walks.

The SQL is written out here (a migration does not import the app's code); the SQLite
triggers, which Django drops when it rebuilds a table, are put back after every migrate
by ``mailboxes.dbtriggers``. Run by the owner, this migration blocks writes to the
entries while it fills the column and builds the index (about a minute per million
entries, docs/operations.md).
"""

import django.db.models.deletion
from django.db import migrations, models

# --------------------------------------------------------------------------- PostgreSQL

PG_SEARCH_TEXT = """
    concat_ws(E'\\n', m.subject, m.from_addr, m.from_name, m.sender_addr,
        (SELECT string_agg(a, E'\\n') FROM jsonb_array_elements_text(
            CASE WHEN jsonb_typeof(m.to_addrs) = 'array' THEN m.to_addrs ELSE '[]' END) AS a),
        (SELECT string_agg(a, E'\\n') FROM jsonb_array_elements_text(
            CASE WHEN jsonb_typeof(m.cc_addrs) = 'array' THEN m.cc_addrs ELSE '[]' END) AS a),
        (SELECT string_agg(f ->> 'filename', E'\\n') FROM jsonb_array_elements(
            CASE WHEN jsonb_typeof(m.attachments) = 'array' THEN m.attachments ELSE '[]' END)
            AS f))
"""

PG_FORWARD = [
    "CREATE EXTENSION IF NOT EXISTS pg_trgm",
    "CREATE EXTENSION IF NOT EXISTS btree_gin",
    # No write to the entries until this commits: the counts below stay true.
    "LOCK TABLE mailboxes_entry, mailboxes_folder IN SHARE ROW EXCLUSIVE MODE",
    f"""UPDATE mailboxes_entry AS e SET search_text = {PG_SEARCH_TEXT}
        FROM mailboxes_message AS m WHERE m.id = e.message_id""",  # noqa: S608 (constant SQL)
    """INSERT INTO mailboxes_foldercounter (folder_id, total, unread)
        SELECT f.id, count(e.id), count(e.id) FILTER (WHERE NOT e.seen)
        FROM mailboxes_folder AS f LEFT JOIN mailboxes_entry AS e ON e.folder_id = f.id
        GROUP BY f.id""",
    """CREATE FUNCTION mailboxes_counters_add(folders bigint[], totals bigint[], unreads bigint[])
        RETURNS void LANGUAGE plpgsql AS $$
    BEGIN
        IF folders IS NULL THEN
            RETURN;
        END IF;
        -- The rows are locked in folder order first: two transactions touching the same
        -- folders queue for them in the same order, so they cannot deadlock on them.
        PERFORM 1 FROM mailboxes_foldercounter
            WHERE folder_id = ANY (folders) ORDER BY folder_id FOR NO KEY UPDATE;
        UPDATE mailboxes_foldercounter AS c
            SET total = c.total + d.total, unread = c.unread + d.unread
            FROM unnest(folders, totals, unreads) AS d (folder_id, total, unread)
            WHERE c.folder_id = d.folder_id;
    END $$""",
    """CREATE FUNCTION mailboxes_entry_counted_insert() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
        PERFORM mailboxes_counters_add(array_agg(folder_id), array_agg(total), array_agg(unread))
        FROM (SELECT folder_id, count(*) AS total, count(*) FILTER (WHERE NOT seen) AS unread
              FROM new_entries GROUP BY folder_id) AS d;
        RETURN NULL;
    END $$""",
    """CREATE FUNCTION mailboxes_entry_counted_delete() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
        PERFORM mailboxes_counters_add(array_agg(folder_id), array_agg(total), array_agg(unread))
        FROM (SELECT folder_id, -count(*) AS total, -count(*) FILTER (WHERE NOT seen) AS unread
              FROM old_entries GROUP BY folder_id) AS d;
        RETURN NULL;
    END $$""",
    """CREATE FUNCTION mailboxes_entry_counted_update() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
        PERFORM mailboxes_counters_add(array_agg(folder_id), array_agg(total), array_agg(unread))
        FROM (
            SELECT folder_id, sum(total)::bigint AS total, sum(unread)::bigint AS unread
            FROM (
                SELECT n.folder_id, 1 AS total, CASE WHEN n.seen THEN 0 ELSE 1 END AS unread
                  FROM new_entries AS n JOIN old_entries AS o ON o.id = n.id
                 WHERE n.folder_id <> o.folder_id OR n.seen <> o.seen
                UNION ALL
                SELECT o.folder_id, -1, CASE WHEN o.seen THEN 0 ELSE -1 END
                  FROM new_entries AS n JOIN old_entries AS o ON o.id = n.id
                 WHERE n.folder_id <> o.folder_id OR n.seen <> o.seen
            ) AS changes
            GROUP BY folder_id
            HAVING sum(total) <> 0 OR sum(unread) <> 0
        ) AS d;
        RETURN NULL;
    END $$""",
    """CREATE FUNCTION mailboxes_entry_emptied() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
        UPDATE mailboxes_foldercounter SET total = 0, unread = 0;
        RETURN NULL;
    END $$""",
    """CREATE FUNCTION mailboxes_folder_counted() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
        INSERT INTO mailboxes_foldercounter (folder_id, total, unread)
            SELECT id, 0, 0 FROM new_folders ON CONFLICT (folder_id) DO NOTHING;
        RETURN NULL;
    END $$""",
    f"""CREATE FUNCTION mailboxes_entry_search_text() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
        -- Written once, from the message (which never changes): an entry saved again
        -- from Python, with whatever its instance holds, keeps it.
        IF TG_OP = 'UPDATE' AND NEW.message_id = OLD.message_id THEN
            NEW.search_text := OLD.search_text;
            RETURN NEW;
        END IF;
        SELECT {PG_SEARCH_TEXT} INTO NEW.search_text
            FROM mailboxes_message AS m WHERE m.id = NEW.message_id;
        NEW.search_text := coalesce(NEW.search_text, '');
        RETURN NEW;
    END $$""",  # noqa: S608 (constant SQL)
    """CREATE TRIGGER mailboxes_entry_counted_insert AFTER INSERT ON mailboxes_entry
        REFERENCING NEW TABLE AS new_entries
        FOR EACH STATEMENT EXECUTE FUNCTION mailboxes_entry_counted_insert()""",
    """CREATE TRIGGER mailboxes_entry_counted_update AFTER UPDATE ON mailboxes_entry
        REFERENCING OLD TABLE AS old_entries NEW TABLE AS new_entries
        FOR EACH STATEMENT EXECUTE FUNCTION mailboxes_entry_counted_update()""",
    """CREATE TRIGGER mailboxes_entry_counted_delete AFTER DELETE ON mailboxes_entry
        REFERENCING OLD TABLE AS old_entries
        FOR EACH STATEMENT EXECUTE FUNCTION mailboxes_entry_counted_delete()""",
    """CREATE TRIGGER mailboxes_entry_emptied AFTER TRUNCATE ON mailboxes_entry
        FOR EACH STATEMENT EXECUTE FUNCTION mailboxes_entry_emptied()""",
    """CREATE TRIGGER mailboxes_folder_counted AFTER INSERT ON mailboxes_folder
        REFERENCING NEW TABLE AS new_folders
        FOR EACH STATEMENT EXECUTE FUNCTION mailboxes_folder_counted()""",
    """CREATE TRIGGER mailboxes_entry_search_text
        BEFORE INSERT OR UPDATE OF search_text, message_id ON mailboxes_entry
        FOR EACH ROW EXECUTE FUNCTION mailboxes_entry_search_text()""",
    # A search is "these words in this box": one index answers both parts at once.
    """CREATE INDEX entry_search ON mailboxes_entry
        USING gin (mailbox_id, search_text gin_trgm_ops)""",
]

PG_BACKWARD = [
    "DROP INDEX IF EXISTS entry_search",
    "DROP TRIGGER IF EXISTS mailboxes_entry_search_text ON mailboxes_entry",
    "DROP TRIGGER IF EXISTS mailboxes_folder_counted ON mailboxes_folder",
    "DROP TRIGGER IF EXISTS mailboxes_entry_emptied ON mailboxes_entry",
    "DROP TRIGGER IF EXISTS mailboxes_entry_counted_delete ON mailboxes_entry",
    "DROP TRIGGER IF EXISTS mailboxes_entry_counted_update ON mailboxes_entry",
    "DROP TRIGGER IF EXISTS mailboxes_entry_counted_insert ON mailboxes_entry",
    "DROP FUNCTION IF EXISTS mailboxes_entry_search_text()",
    "DROP FUNCTION IF EXISTS mailboxes_folder_counted()",
    "DROP FUNCTION IF EXISTS mailboxes_entry_emptied()",
    "DROP FUNCTION IF EXISTS mailboxes_entry_counted_update()",
    "DROP FUNCTION IF EXISTS mailboxes_entry_counted_delete()",
    "DROP FUNCTION IF EXISTS mailboxes_entry_counted_insert()",
    "DROP FUNCTION IF EXISTS mailboxes_counters_add(bigint[], bigint[], bigint[])",
    "DELETE FROM mailboxes_foldercounter",
]

# --------------------------------------------------------------------------- SQLite

SQLITE_SEARCH_TEXT = """
    m.subject || char(10) || m.from_addr || char(10) || m.from_name || char(10) || m.sender_addr
    || coalesce((SELECT char(10) || group_concat(value, char(10)) FROM json_each(m.to_addrs)), '')
    || coalesce((SELECT char(10) || group_concat(value, char(10)) FROM json_each(m.cc_addrs)), '')
    || coalesce((SELECT char(10) || group_concat(json_extract(value, '$.filename'), char(10))
                 FROM json_each(m.attachments) WHERE type = 'object'), '')
"""

SQLITE_FORWARD = [
    f"""UPDATE mailboxes_entry SET search_text = coalesce((SELECT {SQLITE_SEARCH_TEXT}
        FROM mailboxes_message AS m WHERE m.id = mailboxes_entry.message_id), '')""",  # noqa: S608 (constant SQL)
    """INSERT INTO mailboxes_foldercounter (folder_id, total, unread)
        SELECT f.id, count(e.id), coalesce(sum(CASE WHEN e.seen THEN 0 ELSE 1 END), 0)
        FROM mailboxes_folder AS f LEFT JOIN mailboxes_entry AS e ON e.folder_id = f.id
        GROUP BY f.id""",
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
    f"""CREATE TRIGGER IF NOT EXISTS mailboxes_entry_search_text AFTER INSERT ON mailboxes_entry
    BEGIN
        UPDATE mailboxes_entry SET search_text = coalesce((SELECT {SQLITE_SEARCH_TEXT}
            FROM mailboxes_message AS m WHERE m.id = NEW.message_id), '')
            WHERE id = NEW.id;
    END""",  # noqa: S608 (constant SQL)
    # Written once, from the message: an entry saved again from Python keeps it.
    f"""CREATE TRIGGER IF NOT EXISTS mailboxes_entry_search_text_kept
        AFTER UPDATE OF search_text, message_id ON mailboxes_entry
        WHEN OLD.search_text <> '' OR NEW.message_id IS NOT OLD.message_id
    BEGIN
        UPDATE mailboxes_entry SET search_text = coalesce((SELECT {SQLITE_SEARCH_TEXT}
            FROM mailboxes_message AS m WHERE m.id = NEW.message_id), '')
            WHERE id = NEW.id;
    END""",  # noqa: S608 (constant SQL)
]

SQLITE_BACKWARD = [
    "DROP TRIGGER IF EXISTS mailboxes_entry_search_text_kept",
    "DROP TRIGGER IF EXISTS mailboxes_entry_search_text",
    "DROP TRIGGER IF EXISTS mailboxes_entry_counted_update",
    "DROP TRIGGER IF EXISTS mailboxes_entry_counted_delete",
    "DROP TRIGGER IF EXISTS mailboxes_entry_counted_insert",
    "DROP TRIGGER IF EXISTS mailboxes_folder_counted",
    "DELETE FROM mailboxes_foldercounter",
]


def _run(statements: dict[str, list[str]]):
    def run(apps, schema_editor):
        for sql in statements.get(schema_editor.connection.vendor, []):
            schema_editor.execute(sql, params=None)

    return run


class Migration(migrations.Migration):
    dependencies = [
        ("mailboxes", "0008_delivery_reason_codes"),
    ]

    operations = [
        migrations.CreateModel(
            name="FolderCounter",
            fields=[
                (
                    "folder",
                    models.OneToOneField(
                        on_delete=django.db.models.deletion.CASCADE,
                        primary_key=True,
                        related_name="counter",
                        serialize=False,
                        to="mailboxes.folder",
                    ),
                ),
                ("total", models.BigIntegerField(default=0)),
                ("unread", models.BigIntegerField(default=0)),
            ],
            options={
                "verbose_name": "compteur d'un dossier",
                "verbose_name_plural": "compteurs des dossiers",
            },
        ),
        migrations.RemoveIndex(
            model_name="entry",
            name="entry_folder_unread",
        ),
        migrations.AddField(
            model_name="entry",
            name="search_text",
            field=models.TextField(blank=True, db_default="", default="", editable=False),
        ),
        migrations.AlterField(
            model_name="entry",
            name="folder",
            field=models.ForeignKey(
                db_index=False,
                on_delete=django.db.models.deletion.PROTECT,
                related_name="entries",
                to="mailboxes.folder",
            ),
        ),
        migrations.AlterField(
            model_name="entry",
            name="mailbox",
            field=models.ForeignKey(
                db_index=False,
                on_delete=django.db.models.deletion.CASCADE,
                related_name="entries",
                to="mailboxes.mailbox",
            ),
        ),
        migrations.AddIndex(
            model_name="entry",
            index=models.Index(
                fields=["mailbox", "-received_at", "-id"], name="entry_mailbox_page"
            ),
        ),
        migrations.RunPython(
            _run({"postgresql": PG_FORWARD, "sqlite": SQLITE_FORWARD}),
            _run({"postgresql": PG_BACKWARD, "sqlite": SQLITE_BACKWARD}),
        ),
    ]
