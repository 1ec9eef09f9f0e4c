"""`manage.py anchor_audit`: anchor the audit journal's head outside the database now."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError

from charter import audit


class Command(BaseCommand):
    help = (
        "Ajoute au fichier d'ancrage (AUDIT_ANCHOR_FILE) une ligne signée attestant la fin "
        "du journal d'audit, après avoir vérifié les lignes ajoutées depuis la précédente."
    )

    def handle(self, *args: Any, **options: Any) -> None:
        try:
            line = audit.anchor()
        except audit.AuditIntegrityError as exc:
            raise CommandError(f"Journal d'audit altéré, ancrage refusé : {exc}.") from exc
        if line is None:
            raise CommandError("AUDIT_ANCHOR_FILE est vide : l'ancrage est désactivé.")
        self.stdout.write(
            f"Ancrage n°{line['n']} : ligne {line['last_id']}, empreinte {line['head']}, "
            f"{line['events']} événement(s) depuis l'origine."
        )
