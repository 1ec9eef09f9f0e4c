"""The Quarantine record moves to the mailboxes app (issue 12): state only.

Its table ``charter_quarantine`` stays where it is, with its rows; the mailboxes app's
migration 0007 declares the same model with ``db_table = "charter_quarantine"``.
"""

from django.db import migrations


class Migration(migrations.Migration):

    dependencies = [
        ("charter", "0010_trust_rules_leave_for_trust"),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[migrations.DeleteModel(name="Quarantine")],
            database_operations=[],
        ),
    ]
