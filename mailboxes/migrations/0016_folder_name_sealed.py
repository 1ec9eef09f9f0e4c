"""Folder names sealed, with a keyed digest for uniqueness and lookups (issue 14).

A folder is often named after a patient ("Dupont Marie — suivi"): its name was the last
word of the user's in clear in the database. It is sealed like subjects
(``mssante.lib.fieldseal``), and ``name_key``, the keyed digest of the folded name within
its mailbox, carries the (mailbox, name) uniqueness, now case-insensitive by construction,
and every lookup by name. Two names of one box that fold alike (possible before: the
constraint was case-sensitive) are kept apart by a suffix " (2)", " (3)"…
"""

from collections import defaultdict

from django.conf import settings
from django.db import migrations, models

import mailboxes.fields
from mssante.lib import crypto, fieldseal

LABEL = "mailboxes.folder.name"


def _ring():
    return crypto.KeyRing.from_spec(settings.MSSANTE_MASTER_KEYS)


def seal(apps, schema_editor):
    ring = _ring()
    model = apps.get_model("mailboxes", "Folder")
    seen = defaultdict(set)
    rows = []
    for row in model.objects.order_by("pk").only("pk", "mailbox_id", "name").iterator(2000):
        name, n = row.name, 1
        key = fieldseal.name_key(ring, LABEL, str(row.mailbox_id), name)
        while key in seen[row.mailbox_id]:
            n += 1
            name = f"{row.name} ({n})"
            key = fieldseal.name_key(ring, LABEL, str(row.mailbox_id), name)
        seen[row.mailbox_id].add(key)
        row.name_sealed = fieldseal.seal_value(ring, LABEL, name)
        row.name_key = key
        rows.append(row)
    model.objects.bulk_update(rows, ["name_sealed", "name_key"], batch_size=2000)


def unseal(apps, schema_editor):
    ring = _ring()
    model = apps.get_model("mailboxes", "Folder")
    for row in model.objects.only("pk", "name_sealed").iterator(2000):
        row.name = fieldseal.open_value(ring, LABEL, bytes(row.name_sealed))[:100]
        row.save(update_fields=["name"])


class Migration(migrations.Migration):
    dependencies = [
        ("mailboxes", "0015_entry_tokens_out_of_line"),
    ]

    operations = [
        migrations.RemoveConstraint(model_name="folder", name="unique_folder_name"),
        migrations.AddField(
            model_name="folder", name="name_sealed", field=models.BinaryField(null=True)
        ),
        migrations.AddField(
            model_name="folder",
            name="name_key",
            field=models.CharField(editable=False, max_length=64, null=True),
        ),
        migrations.AlterField(
            model_name="folder",
            name="name",
            field=models.CharField(max_length=100, null=True, verbose_name="nom"),
        ),
        migrations.RunPython(seal, unseal),
        migrations.RemoveField(model_name="folder", name="name"),
        migrations.RenameField(model_name="folder", old_name="name_sealed", new_name="name"),
        migrations.AlterField(
            model_name="folder",
            name="name",
            field=mailboxes.fields.SealedTextField(verbose_name="nom"),
        ),
        migrations.AlterField(
            model_name="folder",
            name="name_key",
            field=mailboxes.fields.NameKeyField(
                editable=False, max_length=64, scope="mailbox_id", source="name"
            ),
        ),
        migrations.AddConstraint(
            model_name="folder",
            constraint=models.UniqueConstraint(
                fields=("mailbox", "name_key"), name="unique_folder_name"
            ),
        ),
    ]
