"""`manage.py anchor_audit`: seal, then anchor the audit journal's newest seal outside the database now."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from audit import journal


class Command(BaseCommand):
    help = (
        "Scelle les événements des transactions terminées, puis ajoute au fichier d'ancrage "
        "(AUDIT_ANCHOR_FILE) une ligne signée attestant le dernier scellement du journal "
        "d'audit, après avoir vérifié ce qui a été scellé depuis la précédente."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--restart",
            metavar="MOTIF",
            default="",
            help=(
                "Reprend l'ancrage sans comparer aux lignes précédentes, après une "
                "restauration de la base (motif journalisé et écrit dans le fichier). Le "
                "journal doit rester cohérent."
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
            f"Ancrage n°{line['n']} : scellement n°{line['seal']}, signature {line['head']}, "
            f"{line['events']} événement(s) scellé(s) depuis l'origine des scellements."
        )
