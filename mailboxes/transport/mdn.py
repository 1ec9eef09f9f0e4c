"""Read receipts (RFC 8098 MDN) going out, and delivery or read reports coming back.

- ``send_read_receipts(delivery_ids)``: when a recipient first opens a message
  that asks for one (``Disposition-Notification-To``), an MDN "displayed" leaves
  from the recipient's mailbox to that address, locally or over SMTP, through the
  normal pipeline. Reports never ask for reports, and none is sent for a report.
- ``apply_report(message, raw)``: an incoming MDN or DSN (``multipart/report``) is
  matched to the original by its Message-ID and recipient, and updates that
  recipient's delivery: read, delivered, or bounced with the reason. A report
  only speaks for recipients of its own sender's domain.
"""

from __future__ import annotations

import base64
import logging
import uuid
from dataclasses import replace
from email.header import Header
from email.message import Message as EmailMessage
from email.utils import format_datetime, make_msgid, parsedate_to_datetime
from typing import TYPE_CHECKING, Any

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from audit import journal
from mailboxes import addresses
from mailboxes.models import Delivery, HostedDomain, Mailbox, Message
from mailboxes.selectors import Access
from mailboxes.services.rights import authorise
from mailboxes.services.store import Listing, Recipient, store_message
from mssante.lib import crypto, mime
from trust import listeblanche

if TYPE_CHECKING:
    from mailboxes.services.inbound import Peer

log = logging.getLogger(__name__)

REPORT_TYPES = ("disposition-notification", "delivery-status")


# How much of a report's returned headers (text/rfc822-headers) is read.
_RETURNED_HEADERS = 64 * 1024


