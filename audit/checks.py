"""System checks of the audit journal's protection (``manage.py check --deploy``)."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.core.checks import Tags, Warning, register
from django.db import connections

from audit import dbroles


@register(Tags.security, deploy=True)
def audit_journal_deployment(app_configs: Any = None, **kwargs: Any) -> list[Warning]:
    """What leaves the audit journal to the database alone."""
    warnings: list[Warning] = []
    if connections["default"].vendor == "postgresql" and not settings.DATABASE_APP_ROLE:
        warnings.append(
            Warning(
                "DATABASE_APP_ROLE est vide : les migrations ne séparent pas le rôle de "
                "l'application de celui du propriétaire du schéma, qui peut réécrire le "
                "journal d'audit.",
                hint="Deux rôles PostgreSQL : voir docs/deployment.md.",
                id="audit.W001",
            )
        )
    if not settings.AUDIT_ANCHOR_FILE:
        warnings.append(
            Warning(
                "AUDIT_ANCHOR_FILE est vide : la fin du journal d'audit n'est ancrée nulle "
                "part hors de la base (lignes récentes supprimées ou table vidée non détectées).",
                id="audit.W002",
            )
        )
    return warnings


@register(Tags.database)
def audit_journal_role(
    app_configs: Any = None, databases: Any = None, **kwargs: Any
) -> list[Warning]:
    """``check --database default``: the connected role must not be able to rewrite the journal."""
    if not databases or "default" not in databases:
        return []
    if connections["default"].vendor != "postgresql":
        return []
    return [Warning(text, id="audit.W003") for text in dbroles.journal_role_warnings()]
