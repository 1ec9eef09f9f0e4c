"""PostgreSQL: the application's role may add to the audit journal, never rewrite it.

Migrations run as the schema owner; the application logs in as DATABASE_APP_ROLE.
After every ``migrate`` run by the owner, the application's role is granted what it
needs on every table, and on the journal, its checkpoints and its seals only INSERT
and SELECT: no UPDATE, DELETE or TRUNCATE, and since it does not own them, no
ALTER TABLE (it cannot disable the append-only trigger). Its purge goes through
``charter_audit_purge`` (charter/migrations/0008: the old chain; the journal's tables
and functions kept their charter_ names when it became the app ``audit``) and
``audit_purge_seals`` (audit/migrations/0002: whole seals).
"""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.db import connections

JOURNAL_TABLES = ("charter_auditevent", "charter_auditcheckpoint", "audit_auditseal")
PURGE_FUNCTIONS = ("charter_audit_purge(bigint)", "audit_purge_seals(bigint)")


def grant_app_role(sender: Any, using: str = "default", **kwargs: Any) -> None:
    """post_migrate receiver (connected in AuditConfig.ready)."""
    role = settings.DATABASE_APP_ROLE
    connection = connections[using]
    if connection.vendor != "postgresql" or not role:
        return
    quote = connection.ops.quote_name
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT current_schema(), current_user, "
            "EXISTS (SELECT 1 FROM pg_tables WHERE schemaname = current_schema() "
            "AND tablename = %s AND tableowner = current_user)",
            [JOURNAL_TABLES[0]],
        )
        schema, user, owner = cursor.fetchone()
        # Only the owner grants: a flush run by the application (tests) also sends
        # post_migrate, and one role doing everything has nothing to grant.
        if not owner or user == role:
            return
        schema, grantee = quote(schema), quote(role)
        # Only the tables already there (a migrate may stop before the seals' migration).
        cursor.execute(
            "SELECT t FROM unnest(%s::text[]) t WHERE to_regclass(t) IS NOT NULL",
            [list(JOURNAL_TABLES)],
        )
        journal = ", ".join(row[0] for row in cursor.fetchall())
        for statement in (
            f"GRANT USAGE ON SCHEMA {schema} TO {grantee}",
            f"GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA {schema} TO {grantee}",
            f"GRANT USAGE, SELECT ON ALL SEQUENCES IN SCHEMA {schema} TO {grantee}",
            f"REVOKE UPDATE, DELETE, TRUNCATE, REFERENCES, TRIGGER ON {journal} FROM {grantee}, PUBLIC",
            f"REVOKE INSERT, UPDATE, DELETE, TRUNCATE ON django_migrations FROM {grantee}, PUBLIC",
        ):
            cursor.execute(statement)
        for function in PURGE_FUNCTIONS:
            cursor.execute("SELECT to_regprocedure(%s) IS NOT NULL", [function])
            if cursor.fetchone()[0]:  # absent below the migration that creates it
                cursor.execute(f"GRANT EXECUTE ON FUNCTION {function} TO {grantee}")


def journal_role_warnings() -> list[str]:
    """Why the role we are connected as could rewrite the journal (empty when it cannot)."""
    connection = connections["default"]
    if connection.vendor != "postgresql":
        return [
            "SQLite : la base ne protège pas le journal (pas de rôle restreint ni de "
            "déclencheur) ; seuls la clé et l'ancrage externe le protègent"
        ]
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT current_user, r.rolsuper, "
            "pg_has_role(current_user, t.tableowner, 'USAGE'), "
            "has_table_privilege(t.tablename, 'UPDATE, DELETE, TRUNCATE') "
            "FROM pg_roles r, pg_tables t WHERE r.rolname = current_user "
            "AND t.schemaname = current_schema() AND t.tablename = %s",
            [JOURNAL_TABLES[0]],
        )
        row = cursor.fetchone()
    if row is None:
        return []
    user, superuser, owner, can_rewrite = row
    if superuser or owner:
        return [
            f"le rôle de connexion « {user} » est superutilisateur ou propriétaire du journal : "
            "il peut désactiver le déclencheur (voir docs/deployment.md, deux rôles)"
        ]
    if can_rewrite:
        return [f"le rôle de connexion « {user} » peut modifier ou supprimer des lignes du journal"]
    return []
