"""python manage.py sync_directory_mailboxes — republish all our mailboxes in the directory."""

from typing import Any

from django.core.management.base import BaseCommand

from mailboxes import services


class Command(BaseCommand):
    help = "Publie (ou retire) toutes nos boîtes dans l'annuaire, d'après leur état actuel."

    def handle(self, *args: Any, **options: Any) -> None:
        published, withdrawn = services.resync_directory()
        self.stdout.write(f"{published} boîtes publiées, {withdrawn} retirées ou non publiables.")
