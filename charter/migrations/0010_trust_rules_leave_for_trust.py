# The liste blanche and the recipient exceptions now belong to the trust app
# (trust/migrations/0001): they leave charter's state only. Their tables, rows, indexes,
# constraints and grants stay as they are (the models keep their db_table).

from django.db import migrations


class Migration(migrations.Migration):

    dependencies = [
        ("charter", "0009_journal_moved_to_audit"),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.DeleteModel(name="OperatorCertificate"),
                migrations.DeleteModel(name="ListedDomain"),
                migrations.DeleteModel(name="ListeBlancheImport"),
                migrations.DeleteModel(name="RecipientLimitException"),
            ],
            database_operations=[],
        ),
    ]
