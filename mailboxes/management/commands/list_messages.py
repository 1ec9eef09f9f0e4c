"""List the messages of a mailbox folder, for operators and scripts."""

from __future__ import annotations

import json
from typing import Any

from django.core.management.base import BaseCommand, CommandError

from mailboxes import selectors
from mailboxes.models import Entry, Folder, Mailbox


class Command(BaseCommand):
    help = "Liste les messages d'un dossier d'une boîte (le plus récent d'abord)."

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("address", help="Adresse de la boîte.")
        parser.add_argument(
            "--folder", default="inbox", help="Rôle (inbox, sent, trash…) ou nom du dossier."
        )
        parser.add_argument("--limit", type=int, default=0, help="Nombre maximum (0 : tous).")
        parser.add_argument("--json", action="store_true", help="Sortie JSON.")

    def handle(self, *args: Any, **options: Any) -> None:
        mailbox = Mailbox.objects.filter(address=options["address"].strip().lower()).first()
        if mailbox is None:
            raise CommandError(f"Aucune boîte aux lettres à l'adresse « {options['address']} ».")
        name = options["folder"]
        folder = Folder.objects.filter(mailbox=mailbox, role=name).exclude(
            role=Folder.Role.CUSTOM
        ).first() or selectors.folder_by_name(mailbox, name)
        if folder is None:
            raise CommandError(f"Aucun dossier « {name} » dans {mailbox.address}.")
        entries = (
            Entry.objects.filter(folder=folder)
            .select_related("message")
            .order_by("-received_at", "-id")
        )
        if options["limit"] > 0:
            entries = entries[: options["limit"]]
        rows = [
            {
                "id": str(e.message.public_id),
                "message_id": e.message.message_id,
                "from": e.message.from_addr,
                "from_name": e.message.from_name,
                "to": e.message.to_addrs,
                "cc": e.message.cc_addrs,
                "subject": e.message.subject,
                "date": e.message.date.isoformat(),
                "received_at": e.received_at.isoformat(),
                "size": e.message.size,
                "flags": {"seen": e.seen, "flagged": e.flagged, "answered": e.answered},
                "attachments": [
                    {
                        "filename": a.get("filename"),
                        "size": a.get("size"),
                        "content_type": a.get("content_type"),
                    }
                    for a in e.message.attachments
                ],
            }
            for e in entries
        ]
        if options["json"]:
            self.stdout.write(json.dumps(rows, ensure_ascii=False, indent=2))
            return
        for r in rows:
            mark = " " if r["flags"]["seen"] else "*"
            clip = " 📎" if r["attachments"] else ""
            self.stdout.write(f"{mark} {r['date'][:16]}  {r['from']:<40} {r['subject']}{clip}")
        self.stdout.write(f"{len(rows)} message(s) dans {folder.name}.")
