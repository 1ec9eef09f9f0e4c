"""`manage.py import_liste_blanche FILE_OR_URL [--force]`: replace the liste blanche."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from trust import listeblanche
from trust.models import ListeBlancheImport


class Command(BaseCommand):
    help = "Importe la liste blanche MSSanté (fichier XML ou URL) et remplace la liste actuelle."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("source", help="Chemin du fichier XML ou URL https://")
        parser.add_argument(
            "--force",
            action="store_true",
            help="Importer malgré un fichier tronqué ou un trop grand nombre de domaines retirés.",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        run = listeblanche.import_liste_blanche(options["source"], force=options["force"])
        if run.result == ListeBlancheImport.Result.REFUSED:
            raise CommandError(f"Import refusé, liste actuelle conservée : {run.messages}")
        generated = f"{run.generated_at:%Y-%m-%d %H:%M:%S %Z}" if run.generated_at else "inconnue"
        self.stdout.write(
            f"Liste blanche importée (fichier généré le {generated}) : {run.entries} entrées, "
            f"{run.domains} domaines, {run.certificates} certificats, "
            f"{run.added} ajoutés, {run.removed} retirés."
        )
        for line in run.messages.splitlines():
            self.stdout.write(self.style.WARNING(f"Avertissement : {line}"))
