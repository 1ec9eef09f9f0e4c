"""Outbound delivery to other operators: SMTP with STARTTLS and mutual TLS.

``deliver_remote(delivery_ids)`` is what the pipeline calls for remote
deliveries. It works in three steps so that no database transaction stays open
while a remote server is talking:

1. claim the deliveries (one short transaction): marked "sending" with a lease,
   so a second task given the same ids leaves them alone;
2. one SMTP connection per destination domain for all its recipients (and all
   its messages): STARTTLS required, our certificate presented, the server's
   verified against SMTP_CA_FILE and its subject DN checked against the liste
   blanche for that domain;
3. record each recipient's outcome (one short transaction): 2xx delivered; 4xx or
   a connection failure deferred with exponential back-off; 5xx, or a message
   older than SMTP_GIVE_UP_HOURS, bounced with a DSN to the sender.
"""

from __future__ import annotations

import logging
import smtplib
import ssl
import time
from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime, timedelta

from celery import current_task
from django.conf import settings
from django.db import InterfaceError, OperationalError, connection, transaction
from django.utils import timezone

from audit import journal
from mailboxes import addresses, reasons
from mailboxes.models import Delivery, Message
from mailboxes.reasons import Reason
from mailboxes.services import quarantine
from mailboxes.services.messages import read_raw
from mailboxes.services.queue import retry_delay
from mailboxes.transport import dsn, routes, tls
from mssante.lib import crypto
from trust.listeblanche import peer_allowed

log = logging.getLogger(__name__)

# A route that can never work, and the RFC 3463 status its DSN gives.
_ROUTE_STATUS = {reasons.NO_SUCH_DOMAIN: "5.1.2", reasons.NULL_MX: "5.1.10"}


@dataclass(frozen=True)
class Result:
    """The outcome for one recipient: an SMTP code (0: no answer at all) and the reply.

    ``problem``: why no server of the domain took part (no route, no connection, a
    certificate not listed…); the reply is then empty.
    """

    code: int
    text: str
    host: str = ""
    problem: Reason | None = None

    @property
    def ok(self) -> bool:
        return 200 <= self.code < 300

    @property
    def permanent(self) -> bool:
        return self.code >= 500


def backoff(attempts: int) -> timedelta:
    """Wait before the next try after ``attempts`` tries: 1 min, 2, 4… up to 4 h (settings)."""
    first = settings.SMTP_RETRY_FIRST_SECONDS
    exponent = min(max(attempts - 1, 0), 30)
    return timedelta(seconds=min(settings.SMTP_RETRY_MAX_SECONDS, first * 2**exponent))


def _lease() -> timedelta:
    return max(retry_delay(), timedelta(seconds=3 * settings.SMTP_TIMEOUT))


def _holder() -> str:
    """The Celery worker (node name) sending now, "" outside a worker.

    Recorded on the claim, so that this worker, restarted after a crash, takes back at
    once what it held (``release_leases``) instead of waiting for the lease to expire.
    """
    task = current_task
    if task is None or task.request.is_eager:
        return ""
    return str(task.request.hostname or "")


def release_leases(holder: str) -> list[int]:
    """End the leases ``holder`` held (it has just started: its previous run died); their ids.

    A worker's node name is unique among running workers (Celery warns otherwise), so
    what a starting worker held, nobody holds. Sending again may repeat a message the
    peer accepted just before the crash: SMTP's at-least-once window, as after a lease
    expires; never a loss.
    """
    if not holder:
        return []
    with transaction.atomic():
        ids = list(
            Delivery.objects.select_for_update(skip_locked=True, of=("self",))
            .filter(
                remote=True,
                status=Delivery.Status.DEFERRED,
                reason=reasons.SENDING,
                reason_params__holder=holder,
            )
            .values_list("pk", flat=True)
        )
        now = timezone.now()
        # ``update`` leaves ``updated_at`` alone: set it past the lease by hand.
        Delivery.objects.filter(pk__in=ids).update(
            next_attempt_at=now, updated_at=now - _lease() - timedelta(seconds=1)
        )
    return ids


def _reply(code: int, text: bytes | str) -> str:
    value = text.decode("utf-8", "replace") if isinstance(text, bytes) else text
    return f"{code} {' '.join(value.split())}".strip()


