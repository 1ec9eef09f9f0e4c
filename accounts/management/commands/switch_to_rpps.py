from typing import Any

from django.core.management.base import BaseCommand, CommandError

from accounts import services
from accounts.models import ProfessionalIdentity


class Command(BaseCommand):
    help = (
        "Passe un professionnel de son numéro Adeli à son numéro RPPS (même compte, mêmes boîtes)."
    )

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("adeli")
        parser.add_argument("rpps")

    def handle(self, *args: Any, **options: Any) -> None:
        identity = ProfessionalIdentity.objects.filter(
            id_type="adeli", id_number=options["adeli"].strip()
        ).first()
        if identity is None:
            raise CommandError(
                f"Aucun professionnel n'est identifié par le numéro Adeli {options['adeli']}."
            )
        try:
            former = services.switch_to_rpps(identity, options["rpps"], by=None)
        except services.AccountError as exc:
            raise CommandError(str(exc)) from None
        self.stdout.write(
            self.style.SUCCESS(
                f"RPPS {identity.id_number} enregistré ; Adeli {former.adeli} accepté à la connexion "
                f"jusqu'au {former.accepted_until:%d/%m/%Y}."
            )
        )
