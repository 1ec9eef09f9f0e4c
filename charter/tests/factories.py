"""Factories for the charter's tests: a message received in a mailbox."""

from __future__ import annotations

import itertools
import uuid

from django.utils import timezone

from mailboxes.models import Entry, Folder, Mailbox, Message

_seq = itertools.count(1)


def received_message(
    recipient: Mailbox, *, sender: Mailbox | None = None, from_addr: str = ""
) -> Message:
    """A message from ``sender`` (or from another operator) sitting in ``recipient``'s inbox."""
    n = next(_seq)
    message = Message.objects.create(
        message_id=f"<{uuid.uuid4()}@test>",
        thread_key=f"t{n}",
        sender_mailbox=sender,
        submitted_by=sender.owner if sender else None,
        from_addr=sender.address if sender else (from_addr or "pub@autre-operateur.mssante.fr"),
        to_addrs=[recipient.address],
        subject=f"Offre exceptionnelle {n}",
        date=timezone.now(),
        size=1234,
        blob_name=f"test/{uuid.uuid4()}",
        key_id="k1",
        wrapped_key=b"\x00" * 40,
    )
    inbox = Folder.objects.get(mailbox=recipient, role=Folder.Role.INBOX)
    Entry.objects.create(mailbox=recipient, message=message, folder=inbox)
    return message
