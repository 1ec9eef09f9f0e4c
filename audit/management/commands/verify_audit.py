"""`manage.py verify_audit`: prove the audit journal intact, or name the first fault."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError

from audit import dbroles, journal


class Command(BaseCommand):
    help = (
        "Scelle les événements des transactions terminées, puis vérifie le journal d'audit : "
        "signature de chaque événement et de chaque scellement (AUDIT_KEYS), points de "
        "contrôle, et concordance avec l'ancrage externe (AUDIT_ANCHOR_FILE)."
    )

    def handle(self, *args: Any, **options: Any) -> None:
        result = journal.verify()
        for warning in [*result.warnings, *dbroles.journal_role_warnings()]:
            self.stderr.write(f"Attention : {warning}.")
        for at, reason in result.anchors.restarts[-3:] if result.anchors else []:
            self.stderr.write(f"Attention : ancrage repris le {at} : {reason}.")
        broken = result.broken
        if broken is not None:
            if broken.event_id is not None:
                where = f"à la ligne {broken.event_id} "
            elif broken.seal_id is not None:
                where = f"au scellement n°{broken.seal_id} "
            else:
                where = ""
            raise CommandError(f"Journal d'audit altéré {where}: {broken.reason}.")
        anchors = result.anchors
        anchored = ""
        if anchors is not None and anchors.newest is not None:
            newest = anchors.newest
            what = (
                f"scellement n°{newest.last_id}"
                if newest.version > 1
                else f"ligne {newest.last_id}"
            )
            anchored = (
                f" Ancrage externe : {anchors.lines} ligne(s), la dernière du "
                f"{newest.at} ({what}) concorde."
            )
        if anchors is not None and anchors.skipped:
            self.stderr.write(
                "Attention : ligne(s) illisible(s) ignorée(s) dans le fichier d'ancrage "
                f"(écriture interrompue ?) : {', '.join(map(str, anchors.skipped[:10]))}."
            )
        details = []
        if result.chained:
            unkeyed = f", dont {result.unkeyed} antérieur(s) aux clés" if result.unkeyed else ""
            details.append(f"{result.chained} de l'ancienne chaîne{unkeyed}")
        if result.unsealed:
            details.append(
                f"{result.unsealed} pas encore scellé(s) (transactions en cours lors du scellement)"
            )
        detail = f" ({' ; '.join(details)})" if details else ""
        seal = result.last_seal
        sealed = (
            f"dernier scellement n°{seal.pk}, signature {seal.mac}"
            if seal is not None
            else "aucun scellement"
        )
        self.stdout.write(
            f"Journal d'audit intact : {result.count} événement(s){detail}, {sealed}.{anchored}"
        )
