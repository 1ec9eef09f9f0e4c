"""`manage.py verify_audit`: prove the audit journal intact, or name the first fault."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError

from audit import dbroles, journal


class Command(BaseCommand):
    help = (
        "Vérifie le journal d'audit : chaîne signée (AUDIT_KEYS), points de contrôle, "
        "et concordance avec l'ancrage externe (AUDIT_ANCHOR_FILE)."
    )

    def handle(self, *args: Any, **options: Any) -> None:
        result = journal.verify()
        for warning in [*result.warnings, *dbroles.journal_role_warnings()]:
            self.stderr.write(f"Attention : {warning}.")
        for at, reason in result.anchors.restarts[-3:] if result.anchors else []:
            self.stderr.write(f"Attention : ancrage repris le {at} : {reason}.")
        if result.broken is not None:
            where = (
                f"à la ligne {result.broken.event_id} "
                if result.broken.event_id is not None
                else ""
            )
            raise CommandError(f"Journal d'audit altéré {where}: {result.broken.reason}.")
        anchors = result.anchors
        if anchors is not None and anchors.newest is not None:
            anchored = (
                f" Ancrage externe : {anchors.lines} ligne(s), la dernière du "
                f"{anchors.newest.at} (ligne {anchors.newest.last_id}) concorde."
            )
        else:
            anchored = ""
        if anchors is not None and anchors.skipped:
            self.stderr.write(
                "Attention : ligne(s) illisible(s) ignorée(s) dans le fichier d'ancrage "
                f"(écriture interrompue ?) : {', '.join(map(str, anchors.skipped[:10]))}."
            )
        unkeyed = (
            f" dont {result.unkeyed} antérieur(s) aux clés (scellés)" if result.unkeyed else ""
        )
        self.stdout.write(
            f"Journal d'audit intact : {result.count} événement(s){unkeyed}, "
            f"dernière ligne {result.last_id or '-'}, empreinte {result.last_hash}.{anchored}"
        )
