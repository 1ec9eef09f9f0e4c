"""Delivery status notifications (RFC 3464) for messages that could not be delivered.

The report itself is built by ``mssante.lib.reports.build_dsn`` (the ``email``
package, plain values); this module gives it the message's values and the human part
in its reader's language: the language a sender of ours wrote in (``Message.language``),
French for a sender at another operator (the trust space's common language).

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
from dataclasses import dataclass
from datetime import datetime

from django.conf import settings
from django.utils import timezone, translation
from django.utils.translation import gettext as _

from mailboxes import addresses
from mailboxes.models import HostedDomain, Message
from mailboxes.reasons import Reason
from mailboxes.services.inbound import local_mailbox
from mailboxes.services.messages import read_raw
from mailboxes.services.store import Listing, Recipient, store_message
from mailboxes.transport.wording import report_language, when
from mssante.lib import mime, reports
from trust import listeblanche

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Failure:
    """One recipient that will not get the message, and why."""

    recipient: str
    reason: Reason  # shown to the sender in their language
    diagnostic: str = ""  # the remote server's reply, as received
    status: str = ""  # RFC 3463 code; found in the diagnostic when empty
    remote_mta: str = ""


def _status(failure: Failure) -> str:
    return failure.status or reports.status_of(failure.diagnostic)


def _diagnostic(failure: Failure) -> str:
    """The remote server's reply, or for a failure here the reply we would have given."""
    if failure.diagnostic:
        return failure.diagnostic
    status = _status(failure)
    return f"{'550' if status.startswith('5') else '451'} {status} {failure.reason.diagnostic()}"


def _human_text(message: Message, failures: list[Failure], *, received: bool) -> str:
    values = {
        "subject": message.subject or _("(sans objet)"),
        "when": when(message.created_at),
        "operator": settings.OPERATOR_NAME,
    }
    if received:
        intro = (
            _(
                "Votre message « %(subject)s », reçu par %(operator)s %(when)s, n'a pas été "
                "distribué au(x) destinataire(s) suivant(s) :"
            )
            % values
        )
    else:
        intro = (
            _(
                "Votre message « %(subject)s » envoyé %(when)s n'a pas pu être distribué "
                "au(x) destinataire(s) suivant(s) :"
            )
            % values
        )
    lines = [_("Bonjour,"), "", intro, ""]
    for failure in failures:
        lines.append(
            "  - "
            + _("%(recipient)s : %(reason)s")
            % {"recipient": failure.recipient, "reason": failure.reason.text()}
        )
        if failure.diagnostic:
            lines.append(
                "    " + _("Réponse du serveur distant : %(reply)s") % {"reply": failure.diagnostic}
            )
    lines += [
        "",
        _(
            "Le message n'a pas été remis à ce(s) destinataire(s). Vérifiez l'adresse ou "
            "contactez le destinataire par un autre moyen."
        ),
        "",
        _("Ceci est un message automatique du service de messagerie : n'y répondez pas."),
    ]
    return "\n".join(lines) + "\n"


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
    with translation.override(report_language(message)):
        subject = _("Non distribué : %(subject)s") % {
            "subject": message.subject or _("(sans objet)")
        }
        text = _human_text(message, failures, received=received)
        from_name = _("Système de messagerie")
    return reports.build_dsn(
        from_addr=f"mailer-daemon@{domain}",
        from_name=from_name,
        to=to or message.from_addr,
        subject=subject,
        text=text,
        reporting_mta=settings.SMTP_HOSTNAME,
        recipients=[
            reports.RecipientStatus(
                recipient=failure.recipient,
                status=_status(failure),
                diagnostic=_diagnostic(failure),
                remote_mta=failure.remote_mta,
                last_attempt=now,
            )
            for failure in failures
        ],
        date=now,
        arrival_date=message.created_at,
        original_message_id=message.message_id,
        references=[f"<{message.thread_key}>"] if message.thread_key else [],
        original_headers=raw_original,
    )


def _store_report(
    message: Message, raw: bytes, recipient: Recipient, failures: list[Failure]
) -> Message:
    """Store the DSN ``raw`` about ``message`` for ``recipient`` (in the caller's transaction).

    A message of its own, leaving through the pipeline (retries, back-off) with
    ``MAIL FROM:<>``; written here, of headers only: nothing to scan, never called "sain".
    """
    return store_message(
        raw,
        Listing.of(mime.parse_message(raw)),
        origin=Message.Origin.SYSTEM,
        recipients=[recipient],
        scan=False,
        null_return_path=True,
        event="message.dsn_sent",
        details={"original": message.pk, "recipients": [f.recipient for f in failures]},
    )


def bounce_to_sender(message: Message, raw_original: bytes, failures: list[Failure]) -> None:
    """Put a DSN for ``failures`` in the sending mailbox's inbox (inside the caller's transaction)."""
    box = message.sender_mailbox
    if box is None or not failures:
        return
    if local_mailbox(box.address) is None:
        # A closed sending box: nobody left to tell.
        log.warning("DSN for message %s not stored: its sending box is closed", message.public_id)
        return
    _store_report(
        message, build_dsn(message, raw_original, failures), Recipient(box.address, box), failures
    )


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
    if reports.is_report(raw_original):
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
    return _store_report(message, raw, Recipient(to, remote=True), failures)


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
        try:
            raw = read_raw(message)
        except Exception:
            # Its headers cannot be read back: the report still names the recipients.
            log.exception("message %s unreadable: DSN without its headers", message.pk)
            raw = b""
    try:
        if local:
            bounce_to_sender(message, raw, failures)
        else:
            report_to_remote_sender(message, raw, failures)
    except ValueError:
        # An address or a value no report can carry (reports.build_dsn): the bounce
        # stays recorded, and failing here would undo it and retry it for ever.
        log.warning("message %s: no DSN can be written for it", message.pk)
