"""The journal without a global lock (issue 13): rows signed alone, bound in order by seals.

- ``xid`` on events: the inserting transaction's id, filled in by PostgreSQL
  (``audit_xid()``: ``pg_current_xact_id()`` plus an offset, 0 until a logical restore,
  see audit/positions.py); NULL on the rows already there (the column is added without
  a default first, so the table is not rewritten) and on SQLite. Indexed with the id:
  the sealer and the verification read the rows in (xid, id) order.
- ``hash`` is no longer unique: a row's MAC covers only itself, and two events with the
  same content at the same microsecond (one batch) may have the same one.
- ``AuditSeal``, append-only like the journal (the trigger, and the grants applied after
  migrate by audit.dbroles): the application's role may only INSERT and SELECT it.
- ``audit_purge_seals(upto)``, like ``charter_audit_purge``: the only way the
  application's role removes sealed rows (and the seals before the one it keeps).
- The rows already there stay chained (``prev_hash``) and verifiable: a checkpoint of
  kind ``end``, signed with the current key, names the newest of them (or the newest
  purge's, when the table is empty), so the chain's end cannot be cut; the first seal
  links to that checkpoint's signature.
"""

import base64
import hashlib
import hmac
import json

from django.conf import settings
from django.db import migrations, models
from django.utils import timezone

import audit.models

POSITIONS = """
CREATE OR REPLACE FUNCTION audit_xid() RETURNS bigint LANGUAGE sql VOLATILE
AS $$ SELECT pg_current_xact_id()::text::bigint + 0 $$;
CREATE OR REPLACE FUNCTION audit_xid_horizon() RETURNS bigint LANGUAGE sql VOLATILE
AS $$ SELECT pg_snapshot_xmin(pg_current_snapshot())::text::bigint + 0 $$;
ALTER TABLE charter_auditevent ALTER COLUMN xid SET DEFAULT audit_xid();
"""

DROP_POSITIONS = """
ALTER TABLE charter_auditevent ALTER COLUMN xid DROP DEFAULT;
DROP FUNCTION IF EXISTS audit_xid();
DROP FUNCTION IF EXISTS audit_xid_horizon();
"""

APPEND_ONLY = """
CREATE OR REPLACE FUNCTION charter_append_only() RETURNS trigger AS $$
BEGIN
    IF TG_OP = 'DELETE' AND TG_TABLE_NAME IN ('charter_auditevent', 'audit_auditseal')
       AND current_setting('mssante.audit_purge', true) = 'on' THEN
        RETURN OLD;
    END IF;
    RAISE EXCEPTION 'le journal d''audit est en ajout seul : % refusé sur %', TG_OP, TG_TABLE_NAME
        USING ERRCODE = 'insufficient_privilege';
END;
$$ LANGUAGE plpgsql;
CREATE TRIGGER audit_auditseal_append_only
    BEFORE UPDATE OR DELETE ON audit_auditseal
    FOR EACH ROW EXECUTE FUNCTION charter_append_only();
"""

APPEND_ONLY_BEFORE = """
DROP TRIGGER IF EXISTS audit_auditseal_append_only ON audit_auditseal;
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
"""

PURGE_SEALS = """
CREATE OR REPLACE FUNCTION audit_purge_seals(upto bigint) RETURNS bigint
LANGUAGE plpgsql SECURITY DEFINER SET search_path = {schema}, pg_temp AS $$
DECLARE
    checkpoint charter_auditcheckpoint%ROWTYPE;
    kept audit_auditseal%ROWTYPE;
    removed bigint;
BEGIN
    SELECT * INTO checkpoint FROM charter_auditcheckpoint
        WHERE kind = 'seals' AND last_event_id = upto;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'purge du journal d''audit sans point de contrôle jusqu''au scellement %', upto
            USING ERRCODE = 'insufficient_privilege';
    END IF;
    SELECT * INTO kept FROM audit_auditseal WHERE id = upto AND mac = checkpoint.last_hash;
    IF NOT FOUND OR EXISTS (
        SELECT 1 FROM charter_auditevent
        WHERE (xid IS NULL OR xid < kept.hi) AND at >= checkpoint.cutoff
    ) THEN
        RAISE EXCEPTION 'purge du journal d''audit refusée : le point de contrôle ne décrit pas les lignes jusqu''au scellement %', upto
            USING ERRCODE = 'insufficient_privilege';
    END IF;
    PERFORM set_config('mssante.audit_purge', 'on', true);
    DELETE FROM charter_auditevent WHERE xid IS NULL OR xid < kept.hi;
    GET DIAGNOSTICS removed = ROW_COUNT;
    DELETE FROM audit_auditseal WHERE id < upto;
    PERFORM set_config('mssante.audit_purge', 'off', true);
    IF removed <> checkpoint.purged_count THEN
        RAISE EXCEPTION 'purge du journal d''audit refusée : % lignes, le point de contrôle en annonce %', removed, checkpoint.purged_count
            USING ERRCODE = 'insufficient_privilege';
    END IF;
    RETURN removed;
END;
$$;
REVOKE ALL ON FUNCTION audit_purge_seals(bigint) FROM PUBLIC;
"""

