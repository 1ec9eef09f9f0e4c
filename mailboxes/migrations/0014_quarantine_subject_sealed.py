"""The quarantine record's subject sealed (issue 14).

The copy of a message's subject kept with a quarantine record was in clear while the message's own is
sealed (issue 14): sealed the same way (``mssante.lib.fieldseal``, a key derived from the
master key for the column). A binary column is filled from the clear one, which goes.
"""

from django.conf import settings
from django.db import migrations, models

import mailboxes.fields
from mssante.lib import crypto, fieldseal

LABEL = "mailboxes.quarantine.subject"


def _ring():
    return crypto.KeyRing.from_spec(settings.MSSANTE_MASTER_KEYS)


def seal(apps, schema_editor):
    ring = _ring()
    model = apps.get_model("mailboxes", "Quarantine")
    rows = []
    for row in model.objects.only("pk", "subject").iterator(2000):
        row.subject_sealed = fieldseal.seal_value(ring, LABEL, row.subject or "")
        rows.append(row)
    model.objects.bulk_update(rows, ["subject_sealed"], batch_size=2000)


def unseal(apps, schema_editor):
    ring = _ring()
    model = apps.get_model("mailboxes", "Quarantine")
    for row in model.objects.only("pk", "subject_sealed").iterator(2000):
        row.subject = fieldseal.open_value(ring, LABEL, bytes(row.subject_sealed))[:998]
        row.save(update_fields=["subject"])


class Migration(migrations.Migration):
    dependencies = [
        ("mailboxes", "0013_drafts_on_content_and_receipts"),
    ]

    operations = [
        migrations.AddField(
            model_name="quarantine", name="subject_sealed", field=models.BinaryField(null=True)
        ),
        migrations.AlterField(
            model_name="quarantine",
            name="subject",
            field=models.CharField(blank=True, max_length=998, null=True, verbose_name="objet"),
        ),
        migrations.RunPython(seal, unseal),
        migrations.RemoveField(model_name="quarantine", name="subject"),
        migrations.RenameField(
            model_name="quarantine", old_name="subject_sealed", new_name="subject"
        ),
        migrations.AlterField(
            model_name="quarantine",
            name="subject",
            field=mailboxes.fields.SealedTextField(blank=True, default="", verbose_name="objet"),
        ),
    ]
