"""(Re)build the keyed search index of existing messages, their bodies decrypted."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError

from mailboxes import search
from mailboxes.models import Entry, Mailbox

_BATCH = 500


class Command(BaseCommand):
    help = (
        "Recalcule les jetons de recherche (HMAC des mots, sous la clé de chaque boîte "
        "dérivée de la clé maîtresse courante) des messages déjà stockés, en déchiffrant "
        "leur corps. À lancer après la migration qui introduit l'index (les messages "
        "antérieurs n'en ont pas), et après une rotation de la clé maîtresse, avant de "
        "retirer l'ancienne. Reprend là où il s'est arrêté : chaque lot est validé seul."
    )

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("--boite", help="Adresse d'une seule boîte à indexer.")
        parser.add_argument(
            "--manquants",
            action="store_true",
            help="Seulement les messages qui n'ont encore aucun jeton.",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        entries = Entry.objects.select_related("message").order_by("pk")
        if options["boite"]:
            address = options["boite"].strip().lower()
            box = Mailbox.objects.filter(address=address).first()
            if box is None:
                raise CommandError(f"Aucune boîte aux lettres à l'adresse « {address} ».")
            entries = entries.filter(mailbox=box)
        if options["manquants"]:
            entries = entries.filter(search_tokens=[])
        after = 0
        seen = changed = 0
        while True:
            batch = list(entries.filter(pk__gt=after)[:_BATCH])
            if not batch:
                break
            changed += search.reindex(batch)
            seen += len(batch)
            after = batch[-1].pk
        self.stdout.write(f"{seen} message(s) parcouru(s), {changed} index mis à jour.")
