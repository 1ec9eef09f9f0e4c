"""Create an API token for one mailbox and print it (the only time it is shown)."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError
from django.utils import timezone

from mailboxes import services
from mailboxes.models import Mailbox


class Command(BaseCommand):
    help = (
        "Crée un jeton d'API pour une boîte et l'affiche une seule fois "
        "(seule son empreinte SHA-256 est conservée)."
    )

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("--mailbox", required=True, help="Adresse de la boîte.")
        parser.add_argument(
            "--expires",
            type=int,
            default=None,
            metavar="DAYS",
            help="Validité en jours (défaut : API_TOKEN_DAYS).",
        )
        parser.add_argument("--label", default="", help="Libellé (logiciel, site…).")

    def handle(self, *args: Any, **options: Any) -> None:
        address = options["mailbox"].strip().lower()
        mailbox = Mailbox.objects.filter(address=address).first()
        if mailbox is None:
            raise CommandError(f"Aucune boîte aux lettres à l'adresse « {address} ».")
        days = options["expires"] if options["expires"] is not None else settings.API_TOKEN_DAYS
        if days < 1:
            raise CommandError("--expires : au moins 1 jour.")
        try:
            token, raw = services.create_api_token(
                mailbox,
                by=None,
                label=options["label"] or "ligne de commande",
                expires_at=timezone.now() + timedelta(days=days),
            )
        except services.TokenError as exc:
            raise CommandError(str(exc)) from None
        self.stderr.write(
            f"Jeton créé pour {mailbox.address}, valable jusqu'au "
            f"{timezone.localtime(token.expires_at):%d/%m/%Y %H:%M} (préfixe {token.prefix}). "
            "Il ne sera plus jamais affiché : conservez-le maintenant."
        )
        self.stdout.write(raw)
