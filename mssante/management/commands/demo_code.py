from typing import Any

from django.core.management.base import BaseCommand, CommandError
from django_otp.oath import totp

from mssante import demo


class Command(BaseCommand):
    help = "Affiche le code à usage unique courant d'un compte de démonstration."

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("identifier")

    def handle(self, *args: Any, **options: Any) -> None:
        for account in demo.ACCOUNTS:
            if account.identifier == options["identifier"] or account.key == options["identifier"]:
                self.stdout.write(f"{totp(bytes.fromhex(account.totp_hex)):06d}")
                return
        raise CommandError("Ce n'est pas un compte de démonstration.")
