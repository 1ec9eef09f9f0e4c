"""Read receipts (RFC 8098 MDN) going out, and delivery or read reports coming back.

- ``send_read_receipts(delivery_ids)``: when a recipient first opens a message
  that asks for one (``Disposition-Notification-To``), an MDN "displayed" leaves
  from the recipient's mailbox to that address, locally or over SMTP, through the
  normal pipeline. Reports never ask for reports, and none is sent for a report.
- ``apply_report(message, raw)``: an incoming MDN or DSN (``multipart/report``) is
  matched to the original by its Message-ID and recipient, and updates that
  recipient's delivery: read, delivered, or bounced with the reason. A report
  only speaks for recipients of its own sender's domain.

Building and reading the reports is ``mssante.lib.reports``; the human part of an MDN
is written in the language the original's sender wrote in when they are ours, else in
French (the trust space's common language).
"""

from __future__ import annotations

import logging
from dataclasses import replace
from typing import Any

from django.conf import settings
from django.db import transaction
from django.utils import timezone, translation
from django.utils.translation import gettext as _

from audit import journal
from mailboxes import addresses, reasons
from mailboxes.models import Delivery, HostedDomain, Mailbox, Message
from mailboxes.selectors import Access
from mailboxes.services.messages import parse
from mailboxes.services.peer import Peer
from mailboxes.services.rights import authorise
from mailboxes.services.store import Listing, Recipient, store_message
from mailboxes.transport.wording import report_language, when
from mssante.lib import crypto, mime, reports
from trust import listeblanche

log = logging.getLogger(__name__)


def build_mdn(
    message: Message,
    parsed: mime.ParsedMessage,
    recipient: str,
    to: str,
    *,
    manual: bool = False,
) -> bytes:
    """The raw MDN "displayed" from ``recipient`` for ``message`` (RFC 8098).

    ``manual``: the reader chose to send it (preference "sur demande"), else automatic.
    Raises ValueError when ``to`` or the original's Message-ID cannot be written.
    """
    now = timezone.now()
    with translation.override(report_language(message)):
        values = {
            "subject": message.subject or _("(sans objet)"),
            "recipient": recipient,
            "when": when(now),
        }
        text = (
            _("Le message « %(subject)s » adressé à %(recipient)s a été ouvert %(when)s.") % values
            + "\n\n"
            + _("Cet accusé de lecture ne garantit pas que le message a été lu ni compris.")
        )
        subject = _("Accusé de lecture : %(subject)s") % values
    return reports.build_mdn(
        from_addr=recipient,
        to=to,
        subject=subject,
        text=text,
        reporting_ua=f"{settings.SMTP_HOSTNAME}; {settings.MSS_NIL}",
        final_recipient=recipient,
        original_message_id=message.message_id,
        date=now,
        sent_manually=manual,
    )


def _store_outgoing(mailbox: Mailbox, raw: bytes, to: str) -> Message | None:
    """Store a report leaving ``mailbox`` for ``to`` and enqueue its pipeline (no Sent entry)."""
    domain = addresses.domain_of(to)
    box = Mailbox.objects.filter(address=to, status=Mailbox.Status.ACTIVE).first()
    hosted = HostedDomain.objects.filter(name=domain, active=True).exists()
    if hosted and box is None:
        return None
    if not hosted and not listeblanche.is_listed(domain):
        return None  # outside the trust space: no receipt
    return store_message(
        raw,
        # The report's parts are not attachments to show.
        replace(Listing.of(mime.parse_message(raw)), attachments=()),
        origin=Message.Origin.SYSTEM,
        recipients=[Recipient(to, box if hosted else None, remote=not hosted)],
        sender_mailbox=mailbox,
        # RFC 8098 §2.1: an MDN leaves with MAIL FROM:<>, so that no report of any
        # kind answers it.
        null_return_path=True,
        event="message.mdn_sent",
        details={"mailbox": mailbox.address},
    )


def send_read_receipts(delivery_ids: list[int], *, ask: bool = False, manual: bool = False) -> int:
    """Send an MDN for each newly read delivery whose message asked for one; return how many.

    ``ask``: the reader answers receipts "sur demande": nothing leaves, the deliveries
    that asked for one wait for the reader's decision (``decide_receipts``).
    """
    sent = 0
    for delivery in (
        Delivery.objects.filter(
            pk__in=delivery_ids,
            remote=False,
            read_at__isnull=False,
            receipt__in=(Delivery.Receipt.NONE, Delivery.Receipt.ASKED),
        )
        .select_related("message", "message__sender_mailbox", "mailbox")
        .order_by("pk")
    ):
        message, box = delivery.message, delivery.mailbox
        if box is None or message.sender_mailbox_id == box.pk:
            continue
        try:
            parsed = parse(message)
        except crypto.BlobIntegrityError:
            log.warning("message %s unreadable: no read receipt", message.pk)
            continue
        to = parsed.disposition_notification_to
        if not to or message.origin == Message.Origin.SYSTEM:
            continue
        try:
            to = addresses.normalise(to)
        except addresses.AddressError:
            continue
        if ask:
            delivery.receipt = Delivery.Receipt.ASKED
            delivery.save(update_fields=["receipt", "updated_at"])
            continue
        if _held_here(message, to):
            # The box that asked holds the original: its timeline reads this delivery's
            # read_at (shown as "Lu" now that the receipt is sent). A receipt message in its
            # inbox would say the same thing again, unread: none is stored (decisions.md).
            delivery.receipt = Delivery.Receipt.SENT
            delivery.save(update_fields=["receipt", "updated_at"])
            journal.record("message.mdn_recorded", obj=message, recipient=box.address, mailbox=to)
            sent += 1
            continue
        try:
            raw = build_mdn(message, parsed, box.address, to, manual=manual)
        except ValueError:
            # An address or a Message-ID (the peer's) no report can carry.
            log.warning("message %s: no read receipt can be written for it", message.pk)
            continue
        if _store_outgoing(box, raw, to) is not None:
            sent += 1
        delivery.receipt = Delivery.Receipt.SENT
        delivery.save(update_fields=["receipt", "updated_at"])
    return sent


