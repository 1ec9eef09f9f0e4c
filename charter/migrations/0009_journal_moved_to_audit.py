"""The audit journal leaves charter's state for the app ``audit`` (issue 12).

State only: the tables keep their names and rows (see audit/migrations/0001). The
indicators' proxy is now a proxy of ``audit.AuditEvent``.
"""

from django.db import migrations


class Migration(migrations.Migration):
    dependencies = [
        ("charter", "0008_audit_keys_seal_and_restricted_role"),
        ("audit", "0001_journal_from_charter"),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.DeleteModel(name="MonthlyIndicators"),
                migrations.DeleteModel(name="AuditCheckpoint"),
                migrations.DeleteModel(name="AuditEvent"),
                migrations.CreateModel(
                    name="MonthlyIndicators",
                    fields=[],
                    options={
                        "verbose_name": "indicateurs mensuels",
                        "verbose_name_plural": "indicateurs mensuels",
                        "proxy": True,
                        "indexes": [],
                        "constraints": [],
                    },
                    bases=("audit.auditevent",),
                ),
            ],
            database_operations=[],
        ),
    ]
