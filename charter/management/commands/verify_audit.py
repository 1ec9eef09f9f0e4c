"""`manage.py verify_audit`: prove the audit journal intact, or name the first bad row."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError

from charter import audit


class Command(BaseCommand):
    help = "Vérifie la chaîne d'empreintes du journal d'audit."

    def handle(self, *args: Any, **options: Any) -> None:
        broken = audit.verify_chain()
        if broken is not None:
            raise CommandError(
                f"Journal d'audit altéré à la ligne {broken.event_id} : {broken.reason}."
            )
        head = audit.chain_head()
        # The head hash is printed so it can be kept outside the database: only an
        # external copy reveals that the newest rows were removed.
        self.stdout.write(
            f"Journal d'audit intact : {head.count} événement(s), "
            f"dernière ligne {head.last_id or '-'}, empreinte {head.last_hash}."
        )