def _held_here(message: Message, to: str) -> bool:
    """Whether ``to`` is the box of ours that sent ``message`` (it holds it, with its timeline)."""
    box = message.sender_mailbox
    return box is not None and box.address.lower() == to.lower() and box.is_active


def pending_receipts(entry: object) -> list[int]:
    """Deliveries of this entry's message to its mailbox whose receipt awaits the reader."""
    return list(
        Delivery.objects.filter(
            message_id=entry.message_id,  # type: ignore[attr-defined]
            mailbox_id=entry.mailbox_id,  # type: ignore[attr-defined]
            receipt=Delivery.Receipt.ASKED,
        ).values_list("pk", flat=True)
    )


def decide_receipts(entry: Any, *, send: bool, by: Any) -> int:
    """The reader's answer to "L'expéditeur demande un accusé de lecture"; return MDNs sent.

    The answer is the box's (a receipt leaves from its address, or is refused for good):
    it needs the send right, like any message leaving the box.
    """
    authorise(by, entry.mailbox, Access.SEND)
    pending = pending_receipts(entry)
    if not pending:
        return 0
    if send:
        return send_read_receipts(pending, manual=True)
    Delivery.objects.filter(pk__in=pending).update(
        receipt=Delivery.Receipt.DECLINED, updated_at=timezone.now()
    )
    return 0


# --------------------------------------------------------------------------- incoming


def apply_report(report: Message, raw: bytes, peer: Peer | None = None) -> int:
    """Update the original's deliveries from an incoming MDN or DSN; return how many changed.

    A report speaks for a recipient only when both its From: and the operator that
    delivered it (``peer``, its certificate) are of that recipient's domain: the From:
    alone is whatever the peer wrote.
    """
    if peer is None:
        return 0
    parsed = reports.parse_report(raw)  # within mime.LIMITS, like every message read
    if parsed is None or not parsed.original_message_id:
        return 0
    report_domain = addresses.domain_of(report.from_addr)
    original = (
        Message.objects.filter(message_id=parsed.original_message_id, sender_mailbox__isnull=False)
        .order_by("-pk")
        .first()
    )
    if original is None:
        return 0
    now = timezone.now()
    at = parsed.date if parsed.date is not None and parsed.date <= now else now
    changed = 0
    vouched = False
    for said in parsed.recipients:
        if addresses.domain_of(said.recipient) != report_domain:
            # A report speaks only for its own domain's recipients…
            continue
        if not listeblanche.peer_allowed(report_domain, peer.subject):
            # …and only when it came from an operator listed for that domain.
            continue
        delivery = Delivery.objects.filter(message=original, recipient=said.recipient).first()
        if delivery is None:
            continue
        vouched = True
        if parsed.kind == reports.DISPOSITION_NOTIFICATION:
            kind = "mdn"
            if said.disposition == "displayed" and delivery.read_at is None:
                delivery.read_at = at
            elif delivery.delivered_at is None and said.disposition == "processed":
                delivery.delivered_at = at
            else:
                continue
        else:
            kind = "dsn"
            if said.action == "failed":
                delivery.status = Delivery.Status.BOUNCED
                # The peer's words, quoted as they came (one line, bounded).
                diagnostic = (said.diagnostic or said.status)[:1000]
                delivery.set_reason(
                    reasons.Reason(
                        reasons.REPORTED_FAILURE,
                        {"domain": report_domain, "diagnostic": diagnostic},
                    )
                )
            elif said.action in ("delivered", "relayed", "expanded"):
                delivery.delivered_at = delivery.delivered_at or at
            else:
                continue
        delivery.save(
            update_fields=[
                "read_at",
                "delivered_at",
                "status",
                "reason",
                "reason_params",
                "updated_at",
            ]
        )
        journal.record(
            f"message.report_{kind}", obj=original, recipient=said.recipient, report=report.pk
        )
        changed += 1
    if vouched and parsed.kind == reports.DISPOSITION_NOTIFICATION:
        # A read receipt from a peer about a message of ours: the original's timeline shows
        # it; the receipt itself is kept (what the peer said) but filed read, out of the
        # inbox, by the delivery (services.pipeline).
        Message.objects.filter(pk=report.pk).update(receipt_of=original)
        report.receipt_of = original
    return changed


def first_reads(entry: object) -> list[int]:
    """Deliveries of this entry's message to its mailbox not read yet (before marking it seen)."""
    return list(
        Delivery.objects.filter(
            message_id=entry.message_id,  # type: ignore[attr-defined]
            mailbox_id=entry.mailbox_id,  # type: ignore[attr-defined]
            read_at__isnull=True,
            remote=False,
        ).values_list("pk", flat=True)
    )


def send_on_commit(delivery_ids: list[int]) -> None:
    """Send the read receipts of these first reads once the reading is committed."""
    if delivery_ids:
        transaction.on_commit(lambda: send_read_receipts(delivery_ids))