def with_nil_header(raw: bytes) -> bytes:
    """The message as it leaves: X-MSS-NIL (our product reference) added when absent."""
    head = raw.split(b"\r\n\r\n", 1)[0].lower()
    if b"\nx-mss-nil:" in b"\n" + head or not settings.MSS_NIL:
        return raw
    return f"X-MSS-NIL: {settings.MSS_NIL}\r\n".encode("ascii", "replace") + raw


# RFC 5321 §4.5.3.1.6: 1,000 octets per line with its CRLF.
MAX_LINE = 998


def _fold(line: bytes, in_header: bool) -> list[bytes]:
    """``line`` (no line end) cut into lines of at most MAX_LINE bytes.

    In the header a cut goes before a space or tab when there is one (RFC 5322
    folding, nothing added); otherwise, as Postfix does (``smtp_line_length_limit``),
    the continuation starts with a space: harmless to base64, and to headers it is
    folding. A cut never falls inside a UTF-8 sequence.
    """
    pieces: list[bytes] = []
    prefix = b""
    while len(prefix) + len(line) > MAX_LINE:
        room = MAX_LINE - len(prefix)
        cut = max(line.rfind(b" ", 1, room), line.rfind(b"\t", 1, room)) if in_header else -1
        if cut > 0:
            pieces.append(prefix + line[:cut])
            line, prefix = line[cut:], b""
            continue
        cut = room
        while cut > 1 and (line[cut] & 0xC0) == 0x80:
            cut -= 1
        pieces.append(prefix + line[:cut])
        line, prefix = line[cut:], b" "
    pieces.append(prefix + line)
    return pieces


def for_the_wire(raw: bytes) -> bytes:
    """The message as SMTP may carry it: CRLF line ends and no line over 998 bytes.

    Stored messages keep the bytes a peer sent (long lines, bare LF); what we send must
    be what any peer accepts, so this is applied to everything leaving.
    """
    lines = raw.split(b"\n")
    if lines and lines[-1] == b"":
        lines.pop()
    out: list[bytes] = []
    in_header = True
    for line in lines:
        line = line.removesuffix(b"\r")
        if in_header and line == b"":
            in_header = False
        if len(line) > MAX_LINE:
            out.extend(_fold(line, in_header))
        else:
            out.append(line)
    return b"\r\n".join(out) + b"\r\n"


# --------------------------------------------------------------------------- SMTP


@dataclass
class Envelope:
    mail_from: str
    recipients: list[str]
    raw: bytes


def _send_one(smtp: smtplib.SMTP, envelope: Envelope, host: str) -> dict[str, Result]:
    try:
        refused = smtp.sendmail(envelope.mail_from, envelope.recipients, envelope.raw)
    except smtplib.SMTPRecipientsRefused as exc:
        refused = exc.recipients
    except (smtplib.SMTPSenderRefused, smtplib.SMTPDataError) as exc:
        result = Result(exc.smtp_code, _reply(exc.smtp_code, exc.smtp_error), host)
        return dict.fromkeys(envelope.recipients, result)
    results = {}
    for rcpt in envelope.recipients:
        if rcpt in refused:
            code, text = refused[rcpt]
            results[rcpt] = Result(code, _reply(code, text), host)
        else:
            results[rcpt] = Result(250, "250 OK", host)
    return results


