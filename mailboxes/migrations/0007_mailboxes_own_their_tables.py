"""Mailboxes own their tables (issue 12).

- ``Mailbox.status_changed_at``: when a box was last closed or reopened (a reopened box
  starts the inactivity clock again).
- The Quarantine record moves here from the charter app, state only: its table keeps its
  name (``charter_quarantine``), rows, grants and constraints. Its content type is renamed,
  so staff permissions granted on it carry over.
- The directory learns which of our boxes it must never publish (liste rouge, closed):
  ``directory.WithheldAddress`` is filled from the boxes as they are, and their local
  directory entries are removed (closed boxes stayed listed before this fix).
"""

import django.db.models.deletion
from django.conf import settings
from django.db import migrations, models
from django.db.models import Q


def rename_content_type(apps, schema_editor, old="charter", new="mailboxes"):
    ContentType = apps.get_model("contenttypes", "ContentType")
    db = schema_editor.connection.alias
    if ContentType.objects.using(db).filter(app_label=new, model="quarantine").exists():
        return
    ContentType.objects.using(db).filter(app_label=old, model="quarantine").update(app_label=new)


def rename_content_type_back(apps, schema_editor):
    rename_content_type(apps, schema_editor, old="mailboxes", new="charter")


def withhold_unpublished_boxes(apps, schema_editor):
    Mailbox = apps.get_model("mailboxes", "Mailbox")
    WithheldAddress = apps.get_model("directory", "WithheldAddress")
    DirectoryEntry = apps.get_model("directory", "DirectoryEntry")
    db = schema_editor.connection.alias
    hidden = (
        Mailbox.objects.using(db)
        .filter(Q(liste_rouge=True) | Q(status="closed") | Q(kind="PAT"))
        .values_list("address", "kind")
    )
    rows = sorted({(address.lower(), kind) for address, kind in hidden.iterator()})
    for start in range(0, len(rows), 1000):
        chunk = rows[start : start + 1000]
        # Patient addresses hold the INS: never copied (the import withholds their domain).
        WithheldAddress.objects.using(db).bulk_create(
            [WithheldAddress(address=address) for address, kind in chunk if kind != "PAT"],
            ignore_conflicts=True,
        )
        DirectoryEntry.objects.using(db).filter(
            source="local", address__in=[address for address, _kind in chunk]
        ).delete()


class Migration(migrations.Migration):

    dependencies = [
        ("mailboxes", "0006_inbound_resend_key"),
        ("charter", "0011_quarantine_moves_to_mailboxes"),
        ("directory", "0003_withheld_addresses"),
        ("contenttypes", "0002_remove_content_type_name"),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.AddField(
            model_name="mailbox",
            name="status_changed_at",
            field=models.DateTimeField(
                blank=True, editable=False, null=True, verbose_name="statut modifié le"
            ),
        ),
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.CreateModel(
                    name="Quarantine",
                    fields=[
                        (
                            "id",
                            models.BigAutoField(
                                auto_created=True, primary_key=True, serialize=False, verbose_name="ID"
                            ),
                        ),
                        ("message_id_header", models.CharField(max_length=255, verbose_name="Message-ID")),
                        (
                            "from_addr",
                            models.CharField(db_index=True, max_length=254, verbose_name="expéditeur"),
                        ),
                        ("recipients", models.JSONField(default=list, verbose_name="destinataires")),
                        ("subject", models.CharField(blank=True, max_length=998, verbose_name="objet")),
                        ("size", models.PositiveIntegerField(default=0, verbose_name="taille")),
                        ("message_date", models.DateTimeField(null=True, verbose_name="date du message")),
                        (
                            "verdict",
                            models.CharField(
                                choices=[
                                    ("infected", "virus détecté"),
                                    ("unscannable", "impossible à analyser"),
                                ],
                                max_length=12,
                                verbose_name="verdict",
                            ),
                        ),
                        (
                            "signatures",
                            models.JSONField(blank=True, default=list, verbose_name="signatures"),
                        ),
                        ("detail", models.CharField(blank=True, max_length=500, verbose_name="détail")),
                        (
                            "quarantined_at",
                            models.DateTimeField(db_index=True, verbose_name="mis en quarantaine le"),
                        ),
                        (
                            "status",
                            models.CharField(
                                choices=[
                                    ("held", "en quarantaine"),
                                    ("released", "libéré"),
                                    ("deleted", "supprimé"),
                                ],
                                db_index=True,
                                default="held",
                                max_length=8,
                                verbose_name="état",
                            ),
                        ),
                        (
                            "decided_at",
                            models.DateTimeField(blank=True, null=True, verbose_name="décidé le"),
                        ),
                        (
                            "decision_reason",
                            models.TextField(blank=True, verbose_name="motif de la décision"),
                        ),
                        (
                            "decided_by",
                            models.ForeignKey(
                                blank=True,
                                null=True,
                                on_delete=django.db.models.deletion.SET_NULL,
                                related_name="+",
                                to=settings.AUTH_USER_MODEL,
                                verbose_name="décidé par",
                            ),
                        ),
                        (
                            "message",
                            models.OneToOneField(
                                blank=True,
                                null=True,
                                on_delete=django.db.models.deletion.SET_NULL,
                                related_name="quarantine",
                                to="mailboxes.message",
                                verbose_name="message",
                            ),
                        ),
                    ],
                    options={
                        "verbose_name": "message en quarantaine",
                        "verbose_name_plural": "quarantaine antivirus",
                        "ordering": ["-quarantined_at"],
                        "db_table": "charter_quarantine",
                    },
                ),            ],
            database_operations=[],
        ),
        migrations.RunPython(rename_content_type, rename_content_type_back),
        migrations.RunPython(withhold_unpublished_boxes, migrations.RunPython.noop),
    ]
