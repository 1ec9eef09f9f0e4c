import json
from typing import Any

from django.core.management.base import BaseCommand

from mssante import demo


class Command(BaseCommand):
    help = "Crée (ou remet dans son état initial) l'espace de confiance de démonstration."

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("--json", action="store_true", help="Affiche les comptes en JSON.")

    def handle(self, *args: Any, **options: Any) -> None:
        accounts = demo.seed()
        if options["json"]:
            self.stdout.write(json.dumps(accounts, ensure_ascii=False, indent=2))
            return
        self.stdout.write(self.style.SUCCESS("Espace de démonstration prêt. Comptes :"))
        for a in accounts:
            self.stdout.write(
                f"  {a['name']:<18} ({a['kind']}) identifiant {a['identifier']:<16} "
                f"mot de passe {a['password']:<22} clé TOTP {a['totp_secret']}"
            )
        self.stdout.write(
            "Le code à usage unique se calcule avec la clé TOTP dans une application "
            "d'authentification, ou : python manage.py demo_code <identifiant>"
        )
