"""`manage.py anchor_audit`: anchor the audit journal's head outside the database now."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from audit import journal


class Command(BaseCommand):
    help = (
        "Ajoute au fichier d'ancrage (AUDIT_ANCHOR_FILE) une ligne signée attestant la fin "
        "du journal d'audit, après avoir vérifié les lignes ajoutées depuis la précédente."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--restart",
            metavar="MOTIF",
            default="",
            help=(
                "Reprend l'ancrage sans comparer aux lignes précédentes, après une "
                "restauration de la base (motif journalisé et écrit dans le fichier). La "
                "chaîne doit rester cohérente."
            ),
        )

    def handle(self, *args: Any, **options: Any) -> None:
        try:
            if options["restart"].strip():
                line = journal.restart_anchoring(options["restart"])
            else:
                line = journal.anchor()
        except journal.AuditIntegrityError as exc:
            raise CommandError(f"Journal d'audit altéré, ancrage refusé : {exc}.") from exc
        if line is None:
            raise CommandError("AUDIT_ANCHOR_FILE est vide : l'ancrage est désactivé.")
        self.stdout.write(
            f"Ancrage n°{line['n']} : ligne {line['last_id']}, empreinte {line['head']}, "
            f"{line['events']} événement(s) depuis l'origine."
        )
