"""Create an API token for one mailbox and print it (the only time it is shown).

A nominative or organisational box needs its holder's agreement, recorded by the holder
in the webmail (Préférences, "Accès d'un logiciel à ma boîte"): without it the command
refuses and says so. The token gets the agreement's rights, or narrower ones (--scope).
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError
from django.utils import timezone

from mailboxes import services
from mailboxes.models import ApiScope, Mailbox


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
        parser.add_argument(
            "--scope",
            choices=ApiScope.values,
            default=None,
            help=(
                "Droits du jeton : read (lire, classer) ou send (aussi envoyer). Par défaut, "
                "ceux que le titulaire a accordés (send pour une boîte applicative)."
            ),
        )

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
                scope=options["scope"],
            )
        except services.TokenError as exc:
            raise CommandError(str(exc)) from None
        agreement = token.agreement
        if agreement is not None:
            self.stderr.write(
                f"Accord de {agreement.holder.get_full_name()} du "
                f"{timezone.localtime(agreement.granted_at):%d/%m/%Y %H:%M} "
                f"({agreement.software or 'logiciel non précisé'})."
            )
        self.stderr.write(
            f"Jeton créé pour {mailbox.address} ({token.get_scope_display()}), valable jusqu'au "
            f"{timezone.localtime(token.expires_at):%d/%m/%Y %H:%M} (préfixe {token.prefix}). "
            "Il ne sera plus jamais affiché : conservez-le maintenant."
        )
        self.stdout.write(raw)
