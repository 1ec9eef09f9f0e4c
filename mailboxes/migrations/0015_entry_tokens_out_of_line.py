"""Keep the entry rows narrow: their search tokens stored out of line (PostgreSQL).

An entry carries its search tokens (a ``bigint[]`` of a few hundred values, issue 14):
stored inline, they made each row about 2 kB, so the 50 rows of a page deep in a big box
were spread over many heap pages (the deep inbox page went from 35 to 75 ms p95 at
100,000 messages). With ``toast_tuple_target`` at its minimum, any row over 128 bytes has
its tokens moved to the TOAST table: the list reads narrow rows, the search finds its
rows through the GIN index and reads the tokens only of those it checks. Rows written
before this migration move as they are rewritten (``VACUUM FULL mailboxes_entry`` moves
them all at once: docs/operations.md). SQLite (the embedded default) has no such setting.
"""

from django.db import migrations


def _set(target):
    def run(apps, schema_editor):
        if schema_editor.connection.vendor == "postgresql":
            schema_editor.execute(f"ALTER TABLE mailboxes_entry SET (toast_tuple_target = {target})")

    return run


class Migration(migrations.Migration):
    dependencies = [
        ("mailboxes", "0014_quarantine_subject_sealed"),
    ]

    operations = [migrations.RunPython(_set(128), _set(2032))]