DROP_PURGE_SEALS = "DROP FUNCTION IF EXISTS audit_purge_seals(bigint);"


def _on_postgresql(sql):
    def run(apps, schema_editor):
        connection = schema_editor.connection
        if connection.vendor == "postgresql":
            with connection.cursor() as cursor:
                cursor.execute("SELECT current_schema()")
                schema = connection.ops.quote_name(cursor.fetchone()[0])
            schema_editor.execute(sql.replace("{schema}", schema), params=None)

    return run


def add_xid_column(apps, schema_editor):
    # No default yet: the rows already there keep NULL (and the table is not rewritten).
    schema_editor.execute("ALTER TABLE charter_auditevent ADD COLUMN xid bigint NULL")


def drop_xid_column(apps, schema_editor):
    schema_editor.execute("ALTER TABLE charter_auditevent DROP COLUMN xid")


def mark_chain_end(apps, schema_editor):
    """Sign where the old chain ends (see audit.verification.check_chain)."""
    db = schema_editor.connection.alias
    AuditEvent = apps.get_model("audit", "AuditEvent")
    AuditCheckpoint = apps.get_model("audit", "AuditCheckpoint")
    last = AuditEvent.objects.using(db).order_by("-id").values_list("id", "hash").first()
    if last is None:
        last = (
            AuditCheckpoint.objects.using(db)
            .filter(kind="purge")
            .order_by("-last_event_id")
            .values_list("last_event_id", "last_hash")
            .first()
        )
    if last is None:
        return  # a journal born with the seals
    key_id, _, b64 = settings.AUDIT_KEYS.split(",")[0].strip().partition(":")
    now = timezone.now()
    checkpoint = AuditCheckpoint(
        kind="end",
        created_at=now,
        last_event_id=last[0],
        last_hash=last[1],
        purged_count=0,
        cutoff=now,
        key_id=key_id,
    )
    # The same payload as audit.checkpoints.signature (data migrations do not import
    # app code; a test checks that the checkpoint verifies).
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
        ("audit", "0001_journal_from_charter"),
    ]

    operations = [
        migrations.AlterField(
            model_name="auditevent",
            name="hash",
            field=models.CharField(max_length=64),
        ),
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.AddField(
                    model_name="auditevent",
                    name="xid",
                    field=models.BigIntegerField(
                        blank=True,
                        db_default=audit.models.TransactionId(),
                        editable=False,
                        null=True,
                        verbose_name="transaction",
                    ),
                ),
            ],
            database_operations=[
                migrations.RunPython(add_xid_column, drop_xid_column, elidable=False),
            ],
        ),
        migrations.AddIndex(
            model_name="auditevent",
            index=models.Index(fields=["xid", "id"], name="audit_event_xid_id"),
        ),
        migrations.AlterField(
            model_name="auditcheckpoint",
            name="kind",
            field=models.CharField(
                choices=[
                    ("purge", "purge"),
                    ("seals", "purge de scellements"),
                    ("seal", "scellement des lignes sans clé"),
                    ("end", "fin de la chaîne"),
                ],
                default="purge",
                max_length=8,
                verbose_name="nature",
            ),
        ),
        migrations.CreateModel(
            name="AuditSeal",
            fields=[
                (
                    "id",
                    models.BigAutoField(
                        auto_created=True, primary_key=True, serialize=False, verbose_name="ID"
                    ),
                ),
                ("created_at", models.DateTimeField(verbose_name="date")),
                ("lo", models.BigIntegerField(verbose_name="depuis la position")),
                (
                    "hi",
                    models.BigIntegerField(
                        unique=True, verbose_name="jusqu'à la position (exclue)"
                    ),
                ),
                ("count", models.BigIntegerField(verbose_name="événements")),
                (
                    "total",
                    models.BigIntegerField(verbose_name="événements scellés depuis l'origine"),
                ),
                ("newest_at", models.DateTimeField(verbose_name="événement le plus récent")),
                (
                    "digest",
                    models.CharField(max_length=64, verbose_name="empreinte des événements"),
                ),
                (
                    "prev",
                    models.CharField(
                        blank=True, max_length=64, verbose_name="scellement précédent"
                    ),
                ),
                ("key_id", models.CharField(max_length=16, verbose_name="clé")),
                ("mac", models.CharField(max_length=64, verbose_name="signature")),
            ],
            options={
                "verbose_name": "scellement du journal",
                "verbose_name_plural": "scellements du journal",
                "ordering": ["-id"],
            },
        ),
        migrations.RunPython(
            _on_postgresql(POSITIONS), _on_postgresql(DROP_POSITIONS), elidable=False
        ),
        migrations.RunPython(
            _on_postgresql(APPEND_ONLY), _on_postgresql(APPEND_ONLY_BEFORE), elidable=False
        ),
        migrations.RunPython(
            _on_postgresql(PURGE_SEALS), _on_postgresql(DROP_PURGE_SEALS), elidable=False
        ),
        migrations.RunPython(mark_chain_end, migrations.RunPython.noop, elidable=False),
    ]
