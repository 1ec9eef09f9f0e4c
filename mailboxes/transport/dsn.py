"""Delivery status notifications (RFC 3464) for messages that could not be delivered.

The report is a ``multipart/report; report-type=delivery-status`` built with the
``email`` package: a French part for the sender, the machine-readable status of each
recipient and the original's headers (never its body).

Who gets it (``report_failures``):

- a sender of ours: the report is put in their inbox as a local message, in the same
  conversation as the original (``bounce_to_sender``);
- a sender at another operator, whose message we accepted with a 250: the report
  leaves through the outbound pipeline to the envelope's MAIL FROM, itself with
  ``MAIL FROM:<>`` (``report_to_remote_sender``). RFC 5321 §4.5.5 and RFC 3464: never
  to a null sender, and never a report about a report, so two systems can never send
  each other reports for ever.
"""

from __future__ import annotations

import logging
import re
import uuid
from dataclasses import dataclass
from datetime import datetime
from email import policy
from email.headerregistry import Address
from email.message import EmailMessage
from email.message import Message as HeaderBlock
from email.utils import format_datetime, make_msgid

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from audit import journal
from charter import listeblanche
from mailboxes import addresses, blobs
from mailboxes.models import Delivery, HostedDomain, Message
from mailboxes.services import pipeline
from mailboxes.transport.inbound import smtp_text
from mssante.lib import mime

log = logging.getLogger(__name__)

_ENHANCED_RE = re.compile(r"\b([245]\.\d{1,3}\.\d{1,3})\b")
# The original's header block is copied into the report up to this size (a header
# section can be as large as the message): enough to recognise the message.
MAX_ORIGINAL_HEADERS = 64 * 1024


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


def _diagnostic(failure: Failure) -> str:
    """The remote server's reply, or for a failure here the reply we would have given."""
    if failure.diagnostic:
        return failure.diagnostic
    status = _status(failure)
    if failure.status and status.startswith("5"):
        return f"550 {status} {failure.reason}"
    return failure.reason


def _original_headers(raw: bytes) -> str:
    end = raw.find(b"\r\n\r\n")
    if end < 0:
        end = raw.find(b"\n\n")
    head = raw if end < 0 else raw[:end]
    if len(head) > MAX_ORIGINAL_HEADERS:
        head = head[: head.rfind(b"\n", 0, MAX_ORIGINAL_HEADERS) + 1]
    return head.replace(b"\r\n", b"\n").decode("utf-8", "replace").rstrip("\n") + "\n"


def _human_text(message: Message, failures: list[Failure], *, received: bool) -> str:
    when = timezone.localtime(message.created_at).strftime("%d/%m/%Y à %H:%M")
    subject = message.subject or "(sans objet)"
    if received:
        intro = (
            f"Votre message « {subject} », reçu par {settings.OPERATOR_NAME} le {when}, "
            "n'a pas été distribué au(x) destinataire(s) suivant(s) :"
        )
    else:
        intro = (
            f"Votre message « {subject} » envoyé le {when} "
            "n'a pas pu être distribué au(x) destinataire(s) suivant(s) :"
        )
    lines = ["Bonjour,", "", intro, ""]
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
    return "\n".join(lines) + "\n"


def _part() -> EmailMessage:
    return EmailMessage(policy=policy.SMTP)


def _one_line(value: str, limit: int = 998) -> str:
    """A header value from stored (peer-written) text: one line, bounded."""
    return " ".join(value.split())[:limit]


def build_dsn(
    message: Message,
    raw_original: bytes,
    failures: list[Failure],
    *,
    to: str | None = None,
    reporting_domain: str | None = None,
    now: datetime | None = None,
) -> bytes:
    """The raw RFC 3464 report for ``message`` (one status block per failed recipient).

    ``to``: where the report goes (the original's sender by default); ``reporting_domain``:
    the domain it comes from (``mailer-daemon@…``), by default the sender's.
    """
    now = now or timezone.now()
    received = message.sender_mailbox_id is None and message.origin == Message.Origin.SMTP
    domain = reporting_domain or addresses.domain_of(message.from_addr) or settings.SMTP_HOSTNAME
    report = EmailMessage(policy=policy.SMTP)
    report["From"] = Address("Système de messagerie", "mailer-daemon", domain)
    report["To"] = Address(addr_spec=to or message.from_addr)
    report["Subject"] = "Non distribué : " + _one_line(message.subject or "(sans objet)", 900)
    report["Date"] = format_datetime(now)
    report["Message-ID"] = make_msgid(domain=domain)
    original_id = _one_line(message.message_id, 255)
    report["In-Reply-To"] = original_id
    thread = f"<{message.thread_key}>"
    if message.thread_key and thread != original_id.lower():
        report["References"] = f"{_one_line(thread, 255)} {original_id}"
    else:
        report["References"] = original_id
    report["Auto-Submitted"] = "auto-replied"
    report["MIME-Version"] = "1.0"
    # Set whole: set_param() would quote the report type, which some parsers miss.
    report["Content-Type"] = (
        f'multipart/report; report-type=delivery-status; boundary="=_dsn_{uuid.uuid4().hex}"'
    )
    human = _part()
    human.set_content(_human_text(message, failures, received=received), cte="quoted-printable")
    del human["MIME-Version"]
    report.attach(human)

    per_message = HeaderBlock(policy=policy.SMTP)
    per_message["Reporting-MTA"] = f"dns; {settings.SMTP_HOSTNAME}"
    per_message["Arrival-Date"] = format_datetime(message.created_at)
    blocks: list[HeaderBlock | str] = [per_message]
    for failure in failures:
        block = HeaderBlock(policy=policy.SMTP)
        block["Original-Recipient"] = f"rfc822;{failure.recipient}"
        block["Final-Recipient"] = f"rfc822;{failure.recipient}"
        block["Action"] = "failed"
        block["Status"] = _status(failure)
        if failure.remote_mta:
            block["Remote-MTA"] = f"dns; {_one_line(failure.remote_mta, 253)}"
        block["Diagnostic-Code"] = f"smtp; {smtp_text(_diagnostic(failure))}"
        block["Last-Attempt-Date"] = format_datetime(now)
        blocks.append(block)
    status = _part()
    status["Content-Type"] = "message/delivery-status"
    status.set_payload(blocks)
    report.attach(status)

    headers = _part()
    headers.set_content(_original_headers(raw_original), subtype="rfc822-headers")
    del headers["MIME-Version"]
    report.attach(headers)
    return report.as_bytes()


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


