"""Check the folder counters the database keeps against a real count, and repair drifts."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError

from mailboxes import dbtriggers, services
from mailboxes.models import Mailbox


class Command(BaseCommand):
    help = (
        "Recompte les messages (total, non lus) de chaque dossier, signale tout écart avec "
        "les compteurs tenus par la base et le corrige (sauf --verifier). Vérifie aussi que "
        "les déclencheurs qui tiennent les compteurs sont en place."
    )

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument(
            "--verifier",
            action="store_true",
            help="Signaler seulement, sans corriger (code de sortie 1 en cas d'écart).",
        )
        parser.add_argument("--boite", help="Adresse d'une seule boîte à recompter.")

    def handle(self, *args: Any, **options: Any) -> None:
        check_only = options["verifier"]
        missing = dbtriggers.missing()
        for name in missing:
            self.stderr.write(f"Déclencheur absent : {name} (compteurs et recherche non tenus)")
        boxes = None
        if options["boite"]:
            address = options["boite"].strip().lower()
            boxes = list(Mailbox.objects.filter(address=address))
            if not boxes:
                raise CommandError(f"Aucune boîte aux lettres à l'adresse « {address} ».")
        drifts = 0
        for drift in services.recount_folders(boxes, fix=not check_only):
            drifts += 1
            stored = "aucun" if drift.stored is None else "{}/{}".format(*drift.stored)
            self.stdout.write(
                f"{drift.mailbox} « {drift.folder} » (dossier {drift.folder_id}) : "
                f"compteur {stored}, compté {drift.counted[0]}/{drift.counted[1]} "
                "(total/non lus)" + ("" if check_only else " — corrigé")
            )
        self.stdout.write(f"{drifts} écart(s) trouvé(s).")
        if missing or (check_only and drifts):
            raise CommandError("Compteurs des dossiers : à corriger (voir ci-dessus).")
