from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from accounts import services
from accounts.identity import resolve
from mssante.lib.identifiers import IdentifierError


class Command(BaseCommand):
    help = "Émet un lien d'activation à usage unique (72 h) pour un compte."

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("identifier", help="RPPS, Adeli, INS ou identifiant de l'équipe")

    def handle(self, *args: Any, **options: Any) -> None:
        try:
            found = resolve(options["identifier"])
        except IdentifierError as exc:
            raise CommandError(str(exc)) from None
        if found is None:
            raise CommandError("Aucun compte ne correspond à cet identifiant.")
        try:
            path = services.issue_activation_link(found.user, by=None)
        except services.AccountError as exc:
            raise CommandError(str(exc)) from None
        self.stdout.write(settings.SITE_URL + path)