def _is_report(raw: bytes) -> bool:
    head = raw.split(b"\r\n\r\n", 1)[0].split(b"\n\n", 1)[0].lower()
    return b"multipart/report" in head


def owes_remote_report(message: Message) -> bool:
    """Whether a failure for this message is reported to a sender at another operator."""
    return (
        message.origin == Message.Origin.SMTP
        and message.sender_mailbox_id is None
        and not message.null_return_path
        and bool(message.sender_addr)
    )


def report_to_remote_sender(
    message: Message, raw_original: bytes, failures: list[Failure]
) -> Message | None:
    """Send a DSN to the envelope sender of a message a peer gave us (in the caller's transaction).

    Stored as a message of its own with one remote delivery, so it leaves through the
    outbound pipeline (retries, back-off) with ``MAIL FROM:<>``.
    """
    if not failures or not owes_remote_report(message):
        return None
    if _is_report(raw_original):
        # A report about a report could bounce between two systems for ever.
        log.info("message %s is a report: no DSN for it", message.pk)
        return None
    to = message.sender_addr
    to_domain = addresses.domain_of(to)
    if (
        not to.isascii()
        or HostedDomain.objects.filter(name=to_domain).exists()
        or not listeblanche.is_listed(to_domain)
    ):
        log.warning("message %s: sender domain %r cannot be reported to", message.pk, to_domain)
        return None
    reporting_domain = addresses.domain_of(failures[0].recipient) or settings.SMTP_HOSTNAME
    raw = build_dsn(message, raw_original, failures, to=to, reporting_domain=reporting_domain)
    parsed = mime.parse_message(raw)
    now = timezone.now()
    blob_name = blobs.new_name("messages")
    sealed = blobs.write(blob_name, raw)
    try:
        with transaction.atomic():
            report = Message.objects.create(
                message_id=parsed.message_id[:255],
                thread_key=parsed.thread_key[:255],
                in_reply_to=(parsed.in_reply_to or "")[:255],
                from_addr=f"mailer-daemon@{reporting_domain}"[:254],
                from_name="Système de messagerie",
                to_addrs=[to],
                subject=parsed.subject[:998],
                date=now,
                size=len(raw),
                origin=Message.Origin.SYSTEM,
                # Written here, of headers only: nothing to scan, never called "sain".
                scan_status=Message.ScanStatus.NOT_SCANNED,
                null_return_path=True,
                blob_name=blob_name,
                key_id=sealed.key_id,
                wrapped_key=sealed.wrapped_key,
                created_at=now,
            )
            delivery = Delivery.objects.create(
                message=report,
                recipient=to,
                remote=True,
                next_attempt_at=now + pipeline.retry_delay(),
            )
            journal.record(
                "message.dsn_sent",
                obj=report,
                original=message.pk,
                recipients=[f.recipient for f in failures],
            )
            delivery_pk = delivery.pk
            transaction.on_commit(lambda: pipeline.enqueue_batches([delivery_pk]))
    except BaseException:
        blobs.delete(blob_name)
        raise
    return report


def report_failures(message: Message, failures: list[Failure], raw: bytes | None = None) -> None:
    """Tell the sender of ``message`` which recipients will not get it (caller's transaction).

    A sender of ours gets the report in their inbox; a sender at another operator gets
    it by SMTP. ``raw``: the original's bytes when the caller has them.
    """
    if not failures or message.null_return_path:
        # A report (DSN, MDN) that fails is never reported on: reports could otherwise
        # bounce between two systems for ever.
        return
    local = message.sender_mailbox_id is not None
    if not local and not owes_remote_report(message):
        return
    if raw is None:
        from mailboxes.services.messages import read_raw

        try:
            raw = read_raw(message)
        except Exception:
            # Its headers cannot be read back: the report still names the recipients.
            log.exception("message %s unreadable: DSN without its headers", message.pk)
            raw = b""
    if local:
        bounce_to_sender(message, raw, failures)
    else:
        report_to_remote_sender(message, raw, failures)
