"""Search by keyed tokens, subjects and attachment names sealed (issue 14).

- ``Entry.search_text`` (clear subject, correspondents, attachment names; a trigram index)
  is replaced by ``Entry.search_tokens``: HMACs of the words of the message under a key
  of the box (``mailboxes.search``), a GIN index on PostgreSQL. The tokens are computed
  in Python, where the plaintext is in hand: the entries stored before this migration
  have none until ``manage.py rebuild_search_index`` has run (docs/operations.md); they
  are listed in their folders meanwhile, and found by no search.
- ``Message.preview``: the first words of the body for the message list, sealed, written
  at delivery;
- ``Message.subject``, ``Message.attachments`` and ``Draft.subject`` are sealed in place
  (AES-256-GCM under a key derived from the master key for the column,
  ``mssante.lib.fieldseal``): a new binary column is filled from the clear one, which is
  then dropped.

Run by the owner; it rewrites every message row (about a minute per million).
"""

import json

import django.db.models.deletion  # noqa: F401 (kept with the generated imports)
from django.conf import settings
from django.db import migrations, models

import mailboxes.fields
from mssante.lib import crypto, fieldseal

PG_FORWARD = [
    "DROP INDEX IF EXISTS entry_search",
    "DROP TRIGGER IF EXISTS mailboxes_entry_search_text ON mailboxes_entry",
    "DROP FUNCTION IF EXISTS mailboxes_entry_search_text()",
]
SQLITE_FORWARD = [
    "DROP TRIGGER IF EXISTS mailboxes_entry_search_text_kept",
    "DROP TRIGGER IF EXISTS mailboxes_entry_search_text",
]
PG_INDEX = [
    # "These tokens": the tokens are the box's own (its key), so the mailbox need not be
    # in the index; the query filters on it too.
    "CREATE INDEX entry_search_tokens ON mailboxes_entry USING gin (search_tokens)",
]
PG_INDEX_BACKWARD = ["DROP INDEX IF EXISTS entry_search_tokens"]


def _run(statements):
    def run(apps, schema_editor):
        for sql in statements.get(schema_editor.connection.vendor, []):
            schema_editor.execute(sql, params=None)

    return run


def _ring():
    return crypto.KeyRing.from_spec(settings.MSSANTE_MASTER_KEYS)


def _compact(value):
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))


def seal_columns(apps, schema_editor):
    ring = _ring()
    Message = apps.get_model("mailboxes", "Message")
    Draft = apps.get_model("mailboxes", "Draft")
    batch = []
    for message in Message.objects.only("pk", "subject", "attachments").iterator(2000):
        message.subject_sealed = fieldseal.seal_value(
            ring, "mailboxes.message.subject", message.subject or ""
        )
        message.attachments_sealed = fieldseal.seal_value(
            ring, "mailboxes.message.attachments", _compact(message.attachments or [])
        )
        batch.append(message)
        if len(batch) >= 2000:
            Message.objects.bulk_update(batch, ["subject_sealed", "attachments_sealed"])
            batch = []
    Message.objects.bulk_update(batch, ["subject_sealed", "attachments_sealed"])
    drafts = []
    for draft in Draft.objects.only("pk", "subject").iterator(2000):
        draft.subject_sealed = fieldseal.seal_value(
            ring, "mailboxes.draft.subject", draft.subject or ""
        )
        drafts.append(draft)
    Draft.objects.bulk_update(drafts, ["subject_sealed"], batch_size=2000)


def open_columns(apps, schema_editor):
    ring = _ring()
    Message = apps.get_model("mailboxes", "Message")
    Draft = apps.get_model("mailboxes", "Draft")
    for message in Message.objects.only("pk", "subject_sealed", "attachments_sealed").iterator():
        message.subject = fieldseal.open_value(
            ring, "mailboxes.message.subject", message.subject_sealed
        )[:998]
        message.attachments = json.loads(
            fieldseal.open_value(ring, "mailboxes.message.attachments", message.attachments_sealed)
        )
        message.save(update_fields=["subject", "attachments"])
    for draft in Draft.objects.only("pk", "subject_sealed").iterator():
        draft.subject = fieldseal.open_value(ring, "mailboxes.draft.subject", draft.subject_sealed)
        draft.save(update_fields=["subject"])


class Migration(migrations.Migration):
    dependencies = [
        ("mailboxes", "0009_folder_counters_and_search"),
    ]

    operations = [
        # --- the search: tokens instead of clear text
        migrations.RunPython(
            _run({"postgresql": PG_FORWARD, "sqlite": SQLITE_FORWARD}), migrations.RunPython.noop
        ),
        migrations.RemoveField(model_name="entry", name="search_text"),
        migrations.AddField(
            model_name="entry",
            name="search_tokens",
            field=mailboxes.fields.TokenSetField(
                blank=True, db_default=[], default=list, editable=False
            ),
        ),
        migrations.RunPython(_run({"postgresql": PG_INDEX}), _run({"postgresql": PG_INDEX_BACKWARD})),
        # --- sealed columns: a binary column filled from the clear one, which goes
        migrations.AddField(
            model_name="message",
            name="subject_sealed",
            field=models.BinaryField(null=True),
        ),
        migrations.AddField(
            model_name="message",
            name="attachments_sealed",
            field=models.BinaryField(null=True),
        ),
        migrations.AddField(
            model_name="draft",
            name="subject_sealed",
            field=models.BinaryField(null=True),
        ),
        migrations.AlterField(
            model_name="message",
            name="subject",
            field=models.CharField(blank=True, max_length=998, null=True, verbose_name="objet"),
        ),
        migrations.AlterField(
            model_name="draft",
            name="subject",
            field=models.CharField(blank=True, max_length=998, null=True),
        ),
        migrations.RunPython(seal_columns, open_columns),
        migrations.RemoveField(model_name="message", name="subject"),
        migrations.RemoveField(model_name="message", name="attachments"),
        migrations.RemoveField(model_name="draft", name="subject"),
        migrations.RenameField(model_name="message", old_name="subject_sealed", new_name="subject"),
        migrations.RenameField(
            model_name="message", old_name="attachments_sealed", new_name="attachments"
        ),
        migrations.RenameField(model_name="draft", old_name="subject_sealed", new_name="subject"),
        migrations.AlterField(
            model_name="message",
            name="subject",
            field=mailboxes.fields.SealedTextField(blank=True, default="", verbose_name="objet"),
        ),
        migrations.AlterField(
            model_name="message",
            name="attachments",
            field=mailboxes.fields.SealedJSONField(
                default=list,
                help_text="Noms, types et tailles, jamais le contenu.",
                verbose_name="pièces jointes",
            ),
        ),
        migrations.AlterField(
            model_name="draft",
            name="subject",
            field=mailboxes.fields.SealedTextField(blank=True, default=""),
        ),
        # The list's preview line, sealed, written at delivery (none for older messages).
        migrations.AddField(
            model_name="message",
            name="preview",
            field=mailboxes.fields.SealedTextField(
                blank=True, default="", editable=False, verbose_name="aperçu"
            ),
        ),
    ]