def send_to_domain(domain: str, envelopes: list[Envelope]) -> list[dict[str, Result]]:
    """Send every envelope to ``domain`` over one connection; one result per recipient."""

    def all_failed(code: int, problem: Reason, host: str = "") -> list[dict[str, Result]]:
        return [dict.fromkeys(e.recipients, Result(code, "", host, problem)) for e in envelopes]

    try:
        hosts = routes.hosts_for(domain)
    except routes.RouteError as exc:
        return all_failed(550 if exc.permanent else 0, exc.reason)
    context = tls.client_context()
    failure = all_failed(0, Reason(reasons.NO_SERVER, {"domain": domain}))
    for host in hosts:
        label = f"{host.name}:{host.port}"
        try:
            smtp = smtplib.SMTP(
                host.name,
                host.port,
                local_hostname=settings.SMTP_HOSTNAME,
                timeout=settings.SMTP_TIMEOUT,
            )
        except (OSError, smtplib.SMTPException) as exc:
            failure = all_failed(
                0, Reason(reasons.CONNECTION_FAILED, {"host": label, "error": str(exc)}), host.name
            )
            continue
        results: list[dict[str, Result]] = []
        try:
            smtp.ehlo()
            if not smtp.has_extn("starttls"):
                failure = all_failed(0, Reason(reasons.NO_STARTTLS, {"host": label}), host.name)
                continue
            smtp.starttls(context=context)
            smtp.ehlo()
            assert isinstance(smtp.sock, ssl.SSLSocket)
            subject = (smtp.sock.getpeercert() or {}).get("subject", ())
            if not peer_allowed(domain, subject):
                failure = all_failed(
                    0,
                    Reason(
                        reasons.CERTIFICATE_NOT_LISTED,
                        {"host": label, "subject": tls.subject_text(subject), "domain": domain},
                    ),
                    host.name,
                )
                continue
            for envelope in envelopes:
                results.append(_send_one(smtp, envelope, host.name))
        except (OSError, smtplib.SMTPException, ValueError) as exc:
            # A failure midway: the envelopes already answered keep their answer.
            failure = (
                results
                + all_failed(
                    0,
                    Reason(
                        reasons.INTERRUPTED,
                        {"host": label, "error": f"{type(exc).__name__}: {exc}"},
                    ),
                    host.name,
                )[len(results) :]
            )
            if results:
                return failure
            continue
        finally:
            try:
                smtp.quit()
            except (OSError, smtplib.SMTPException):
                smtp.close()
        return results
    return failure


# --------------------------------------------------------------------------- pipeline


def _claim(delivery_ids: list[int], now: datetime) -> list[Delivery]:
    with transaction.atomic():
        rows = list(
            Delivery.objects.select_for_update(of=("self",))
            .select_related("message", "message__sender_mailbox")
            .filter(pk__in=delivery_ids, remote=True)
            .exclude(status__in=Delivery.DONE)
            .exclude(message__scan_status=Message.ScanStatus.PENDING)
            .order_by("pk")
        )
        claimed, changed = [], []
        # Staff may release a quarantined message: it keeps its "infected" status.
        released = quarantine.released_ids(
            d.message_id for d in rows if d.message.scan_status == Message.ScanStatus.INFECTED
        )
        for delivery in rows:
            if (
                delivery.message.scan_status == Message.ScanStatus.INFECTED
                and delivery.message_id not in released
            ):
                delivery.status = Delivery.Status.QUARANTINED
            elif (
                delivery.status == Delivery.Status.DEFERRED
                and delivery.reason == reasons.SENDING
                and delivery.updated_at > now - _lease()
            ):
                continue  # another task holds it
            else:
                delivery.status = Delivery.Status.DEFERRED
                delivery.set_reason(Reason(reasons.SENDING, {"holder": _holder()}))
                delivery.attempts += 1
                delivery.next_attempt_at = now + _lease()
                claimed.append(delivery)
            delivery.updated_at = now
            changed.append(delivery)
        Delivery.objects.bulk_update(
            changed,
            ["status", "reason", "reason_params", "attempts", "next_attempt_at", "updated_at"],
        )
    return claimed


def _reason(result: Result, domain: str) -> Reason:
    if result.problem is not None:
        return Reason(reasons.UNREACHABLE, {"domain": domain, "problem": result.problem})
    return Reason(reasons.REMOTE_REPLY, {"domain": domain, "reply": result.text})


def _status(result: Result) -> str:
    """The RFC 3463 status of a recipient given up on ("": the one in the reply)."""
    if not result.permanent:
        return "4.4.7"  # delivery time expired
    if result.problem is not None:
        return _ROUTE_STATUS.get(result.problem.code, "5.4.4")
    return ""


