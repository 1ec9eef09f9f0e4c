"""Messages the platform itself writes into one of our boxes (the quarantine notice…).

Moved unchanged from ``charter.quarantine`` (issue 12): storing a message is being
made one function (``store_message``); this is today's code until then.
"""

from __future__ import annotations

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from charter import audit
from mailboxes import blobs
from mailboxes.models import Delivery, Entry, Folder, Mailbox, Message
from mailboxes.services.mailbox import system_folder_id
from mssante.lib import mime


def notice_from(mailbox: Mailbox) -> str:
    """The system address notices come from: CHARTER_NOTICE_FROM, or one in the box's domain."""
    return settings.CHARTER_NOTICE_FROM or f"ne-pas-repondre@{mailbox.domain.name}"


def deliver_system_notice(mailbox: Mailbox, *, subject: str, text: str) -> Message:
    """Store a message from the platform straight into ``mailbox``'s inbox."""
    now = timezone.now()
    sender = notice_from(mailbox)
    outgoing = mime.OutgoingMessage(
        from_addr=sender,
        from_name=settings.OPERATOR_NAME,
        to=[mailbox.address],
        subject=subject,
        text=text,
        extra_headers={"Auto-Submitted": "auto-generated"},
    )
    message_id, raw = mime.build_message(outgoing, domain=mailbox.domain.name, now=now)
    blob_name = blobs.new_name("messages")
    sealed = blobs.write(blob_name, raw)
    try:
        with transaction.atomic():
            notice = Message.objects.create(
                message_id=message_id,
                thread_key=mime.thread_key(message_id, None, None),
                from_addr=sender,
                from_name=settings.OPERATOR_NAME,
                to_addrs=[mailbox.address],
                subject=subject[:998],
                date=now,
                size=len(raw),
                origin=Message.Origin.SYSTEM,
                # Written here by the platform, not received: nothing to scan, and
                # never called "sain" for all that.
                scan_status=Message.ScanStatus.NOT_SCANNED,
                blob_name=blob_name,
                key_id=sealed.key_id,
                wrapped_key=sealed.wrapped_key,
                created_at=now,
            )
            Delivery.objects.create(
                message=notice,
                recipient=mailbox.address,
                mailbox=mailbox,
                status=Delivery.Status.DELIVERED,
                attempts=1,
                delivered_at=now,
            )
            Entry.objects.create(
                mailbox=mailbox,
                message=notice,
                folder_id=system_folder_id(mailbox.pk, Folder.Role.INBOX),
                received_at=now,
            )
            audit.record("message.notice", obj=notice, mailbox=mailbox.address)
    except BaseException:
        blobs.delete(blob_name)
        raise
    return notice
