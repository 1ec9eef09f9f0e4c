"""Messages the platform itself writes into one of our boxes (the quarantine notice…).

They are stored like every other message, through ``store.store_message``, and
delivered by the pipeline.
"""

from __future__ import annotations

from django.conf import settings

from mailboxes.models import Mailbox, Message
from mailboxes.services import store
from mssante.lib import mime


def notice_from(mailbox: Mailbox) -> str:
    """The system address notices come from: CHARTER_NOTICE_FROM, or one in the box's domain."""
    return settings.CHARTER_NOTICE_FROM or f"ne-pas-repondre@{mailbox.domain.name}"


def deliver_system_notice(mailbox: Mailbox, *, subject: str, text: str) -> Message:
    """Store a message from the platform for ``mailbox``'s inbox (delivered by the pipeline)."""
    sender = notice_from(mailbox)
    outgoing = mime.OutgoingMessage(
        from_addr=sender,
        from_name=settings.OPERATOR_NAME,
        to=[mailbox.address],
        subject=subject,
        text=text,
        extra_headers={"Auto-Submitted": "auto-generated"},
    )
    message_id, raw = mime.build_message(outgoing, domain=mailbox.domain.name)
    return store.store_message(
        raw,
        store.Listing(
            message_id=message_id,
            thread_key=mime.thread_key(message_id, None, None),
            from_addr=sender,
            from_name=settings.OPERATOR_NAME,
            to_addrs=[mailbox.address],
            subject=subject,
        ),
        origin=Message.Origin.SYSTEM,
        recipients=[store.Recipient(mailbox.address, mailbox)],
        # Written here by the platform, not received: nothing to scan, and never
        # called "sain" for all that.
        scan=False,
        event="message.notice",
        details={"mailbox": mailbox.address},
    )
