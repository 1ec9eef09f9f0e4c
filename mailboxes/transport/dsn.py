"""Delivery status notifications (RFC 3464) for messages that could not be delivered.

The report is a ``multipart/report; report-type=delivery-status`` with a French
part for the sender, the machine-readable status of each recipient and the
original's headers (never its body). It reaches the sender's inbox as a local
message, in the same conversation as the original.
"""

from __future__ import annotations

import logging
import quopri
import re
import uuid
from dataclasses import dataclass
from datetime import datetime
from email.utils import format_datetime, make_msgid

from django.conf import settings
from django.utils import timezone

from mailboxes.models import Message
from mailboxes.transport.inbound import smtp_text

log = logging.getLogger(__name__)

_ENHANCED_RE = re.compile(r"\b([245]\.\d{1,3}\.\d{1,3})\b")


@dataclass(frozen=True)
class Failure:
    """One recipient that will not get the message, and why."""

    recipient: str
    reason: str  # French, for the sender
    diagnostic: str = ""  # the remote server's reply, as received
    status: str = ""  # RFC 3463 code; found in the diagnostic when empty
    remote_mta: str = ""


def _status(failure: Failure) -> str:
    if failure.status:
        return failure.status
    found = _ENHANCED_RE.search(failure.diagnostic)
    if found and found.group(1)[0] in "45":
        return found.group(1)
    return "5.0.0"


def _original_headers(raw: bytes) -> bytes:
    end = raw.find(b"\r\n\r\n")
    if end < 0:
        end = raw.find(b"\n\n")
    head = raw if end < 0 else raw[:end]
    return head.replace(b"\r\n", b"\n").replace(b"\n", b"\r\n")


def _human_text(message: Message, failures: list[Failure]) -> str:
    sent = timezone.localtime(message.created_at).strftime("%d/%m/%Y à %H:%M")
    lines = [
        "Bonjour,",
        "",
        f"Votre message « {message.subject or '(sans objet)'} » envoyé le {sent} "
        "n'a pas pu être distribué au(x) destinataire(s) suivant(s) :",
        "",
    ]
    for failure in failures:
        lines.append(f"  - {failure.recipient} : {failure.reason}")
        if failure.diagnostic:
            lines.append(f"    Réponse du serveur distant : {failure.diagnostic}")
    lines += [
        "",
        "Le message n'a pas été remis à ce(s) destinataire(s). Vérifiez l'adresse ou "
        "contactez le destinataire par un autre moyen.",
        "",
        "Ceci est un message automatique du service de messagerie : n'y répondez pas.",
    ]
    return "\n".join(lines)


def build_dsn(
    message: Message,
    raw_original: bytes,
    failures: list[Failure],
    *,
    now: datetime | None = None,
) -> bytes:
    """The raw RFC 3464 report for ``message`` to its sender (one part per recipient)."""
    now = now or timezone.now()
    sender_domain = message.from_addr.rpartition("@")[2] or settings.SMTP_HOSTNAME
    boundary = f"=_dsn_{uuid.uuid4().hex}"
    human = quopri.encodestring(
        _human_text(message, failures).replace("\n", "\r\n").encode("utf-8")
    )
    per_recipient = []
    for failure in failures:
        fields = [
            f"Original-Recipient: rfc822;{failure.recipient}",
            f"Final-Recipient: rfc822;{failure.recipient}",
            "Action: failed",
            f"Status: {_status(failure)}",
        ]
        if failure.remote_mta:
            fields.append(f"Remote-MTA: dns; {failure.remote_mta}")
        diagnostic = smtp_text(failure.diagnostic or failure.reason)
        fields.append(f"Diagnostic-Code: smtp; {diagnostic}")
        fields.append(f"Last-Attempt-Date: {format_datetime(now)}")
        per_recipient.append("\r\n".join(fields))
    status_part = "\r\n\r\n".join(
        [
            f"Reporting-MTA: dns; {settings.SMTP_HOSTNAME}\r\n"
            f"Original-Envelope-Id: {smtp_text(message.message_id)}\r\n"
            f"Arrival-Date: {format_datetime(message.created_at)}",
            *per_recipient,
        ]
    )
    subject = "Non distribué : " + (message.subject or "(sans objet)")
    from email.header import Header

    head = [
        f"From: =?utf-8?q?Syst=C3=A8me_de_messagerie?= <mailer-daemon@{sender_domain}>",
        f"To: <{message.from_addr}>",
        "Subject: " + Header(subject, "utf-8").encode(maxlinelen=76, linesep="\r\n"),
        f"Date: {format_datetime(now)}",
        f"Message-ID: {make_msgid(domain=sender_domain)}",
        f"In-Reply-To: {message.message_id}",
        f"References: <{message.thread_key}> {message.message_id}"
        if message.thread_key and f"<{message.thread_key}>" != message.message_id.lower()
        else f"References: {message.message_id}",
        "Auto-Submitted: auto-replied",
        "MIME-Version: 1.0",
        f'Content-Type: multipart/report; report-type=delivery-status; boundary="{boundary}"',
    ]
    body = [
        f"--{boundary}",
        "Content-Type: text/plain; charset=utf-8",
        "Content-Transfer-Encoding: quoted-printable",
        "",
        human.decode("ascii"),
        f"--{boundary}",
        "Content-Type: message/delivery-status",
        "",
        status_part,
        "",
        f"--{boundary}",
        "Content-Type: text/rfc822-headers",
        "",
        _original_headers(raw_original).decode("ascii", "replace"),
        "",
        f"--{boundary}--",
        "",
    ]
    return ("\r\n".join(head) + "\r\n\r\n" + "\r\n".join(body)).encode("ascii", "replace")


def bounce_to_sender(message: Message, raw_original: bytes, failures: list[Failure]) -> None:
    """Put a DSN for ``failures`` in the sending mailbox's inbox (inside the caller's transaction)."""
    from mailboxes.services.inbound import ReceptionError, receive_message

    box = message.sender_mailbox
    if box is None or not failures:
        return
    raw = build_dsn(message, raw_original, failures)
    try:
        receive_message(raw, "", [box.address], label="dsn", origin=Message.Origin.SYSTEM)
    except ReceptionError as exc:
        # A closed sending box: nobody left to tell.
        log.warning("DSN for message %s not stored: %s", message.public_id, exc)
