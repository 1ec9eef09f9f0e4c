"""On PostgreSQL, refuse UPDATE and DELETE on the journal and its checkpoints.

The purge (charter.audit.purge_expired) sets ``mssante.audit_purge`` for its own
transaction (SET LOCAL), which is the only way a DELETE on the journal passes.
TRUNCATE is left alone: test databases are flushed with it, and only the table
owner may run it. SQLite has no such trigger; verify_audit still detects tampering.
"""

from django.db import migrations

FORWARD = """
CREATE OR REPLACE FUNCTION charter_append_only() RETURNS trigger AS $$
BEGIN
    IF TG_OP = 'DELETE' AND TG_TABLE_NAME = 'charter_auditevent'
       AND current_setting('mssante.audit_purge', true) = 'on' THEN
        RETURN OLD;
    END IF;
    RAISE EXCEPTION 'le journal d''audit est en ajout seul : % refusé sur %', TG_OP, TG_TABLE_NAME
        USING ERRCODE = 'insufficient_privilege';
END;
$$ LANGUAGE plpgsql;
CREATE TRIGGER charter_auditevent_append_only
    BEFORE UPDATE OR DELETE ON charter_auditevent
    FOR EACH ROW EXECUTE FUNCTION charter_append_only();
CREATE TRIGGER charter_auditcheckpoint_append_only
    BEFORE UPDATE OR DELETE ON charter_auditcheckpoint
    FOR EACH ROW EXECUTE FUNCTION charter_append_only();
"""

BACKWARD = """
DROP TRIGGER IF EXISTS charter_auditevent_append_only ON charter_auditevent;
DROP TRIGGER IF EXISTS charter_auditcheckpoint_append_only ON charter_auditcheckpoint;
DROP FUNCTION IF EXISTS charter_append_only();
"""


def _on_postgresql(sql):
    def run(apps, schema_editor):
        if schema_editor.connection.vendor == "postgresql":
            schema_editor.execute(sql, params=None)

    return run


class Migration(migrations.Migration):
    dependencies = [
        ("charter", "0002_audit_checkpoint_and_keep_actor_ids"),
    ]

    operations = [
        migrations.RunPython(_on_postgresql(FORWARD), _on_postgresql(BACKWARD), elidable=False),
    ]
