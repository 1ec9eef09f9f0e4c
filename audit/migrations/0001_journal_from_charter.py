"""The audit journal becomes the app ``audit`` (issue 12): state only, the tables stay.

AuditEvent and AuditCheckpoint were created by charter's migrations 0001-0008, with
the append-only trigger (0003), the purge function and the application role's grants
(0008). They keep their tables (``charter_auditevent``, ``charter_auditcheckpoint``),
so an existing database keeps its rows, triggers, function and grants untouched: this
migration only adds the models to this app's state (charter/migrations/0009 removes
them from charter's). On a fresh database charter's migrations still create the
tables, hence the dependency on charter's 0008.

The journal's content types move with it (renamed, not recreated), so that the
permissions granted on the journal and the admin's log entries still point at it.
"""

import django.db.models.deletion
from django.conf import settings
from django.db import migrations, models

MODELS = ("auditevent", "auditcheckpoint")


def _move_content_types(source, target):
    def run(apps, schema_editor):
        ContentType = apps.get_model("contenttypes", "ContentType")
        types = ContentType.objects.using(schema_editor.connection.alias)
        for model in MODELS:
            if not types.filter(app_label=target, model=model).exists():
                types.filter(app_label=source, model=model).update(app_label=target)

    return run


class Migration(migrations.Migration):
    initial = True

    dependencies = [
        ("charter", "0008_audit_keys_seal_and_restricted_role"),
        ("contenttypes", "0002_remove_content_type_name"),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.CreateModel(
                    name="AuditEvent",
                    fields=[
                        (
                            "id",
                            models.BigAutoField(
                                auto_created=True,
                                primary_key=True,
                                serialize=False,
                                verbose_name="ID",
                            ),
                        ),
                        ("at", models.DateTimeField(db_index=True, verbose_name="date")),
                        (
                            "actor_label",
                            models.CharField(
                                blank=True, max_length=200, verbose_name="auteur (libellé)"
                            ),
                        ),
                        (
                            "action",
                            models.CharField(db_index=True, max_length=64, verbose_name="action"),
                        ),
                        (
                            "object_type",
                            models.CharField(
                                blank=True, max_length=64, verbose_name="type d'objet"
                            ),
                        ),
                        (
                            "object_id",
                            models.CharField(
                                blank=True, db_index=True, max_length=64, verbose_name="objet"
                            ),
                        ),
                        (
                            "ip",
                            models.GenericIPAddressField(
                                blank=True, null=True, verbose_name="adresse IP"
                            ),
                        ),
                        (
                            "data",
                            models.JSONField(blank=True, default=dict, verbose_name="détails"),
                        ),
                        ("prev_hash", models.CharField(max_length=64)),
                        ("hash", models.CharField(max_length=64, unique=True)),
                        (
                            "key_id",
                            models.CharField(blank=True, max_length=16, verbose_name="clé"),
                        ),
                        (
                            "actor",
                            models.ForeignKey(
                                blank=True,
                                db_constraint=False,
                                null=True,
                                on_delete=django.db.models.deletion.DO_NOTHING,
                                related_name="+",
                                to=settings.AUTH_USER_MODEL,
                                verbose_name="auteur",
                            ),
                        ),
                    ],
                    options={
                        "verbose_name": "événement du journal",
                        "verbose_name_plural": "journal d'audit",
                        "db_table": "charter_auditevent",
                        "ordering": ["-id"],
                    },
                ),
                migrations.CreateModel(
                    name="AuditCheckpoint",
                    fields=[
                        (
                            "id",
                            models.BigAutoField(
                                auto_created=True,
                                primary_key=True,
                                serialize=False,
                                verbose_name="ID",
                            ),
                        ),
                        (
                            "kind",
                            models.CharField(
                                choices=[
                                    ("purge", "purge"),
                                    ("seal", "scellement des lignes sans clé"),
                                ],
                                default="purge",
                                max_length=8,
                                verbose_name="nature",
                            ),
                        ),
                        ("created_at", models.DateTimeField(verbose_name="date")),
                        (
                            "last_event_id",
                            models.BigIntegerField(verbose_name="dernier événement purgé"),
                        ),
                        (
                            "last_hash",
                            models.CharField(
                                max_length=64, verbose_name="empreinte du dernier événement purgé"
                            ),
                        ),
                        (
                            "purged_count",
                            models.PositiveIntegerField(verbose_name="événements purgés"),
                        ),
                        ("cutoff", models.DateTimeField(verbose_name="purgé avant le")),
                        (
                            "key_id",
                            models.CharField(blank=True, max_length=16, verbose_name="clé"),
                        ),
                        ("signature", models.CharField(max_length=64, verbose_name="signature")),
                    ],
                    options={
                        "verbose_name": "point de contrôle du journal",
                        "verbose_name_plural": "points de contrôle du journal",
                        "db_table": "charter_auditcheckpoint",
                        "ordering": ["-last_event_id"],
                        "constraints": [
                            models.UniqueConstraint(
                                fields=("kind", "last_event_id"),
                                name="charter_checkpoint_kind_last_event",
                            )
                        ],
                    },
                ),
            ],
            database_operations=[],
        ),
        migrations.RunPython(
            _move_content_types("charter", "audit"),
            _move_content_types("audit", "charter"),
            elidable=False,
        ),
    ]