def _record(
    groups: list[tuple[Message, bytes, list[Delivery]]],
    results: list[dict[str, Result]],
    domain: str,
) -> None:
    now = timezone.now()
    give_up = timedelta(hours=settings.SMTP_GIVE_UP_HOURS)
    with transaction.atomic():
        changed: list[Delivery] = []
        for (message, raw, deliveries), answers in zip(groups, results, strict=True):
            failures: list[dsn.Failure] = []
            for delivery in deliveries:
                result = answers[delivery.recipient]
                delivery.updated_at = now
                if result.ok:
                    delivery.status = Delivery.Status.DELIVERED
                    delivery.delivered_at = now
                    delivery.set_reason(None)
                elif result.permanent or now - message.created_at >= give_up:
                    delivery.status = Delivery.Status.BOUNCED
                    reason = _reason(result, domain)
                    if not result.permanent:
                        reason = Reason(
                            reasons.GAVE_UP,
                            {
                                "attempts": delivery.attempts,
                                "hours": settings.SMTP_GIVE_UP_HOURS,
                                "last": reason,
                            },
                        )
                    delivery.set_reason(reason)
                    failures.append(
                        dsn.Failure(
                            recipient=delivery.recipient,
                            reason=reason,
                            diagnostic=result.text,
                            status=_status(result),
                            remote_mta=result.host,
                        )
                    )
                else:
                    delivery.status = Delivery.Status.DEFERRED
                    delivery.next_attempt_at = now + backoff(delivery.attempts)
                    delivery.set_reason(_reason(result, domain))
                changed.append(delivery)
            outcomes: dict[str, list[Delivery]] = defaultdict(list)
            for delivery in deliveries:
                outcomes[delivery.status].append(delivery)
            for status, group in outcomes.items():
                journal.record(
                    f"message.{status}",
                    obj=message,
                    deliveries=[d.pk for d in group],
                    mailboxes=[d.recipient for d in group],
                    remote=domain,
                )
            if failures:
                dsn.report_failures(message, failures, raw)
        Delivery.objects.bulk_update(
            changed,
            ["status", "delivered_at", "reason", "reason_params", "next_attempt_at", "updated_at"],
        )


def deliver_remote(delivery_ids: list[int]) -> int:
    """Deliver remote recipients over SMTP, one connection per domain; return how many tried."""
    claimed_at = timezone.now()
    claimed = _claim(delivery_ids, claimed_at)
    by_domain: dict[str, dict[int, list[Delivery]]] = defaultdict(lambda: defaultdict(list))
    for delivery in claimed:
        domain = addresses.domain_of(delivery.recipient)
        by_domain[domain][delivery.message_id].append(delivery)
    for domain, per_message in by_domain.items():
        groups: list[tuple[Message, bytes, list[Delivery]]] = []
        for deliveries in per_message.values():
            message = deliveries[0].message
            try:
                raw = read_raw(message)
            except crypto.BlobIntegrityError:
                # Nothing to send; leave it deferred for staff rather than bounce a
                # message whose content cannot be read back.
                log.error("message %s: blob unreadable, remote delivery deferred", message.pk)
                continue
            groups.append((message, raw, deliveries))
        if not groups:
            continue
        envelopes = [
            Envelope(
                "" if message.null_return_path else message.from_addr,
                [d.recipient for d in deliveries],
                for_the_wire(with_nil_header(raw)),
            )
            for message, raw, deliveries in groups
        ]
        try:
            results = send_to_domain(domain, envelopes)
        except Exception as exc:
            # A bug or broken TLS material: defer (the lease expires) rather than lose.
            log.exception("remote delivery to %s failed", domain)
            results = [
                dict.fromkeys(
                    e.recipients,
                    Result(
                        0, "", problem=Reason(reasons.INTERNAL_ERROR, {"error": type(exc).__name__})
                    ),
                )
                for e in envelopes
            ]
        _record_within_lease(groups, results, domain, claimed_at + _lease())
    return len(claimed)


def _record_within_lease(
    groups: list[tuple[Message, bytes, list[Delivery]]],
    results: list[dict[str, Result]],
    domain: str,
    lease_end: datetime,
) -> None:
    """``_record``, tried again while the database is unreachable, until the claim's lease ends.

    The peer has answered: if its 250s are not recorded, the deliveries are sent
    again once the lease is over, and the recipients get the message twice (found
    by the fault-injection suite with PostgreSQL restarted mid-delivery). Within the
    lease no other task takes these deliveries, so trying again is safe.
    """
    pause = 0.25
    while True:
        try:
            _record(groups, results, domain)
            return
        except (OperationalError, InterfaceError):
            if timezone.now() + timedelta(seconds=pause) >= lease_end - timedelta(seconds=1):
                raise
            log.warning(
                "outcome of %d deliveries to %s not recorded yet: database unreachable",
                sum(len(d) for _m, _r, d in groups),
                domain,
            )
            connection.close()  # a new one at the next try
            time.sleep(pause)
            pause = min(pause * 2, 5.0)
