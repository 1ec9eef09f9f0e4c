"""Search indexes that only PostgreSQL has: trigram (pg_trgm) and C-collated prefixes.

Created with SQL behind a vendor check rather than declared on the models:
SQLite (the embedded default) has neither pg_trgm, GIN nor a "C" collation.
The autocomplete orders and filters by ``column COLLATE "C"``, so one btree
serves both ``LIKE 'x%'`` and ``ORDER BY … LIMIT 10`` whatever the database's
own collation. The importer rebuilds the trigram index after a first bulk load
with the same statement (directory.search.TRIGRAM_INDEX_SQL).
"""

from django.contrib.postgres.operations import TrigramExtension
from django.db import migrations

TABLE = "directory_directoryentry"
INDEXES = {
    "directory_search_trgm": "USING gin (search_text gin_trgm_ops)",
    "directory_lastname_c": '((last_name_norm COLLATE "C"))',
    "directory_address_c": '((address COLLATE "C"))',
}


def create_indexes(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        for name, definition in INDEXES.items():
            schema_editor.execute(f"CREATE INDEX IF NOT EXISTS {name} ON {TABLE} {definition}")


def drop_indexes(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        for name in INDEXES:
            schema_editor.execute(f"DROP INDEX IF EXISTS {name}")


class Migration(migrations.Migration):
    dependencies = [("directory", "0001_directory_entries_and_imports")]

    operations = [
        TrigramExtension(),
        migrations.RunPython(create_indexes, drop_indexes),
    ]
