"""Audit journal keyed by AUDIT_KEYS, and a journal the application's role cannot rewrite.

- ``key_id`` on events and checkpoints: rows are chained by HMAC-SHA256 under that
  key of AUDIT_KEYS (charter.audit). Rows already there keep their unkeyed SHA-256:
  this migration *seals* them with a checkpoint signed by the current key (kind
  ``seal``: rows up to that id may be unkeyed, and that row's hash must not change),
  so an unkeyed row written later, or the sealed part recomputed, is detected.
- Purge checkpoints are unique per kind, no longer per id (a seal and a purge may end
  at the same row).
- PostgreSQL: ``charter_audit_purge(upto)``, a SECURITY DEFINER function of the schema
  owner, is the only way the application's role removes events: it deletes the prefix
  up to ``upto`` only when a purge checkpoint for that row, with that row's hash and
  its exact count, exists and every row removed is older than the checkpoint's cutoff.
  The grants themselves are applied after each migrate (charter.dbroles).
"""

import base64
import hashlib
import hmac
import json

from django.conf import settings
from django.db import migrations, models
from django.utils import timezone

PURGE_FUNCTION = """
CREATE OR REPLACE FUNCTION charter_audit_purge(upto bigint) RETURNS bigint
LANGUAGE plpgsql SECURITY DEFINER SET search_path = {schema}, pg_temp AS $$
DECLARE
    checkpoint charter_auditcheckpoint%ROWTYPE;
    removed bigint;
BEGIN
    SELECT * INTO checkpoint FROM charter_auditcheckpoint
        WHERE kind = 'purge' AND last_event_id = upto;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'purge du journal d''audit sans point de contrôle jusqu''à la ligne %', upto
            USING ERRCODE = 'insufficient_privilege';
    END IF;
    IF NOT EXISTS (SELECT 1 FROM charter_auditevent WHERE id = upto AND hash = checkpoint.last_hash)
       OR EXISTS (SELECT 1 FROM charter_auditevent WHERE id <= upto AND at >= checkpoint.cutoff) THEN
        RAISE EXCEPTION 'purge du journal d''audit refusée : le point de contrôle ne décrit pas les lignes jusqu''à %', upto
            USING ERRCODE = 'insufficient_privilege';
    END IF;
    PERFORM set_config('mssante.audit_purge', 'on', true);
    DELETE FROM charter_auditevent WHERE id <= upto;
    GET DIAGNOSTICS removed = ROW_COUNT;
    PERFORM set_config('mssante.audit_purge', 'off', true);
    IF removed <> checkpoint.purged_count THEN
        RAISE EXCEPTION 'purge du journal d''audit refusée : % lignes, le point de contrôle en annonce %', removed, checkpoint.purged_count
            USING ERRCODE = 'insufficient_privilege';
    END IF;
    RETURN removed;
END;
$$;
REVOKE ALL ON FUNCTION charter_audit_purge(bigint) FROM PUBLIC;
"""

DROP_PURGE_FUNCTION = "DROP FUNCTION IF EXISTS charter_audit_purge(bigint);"


def _on_postgresql(sql):
    def run(apps, schema_editor):
        connection = schema_editor.connection
        if connection.vendor == "postgresql":
            with connection.cursor() as cursor:
                cursor.execute("SELECT current_schema()")
                schema = connection.ops.quote_name(cursor.fetchone()[0])
            # The caller's temporary schema last: a SECURITY DEFINER function must not
            # read a temporary table of the caller's named like ours.
            schema_editor.execute(sql.replace("{schema}", schema), params=None)

    return run


def seal_unkeyed_rows(apps, schema_editor):
    """Sign the newest existing row as the end of the unkeyed part (see charter.audit)."""
    db = schema_editor.connection.alias
    AuditEvent = apps.get_model("charter", "AuditEvent")
    AuditCheckpoint = apps.get_model("charter", "AuditCheckpoint")
    last = AuditEvent.objects.using(db).order_by("-id").values_list("id", "hash").first()
    if last is None:
        return
    key_id, _, b64 = settings.AUDIT_KEYS.split(",")[0].strip().partition(":")
    now = timezone.now()
    checkpoint = AuditCheckpoint(
        kind="seal",
        created_at=now,
        last_event_id=last[0],
        last_hash=last[1],
        purged_count=0,
        cutoff=now,
        key_id=key_id,
    )
    # The same payload as charter.audit._checkpoint_signature (data migrations do not
    # import app code; a test checks that the seal verifies).
    subkey = hmac.new(base64.b64decode(b64), b"mssante.audit.checkpoint", hashlib.sha256).digest()
    payload = json.dumps(
        [
            checkpoint.kind,
            checkpoint.key_id,
            checkpoint.created_at.isoformat(),
            checkpoint.last_event_id,
            checkpoint.last_hash,
            checkpoint.purged_count,
            checkpoint.cutoff.isoformat(),
        ],
        sort_keys=True,
        ensure_ascii=False,
        separators=(",", ":"),
    )
    checkpoint.signature = hmac.new(subkey, payload.encode(), hashlib.sha256).hexdigest()
    checkpoint.save(using=db, force_insert=True)


class Migration(migrations.Migration):

    dependencies = [
        ('charter', '0007_quarantine_inactivity_indicators'),
    ]

    operations = [
        migrations.AddField(
            model_name='auditcheckpoint',
            name='key_id',
            field=models.CharField(blank=True, max_length=16, verbose_name='clé'),
        ),
        migrations.AddField(
            model_name='auditcheckpoint',
            name='kind',
            field=models.CharField(choices=[('purge', 'purge'), ('seal', 'scellement des lignes sans clé')], default='purge', max_length=8, verbose_name='nature'),
        ),
        migrations.AddField(
            model_name='auditevent',
            name='key_id',
            field=models.CharField(blank=True, max_length=16, verbose_name='clé'),
        ),
        migrations.AlterField(
            model_name='auditcheckpoint',
            name='last_event_id',
            field=models.BigIntegerField(verbose_name='dernier événement purgé'),
        ),
        migrations.AddConstraint(
            model_name='auditcheckpoint',
            constraint=models.UniqueConstraint(fields=('kind', 'last_event_id'), name='charter_checkpoint_kind_last_event'),
        ),
        migrations.RunPython(seal_unkeyed_rows, migrations.RunPython.noop, elidable=False),
        migrations.RunPython(
            _on_postgresql(PURGE_FUNCTION), _on_postgresql(DROP_PURGE_FUNCTION), elidable=False
        ),
    ]
