"""Submit a message from the command line, through the same service as the web compose."""

from __future__ import annotations

import mimetypes
from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError

from mailboxes import services
from mailboxes.models import Mailbox, Message
from mssante.lib import mime


class Command(BaseCommand):
    help = "Envoie un message depuis une boîte hébergée (mêmes contrôles que le webmail)."

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument(
            "--from", dest="sender", required=True, help="Adresse de la boîte expéditrice."
        )
        parser.add_argument("--to", action="append", default=[], help="Destinataire (répétable).")
        parser.add_argument("--cc", action="append", default=[], help="Copie (répétable).")
        parser.add_argument("--subject", default="", help="Objet.")
        parser.add_argument(
            "--body-file",
            required=True,
            help="Fichier texte (UTF-8) du corps ; « - » pour l'entrée standard.",
        )
        parser.add_argument(
            "--attach", action="append", default=[], help="Pièce jointe (répétable)."
        )

    def handle(self, *args: Any, **options: Any) -> None:
        mailbox = Mailbox.objects.filter(address=options["sender"].strip().lower()).first()
        if mailbox is None:
            raise CommandError(f"Aucune boîte aux lettres à l'adresse « {options['sender']} ».")
        author = mailbox.owner or mailbox.responsible
        body_file = options["body_file"]
        try:
            text = (
                self.stdin.read()  # type: ignore[attr-defined]
                if body_file == "-"
                else Path(body_file).read_text(encoding="utf-8")
            )
        except (OSError, UnicodeDecodeError) as exc:
            raise CommandError(f"Corps illisible ({body_file}) : {exc}") from None
        files = []
        for name in options["attach"]:
            path = Path(name)
            try:
                data = path.read_bytes()
            except OSError as exc:
                raise CommandError(f"Pièce jointe illisible ({name}) : {exc}") from None
            ctype = mimetypes.guess_type(path.name)[0] or "application/octet-stream"
            files.append(mime.Attachment(path.name, ctype, data))
        try:
            message = services.submit_message(
                mailbox=mailbox,
                author=author,
                to=options["to"],
                cc=options["cc"],
                subject=options["subject"],
                text=text,
                attachments=files,
                origin=Message.Origin.CLI,
            )
        except services.SubmissionError as exc:
            raise CommandError(str(exc)) from None
        self.stdout.write(f"{message.public_id} {message.message_id}")