def _is_report(raw: bytes) -> bool:
    head = raw.split(b"\r\n\r\n", 1)[0].split(b"\n\n", 1)[0].lower()
    return b"multipart/report" in head


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
    """
    now = timezone.now()
    domain = addresses.domain_of(recipient)
    boundary = f"=_mdn_{uuid.uuid4().hex}"
    opened = timezone.localtime(now).strftime("%d/%m/%Y à %H:%M")
    text = (
        f"Le message « {message.subject or '(sans objet)'} » adressé à {recipient} "
        f"a été ouvert le {opened}.\r\n\r\nCet accusé de lecture ne garantit pas que "
        "le message a été lu ni compris.\r\n"
    )
    subject = "Accusé de lecture : " + (message.subject or "(sans objet)")
    head = [
        f"From: <{recipient}>",
        f"To: <{to}>",
        "Subject: " + Header(subject, "utf-8").encode(maxlinelen=76, linesep="\r\n"),
        f"Date: {format_datetime(now)}",
        f"Message-ID: {make_msgid(domain=domain)}",
        f"In-Reply-To: {message.message_id}",
        f"References: {message.message_id}",
        "Auto-Submitted: auto-replied",
        "MIME-Version: 1.0",
        "Content-Type: multipart/report; report-type=disposition-notification; "
        f'boundary="{boundary}"',
    ]
    body = [
        f"--{boundary}",
        "Content-Type: text/plain; charset=utf-8",
        "Content-Transfer-Encoding: base64",
        "",
        "\r\n".join(base64.encodebytes(text.encode("utf-8")).decode("ascii").split()),
        f"--{boundary}",
        "Content-Type: message/disposition-notification",
        "",
        f"Reporting-UA: {settings.SMTP_HOSTNAME}; {settings.MSS_NIL}",
        f"Original-Recipient: rfc822;{recipient}",
        f"Final-Recipient: rfc822;{recipient}",
        f"Original-Message-ID: {message.message_id}",
        "Disposition: manual-action/MDN-sent-"
        + ("manually" if manual else "automatically")
        + "; displayed",
        "",
        f"--{boundary}--",
        "",
    ]
    return ("\r\n".join(head) + "\r\n\r\n" + "\r\n".join(body)).encode("ascii")


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
    from mailboxes.services.messages import parse

    sent = 0
    for delivery in (
        Delivery.objects.filter(
            pk__in=delivery_ids,
            remote=False,
            read_at__isnull=False,
            receipt__in=(Delivery.Receipt.NONE, Delivery.Receipt.ASKED),
        )
        .select_related("message", "mailbox")
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
        raw = build_mdn(message, parsed, box.address, to, manual=manual)
        if _store_outgoing(box, raw, to) is not None:
            sent += 1
        delivery.receipt = Delivery.Receipt.SENT
        delivery.save(update_fields=["receipt", "updated_at"])
    return sent


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


def _blocks(msg: EmailMessage, content_type: str) -> list[EmailMessage]:
    for part in msg.walk():
        if part.get_content_type() == content_type:
            payload = part.get_payload()
            if isinstance(payload, list):
                return [p for p in payload if isinstance(p, EmailMessage)]
    return []


def _rfc822(value: str | None) -> str:
    value = (value or "").strip()
    if ";" in value:
        value = value.split(";", 1)[1]
    return value.strip().strip("<>").lower()


def _original_id(msg: EmailMessage, per_message: EmailMessage | None) -> str:
    for candidate in (
        per_message.get("Original-Message-ID") if per_message is not None else None,
        per_message.get("Original-Envelope-Id") if per_message is not None else None,
        msg.get("In-Reply-To"),
    ):
        ids = mime._ids(str(candidate)) if candidate else []
        if ids:
            return ids[0]
    for part in msg.walk():
        if part.get_content_type() in ("text/rfc822-headers", "message/rfc822"):
            payload = part.get_payload(decode=False)
            text = payload if isinstance(payload, str) else str(payload[0] if payload else "")  # type: ignore[index]
            # The returned headers are the peer's bytes: parsed within bounds, and only their start.
            headers = mime.parse_tree(text[:_RETURNED_HEADERS].encode("utf-8", "surrogateescape"))
            ids = mime._ids(str(headers.get("Message-ID") or "")) if headers is not None else []
            if ids:
                return ids[0]
    return ""


def apply_report(report: Message, raw: bytes, peer: Peer | None = None) -> int:
    """Update the original's deliveries from an incoming MDN or DSN; return how many changed.

    A report speaks for a recipient only when both its From: and the operator that
    delivered it (``peer``, its certificate) are of that recipient's domain: the From:
    alone is whatever the peer wrote.
    """
    if peer is None or not _is_report(raw):
        return 0
    msg = mime.parse_tree(raw)  # within mime.LIMITS, like every message read
    if msg is None:
        return 0
    report_domain = addresses.domain_of(report.from_addr)
    changed = 0
    mdn = _blocks(msg, "message/disposition-notification")
    dsn = _blocks(msg, "message/delivery-status")
    if mdn:
        fields = mdn[0]
        entries = [(_rfc822(fields.get("Final-Recipient")), fields, "mdn")]
        original_id = _original_id(msg, fields)
    elif dsn:
        entries = [(_rfc822(block.get("Final-Recipient")), block, "dsn") for block in dsn[1:]]
        original_id = _original_id(msg, dsn[0])
    else:
        return 0
    original = (
        Message.objects.filter(message_id=original_id, sender_mailbox__isnull=False)
        .order_by("-pk")
        .first()
    )
    if original is None:
        return 0
    try:
        when = parsedate_to_datetime(str(msg.get("Date")))
    except (TypeError, ValueError):
        when = None
    now = timezone.now()
    if when is None or when.tzinfo is None or when > now:
        when = now
    for recipient, fields, kind in entries:
        if not recipient or addresses.domain_of(recipient) != report_domain:
            # A report speaks only for its own domain's recipients…
            continue
        if not listeblanche.peer_allowed(report_domain, peer.subject):
            # …and only when it came from an operator listed for that domain.
            continue
        delivery = Delivery.objects.filter(message=original, recipient=recipient).first()
        if delivery is None:
            continue
        if kind == "mdn":
            disposition = str(fields.get("Disposition") or "").lower()
            if "displayed" in disposition and delivery.read_at is None:
                delivery.read_at = when
            elif delivery.delivered_at is None and "processed" in disposition:
                delivery.delivered_at = when
            else:
                continue
        else:
            action = str(fields.get("Action") or "").strip().lower()
            if action == "failed":
                delivery.status = Delivery.Status.BOUNCED
                diagnostic = str(fields.get("Diagnostic-Code") or fields.get("Status") or "")
                delivery.last_error = (
                    f"Le serveur de {report_domain} signale un échec de distribution : "
                    f"{diagnostic.split(';', 1)[-1].strip()}"
                )[:2000]
            elif action in ("delivered", "relayed", "expanded"):
                delivery.delivered_at = delivery.delivered_at or when
            else:
                continue
        delivery.save(
            update_fields=["read_at", "delivered_at", "status", "last_error", "updated_at"]
        )
        journal.record(
            f"message.report_{kind}", obj=original, recipient=recipient, report=report.pk
        )
        changed += 1
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
