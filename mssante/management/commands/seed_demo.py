import contextlib
import io
import json
import logging
from typing import Any

from django.core.management.base import BaseCommand

from mssante import demo, demo_family, demo_mail


class Command(BaseCommand):
    help = (
        "Crée (ou remet dans son état initial) l'espace de confiance de démonstration, "
        "et y envoie le courrier de démonstration (une seule fois)."
    )

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("--json", action="store_true", help="Affiche les comptes en JSON.")
        parser.add_argument(
            "--sans-courrier",
            action="store_true",
            dest="no_mail",
            help="Crée les comptes et les boîtes sans y envoyer de courrier.",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        accounts = demo.seed()
        outcome = demo_mail.Outcome(0, []) if options["no_mail"] else self.populate(accounts)
        demo_family.seed(accounts, mail=not options["no_mail"])  # Léo, Marie's son (issue 17)
        for reason in outcome.refused:
            self.stderr.write(f"Message de démonstration non envoyé : {reason}")
        if options["json"]:
            self.stdout.write(json.dumps(accounts, ensure_ascii=False, indent=2))
            return
        self.stdout.write(self.style.SUCCESS("Espace de démonstration prêt. Comptes :"))
        if outcome.sent:
            self.stdout.write(f"  ({outcome.sent} messages de démonstration envoyés)")
        for a in accounts:
            self.stdout.write(
                f"  {a['name']:<18} ({a['kind']}) identifiant {a['identifier']:<16} "
                f"mot de passe {a['password']:<22} clé TOTP {a['totp_secret']}"
            )
        self.stdout.write(
            "Le code à usage unique se calcule avec la clé TOTP dans une application "
            "d'authentification, ou : python manage.py demo_code <identifiant>"
        )

    @staticmethod
    def populate(accounts: list[dict[str, Any]]) -> demo_mail.Outcome:
        """The demo's mail, quietly: the tasks' log lines and the e-mail the console backend
        prints (the patient's content-free notification) would bury the logins."""
        logging.disable(logging.INFO)
        try:
            with contextlib.redirect_stdout(io.StringIO()):
                return demo_mail.populate(accounts)
        finally:
            logging.disable(logging.NOTSET)
