"""Receiving a message from another operator: the SMTP gateway's door into the store.

The gateway reads each message with ``read_reception`` once its peer has sent DATA (sizes,
MIME limits, the charter: no database write), then stores the messages of many sessions
together with ``store_receptions``: one transaction, one savepoint per message, one commit
(one flush of the write-ahead log) for the group. Each message is stored by
``store.store_message``, which seals the raw MIME, writes the Message and one Delivery per
local recipient and enqueues the scan once committed; a message that fails rolls back to
its savepoint alone. The gateway answers 250 only for what a committed transaction holds.
The raw bytes are kept exactly as received, even when the MIME is broken (the reading side
shows what it can). ``receive_message`` does both for one message.

What the peer's TLS session proved (its certificate, the domain it was accepted
for) is recorded on the Message at this point: resends are recognised by it, and
the display's "via" rests on it, never on what the message itself claims.
"""

from __future__ import annotations

import functools
import hashlib
import logging
import uuid
from collections.abc import Callable, Collection, Iterable, Sequence
from dataclasses import dataclass, replace
from typing import Any

from django.conf import settings
from django.db import IntegrityError, connection, transaction
from django.utils.translation import gettext as _

from mailboxes import addresses
from mailboxes.models import HostedDomain, Mailbox, Message
from mailboxes.selectors import hosted_domains
from mailboxes.services import queue
from mailboxes.services.peer import Peer
from mailboxes.services.store import (
    Listing,
    Provenance,
    Recipient,
    add_recipients,
    store_message,
    xdm_patient_ins_of_raw,
)
from mailboxes.transport import mdn
from mssante.lib import mime
from trust import listeblanche, policy

log = logging.getLogger(__name__)

# Whether a peer's certificate is listed for a domain (``listeblanche.peer_allowed``; the
# gateway passes its cached reading of the liste blanche).
Allowed = Callable[[str, tuple[Any, ...]], bool]


class ReceptionError(Exception):
    """A message from a peer that is refused; ``code`` is the SMTP reply code."""

    def __init__(self, message: str, *, code: int = 550, rule: str = "") -> None:
        super().__init__(message)
        self.code = code
        self.rule = rule


class NotCommitted(Exception):
    """The transaction of a group of received messages did not commit: none is stored."""


def local_mailboxes(
    addresses_: Iterable[str], domains: Iterable[str] | None = None
) -> dict[str, Mailbox]:
    """The active mailboxes among these addresses in domains we serve, by address (one query).

    ``domains`` restricts the domains served (a gateway given its own list);
    by default they are the active hosted domains.
    """
    wanted = set()
    for address in addresses_:
        try:
            wanted.add(addresses.normalise(address))
        except addresses.AddressError:
            continue
    if not wanted:
        return {}
    boxes = Mailbox.objects.filter(address__in=wanted, status=Mailbox.Status.ACTIVE).order_by()
    if domains is not None:
        boxes = boxes.filter(domain__name__in=list(domains))
    else:
        boxes = boxes.filter(domain__active=True)
    return {
        box.address: box
        for box in boxes.select_related("domain")
        if box.domain.name == addresses.domain_of(box.address)
    }


def active_addresses(addresses_: Iterable[str], domains: Iterable[str] | None = None) -> set[str]:
    """Those of these addresses that are active mailboxes of domains we serve, normalised.

    What ``local_mailboxes`` finds, without the rows: the gateway asks it at every RCPT,
    where building the ORM query and its objects cost ten times the query itself.
    """
    wanted = set()
    for address in addresses_:
        try:
            wanted.add(addresses.normalise(address))
        except addresses.AddressError:
            continue
    if not wanted:
        return set()
    quote = connection.ops.quote_name
    params: list[Any] = [*wanted, Mailbox.Status.ACTIVE]
    if domains is None:
        served = "d.active = %s"
        params.append(True)
    else:
        names = list(domains)
        if not names:
            return set()
        served = f"d.name IN ({', '.join(['%s'] * len(names))})"
        params.extend(names)
    # Only table names and placeholders are formatted in; every value is a parameter.
    sql = (
        f"SELECT m.address, d.name FROM {quote(Mailbox._meta.db_table)} m "  # noqa: S608
        f"JOIN {quote(HostedDomain._meta.db_table)} d ON d.id = m.domain_id "
        f"WHERE m.address IN ({', '.join(['%s'] * len(wanted))}) AND m.status = %s AND {served}"
    )
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        rows = cursor.fetchall()
    return {address for address, name in rows if name == addresses.domain_of(address)}


def local_mailbox(address: str, domains: Iterable[str] | None = None) -> Mailbox | None:
    """The active mailbox at ``address`` in a domain we serve, else None."""
    try:
        address = addresses.normalise(address)
    except addresses.AddressError:
        return None
    return local_mailboxes([address], domains).get(address)


def hosted_names() -> frozenset[str]:
    """Every domain hosted here, active or not (one query)."""
    return frozenset(HostedDomain.objects.values_list("name", flat=True))


def _check_charter(
    raw: bytes, parsed: mime.ParsedMessage, recipients: list[str], patient_domains: Collection[str]
) -> None:
    """The trust space's rules that apply to mail from outside (raises PolicyError)."""
    policy.check_recipient_count(len(recipients), exception_active=False)
    # What the patient reads counts, not only the envelope: a peer sending one message to
    # two patients as two transactions would otherwise show each the other's address.
    policy.check_patient_recipients(
        [*recipients, *(a for _n, a in parsed.to), *(a for _n, a in parsed.cc)],
        patient_domains=patient_domains,
    )
    files = []
    if parsed.attachments:
        # One parse for all of them (get_part per attachment made a message of many
        # tiny parts cost minutes of the gateway's time).
        files = [(a.filename, a.content_type, a.data) for _i, a in mime.get_parts(raw)]
    policy.check_attachments(files)


def _hosted(domain: str, domains: Iterable[str] | None) -> bool:
    if domains is not None:
        return domain in domains
    return HostedDomain.objects.filter(name=domain).exists()


def from_via(
    from_addr: str,
    peer: Peer | None,
    domains: Iterable[str] | None = None,
    *,
    allowed: Allowed = listeblanche.peer_allowed,
    hosted: Callable[[str], bool] | None = None,
) -> str:
    """What to show after the sender as "via …", or "" when the From: domain is the peer's.

    The peer may write any From: it likes. It speaks for a domain only when the liste
    blanche lists its certificate for that domain (MAIL FROM's domain was checked so at
    MAIL); never for one of ours. ``allowed`` and ``hosted`` answer those two questions
    (by default from the database; the gateway passes its cached readings).
    """
    if peer is None:
        return ""
    domain = addresses.domain_of(from_addr.strip().lower()) if "@" in from_addr else ""
    if domain and allowed(domain, peer.subject):
        ours = hosted(domain) if hosted is not None else _hosted(domain, domains)
        if not ours:
            return ""
    return peer.name[:253]


def resend_key(raw: bytes, mail_from: str, peer: Peer | None) -> str:
    """The key that makes a message a resend: same bytes, same MAIL FROM, same certificate."""
    if peer is None:
        return ""
    digest = hashlib.sha256()
    for part in (peer.identity.encode(), mail_from.encode(), hashlib.sha256(raw).digest()):
        digest.update(len(part).to_bytes(8, "big"))
        digest.update(part)
    return digest.hexdigest()


def _unknown(address: str) -> ReceptionError:
    return ReceptionError(
        _("Aucune boîte aux lettres active à l'adresse « %(address)s ».")
        % {"address": address[:254]},
        code=550,
        rule="unknown_recipient",
    )


def _normalised(rcpt_tos: Sequence[str]) -> list[str]:
    """The envelope's recipients, normalised, each once, in order (raises ReceptionError)."""
    recipients: list[str] = []
    for address in rcpt_tos:
        try:
            normalised = addresses.normalise(address)
        except addresses.AddressError:
            raise _unknown(address) from None
        if normalised not in recipients:
            recipients.append(normalised)
    if not recipients:
        raise ReceptionError(_("Aucun destinataire."), code=554)
    return recipients


def _recipients(
    recipients: Sequence[str], found: dict[str, Mailbox], *, gone_ok: bool = False
) -> list[Recipient]:
    """One delivery per recipient, with its local mailbox (raises ReceptionError).

    ``found``: the active boxes by address. ``gone_ok``: a recipient the gateway accepted
    at RCPT whose box closed since is kept with no box (its delivery bounces, the sender
    gets a DSN) as long as another recipient can still get the message: one closed box
    must not cost the others theirs.
    """
    for address in recipients:
        if address not in found and not gone_ok:
            raise _unknown(address)
    if not any(address in found for address in recipients):
        raise _unknown(recipients[0])
    return [Recipient(address, found.get(address)) for address in recipients]


@dataclass(frozen=True)
class Reception:
    """A message from a peer, read and judged by ``read_reception``, not yet stored."""

    raw: bytes
    # The envelope: MAIL FROM lower-cased ("" for a null sender), RCPT TO normalised.
    sender: str
    recipients: tuple[str, ...]
    peer: Peer | None
    label: str
    listing: Listing
    key: str
    details: dict[str, Any]
    # The charter rule it breaks, if any: refused unless it is a resend of a stored
    # message (whose first copy passed), as the order of the checks always was.
    refusal: policy.PolicyError | None = None


def read_reception(
    raw: bytes,
    mail_from: str,
    rcpt_tos: Sequence[str],
    *,
    peer: Peer | None = None,
    label: str = "",
    patient_domains: Collection[str] | None = None,
) -> Reception:
    """Check a received message's sizes and MIME limits, read it, judge it by the charter.

    Writes nothing (and reads the database only for the patient domains when
    ``patient_domains`` is not given). Raises ReceptionError for a message that
    cannot be taken (too big, beyond the MIME limits, no usable recipient).
    """
    if len(raw) > settings.SMTP_MAX_MESSAGE_BYTES:
        raise ReceptionError(
            _("Message trop volumineux : %(size)s, au plus %(limit)s.")
            % {
                "size": mime.human_size(len(raw)),
                "limit": mime.human_size(settings.SMTP_MAX_MESSAGE_BYTES),
            },
            code=552,
            rule="message_size",
        )
    try:  # Before any parsing: header sizes, depth, parts (mssante.lib.mime.LIMITS).
        mime.check_limits(raw)
    except mime.MimeLimitError as exc:
        raise ReceptionError(
            _(exc.template) % exc.params, code=exc.smtp_code, rule=exc.rule
        ) from None
    recipients = _normalised(rcpt_tos)
    sender = "" if mail_from in ("", "<>") else mail_from.strip().lower()
    parsed = mime.parse_message(raw)
    refusal = None
    try:
        _check_charter(
            raw,
            parsed,
            recipients,
            hosted_domains().patient if patient_domains is None else patient_domains,
        )
    except policy.PolicyError as exc:
        refusal = exc
    listing = Listing.of(parsed, fallback_id=f"<{uuid.uuid4().hex}@{settings.SMTP_HOSTNAME}>")
    listing = replace(
        listing,
        from_addr=listing.from_addr or sender,
        sender_addr=sender,
        # Another operator's lab: its results are grouped by the patient its package names.
        patient_ins=xdm_patient_ins_of_raw(raw, parsed.attachments),
    )
    return Reception(
        raw=raw,
        sender=sender,
        recipients=tuple(recipients),
        peer=peer,
        label=label,
        listing=listing,
        key=resend_key(raw, sender, peer),
        details={
            "origin": Message.Origin.SMTP,
            "peer": label[:300],
            "mail_from": sender,
            "recipients": len(recipients),
            "size": len(raw),
            "attachments": len(parsed.attachments),
            "defects": len(parsed.defects),
        },
        refusal=refusal,
    )


def _store_one(
    reception: Reception,
    found: dict[str, Mailbox],
    stored: dict[str, Message],
    *,
    domains: Iterable[str] | None,
    allowed: Allowed,
    hosted: Callable[[str], bool] | None,
) -> Message:
    """Store one reception, or add its recipients to the message it resends."""
    peer = reception.peer
    deliveries = _recipients(reception.recipients, found, gone_ok=peer is not None)
    key = reception.key
    if key and key in stored:
        return add_recipients(stored[key], deliveries)
    if reception.refusal is not None:
        raise reception.refusal
    listing = reception.listing
    try:
        message = store_message(
            reception.raw,
            listing,
            origin=Message.Origin.SMTP,
            recipients=deliveries,
            provenance=(
                Provenance(
                    peer_dn=peer.dn,
                    peer_domain=peer.domain,
                    from_via=from_via(
                        listing.from_addr[:254], peer, domains, allowed=allowed, hosted=hosted
                    ),
                    resend_key=key,
                )
                if peer is not None
                else None
            ),
            event="message.received",
            details=reception.details,
            # A read or delivery report from a peer updates the original's timeline.
            then=functools.partial(mdn.apply_report, raw=reception.raw, peer=peer),
        )
    except IntegrityError:
        # The same resend on a parallel connection won the race: it is that message.
        existing = Message.objects.filter(resend_key=key).first() if key else None
        if existing is None:
            raise
        message = add_recipients(existing, deliveries)
    if key:
        stored[key] = message
    return message


def store_receptions(
    receptions: Sequence[Reception],
    *,
    domains: Iterable[str] | None = None,
    allowed: Allowed = listeblanche.peer_allowed,
    hosted: Callable[[str], bool] | None = None,
) -> list[Message | Exception]:
    """Store received messages in one transaction, one savepoint each; their outcomes in order.

    Each outcome is the stored Message (for a resend, the message it resends) or the
    exception that refused or failed that message alone: ReceptionError (no active
    recipient left), PolicyError (a charter rule), BlobStoreUnavailable, a database
    error. Whatever one message raises rolls back its own savepoint; the others commit.
    Two copies of one resend in the same group are one message.

    Called outside any transaction, it returns only once the transaction has committed,
    and raises (``NotCommitted`` or the database's error) when it did not: then nothing
    of the group is stored (their blobs are orphans for the collection). Work queued on
    commit that raises after it (tasks run eagerly) raises too, though the group is
    stored: its senders try again and their copies are resends. Nested in a caller's
    transaction, it commits with it.
    """
    outermost = not transaction.get_connection().in_atomic_block
    committed: list[bool] = []
    outcomes: list[Message | Exception] = []
    # The group's messages reach the workers together: one wake (or task) for all.
    with queue.batched(), transaction.atomic():
        transaction.on_commit(lambda: committed.append(True))
        # What the group reads, read once: the recipients' boxes and the messages it may
        # be resending.
        found = local_mailboxes([a for r in receptions for a in r.recipients], domains)
        keys = {r.key for r in receptions if r.key}
        stored = (
            {m.resend_key: m for m in Message.objects.filter(resend_key__in=keys)} if keys else {}
        )
        for reception in receptions:
            try:
                with transaction.atomic():
                    outcome: Message | Exception = _store_one(
                        reception, found, stored, domains=domains, allowed=allowed, hosted=hosted
                    )
            except Exception as exc:
                outcome = exc
            outcomes.append(outcome)
    if outermost and not committed:
        # A savepoint that could not be rolled back (the connection lost) made Django
        # roll the whole transaction back without raising.
        raise NotCommitted(f"{len(receptions)} received messages not committed")
    return outcomes


def receive_message(
    raw: bytes,
    mail_from: str,
    rcpt_tos: Sequence[str],
    *,
    peer: Peer | None = None,
    label: str = "",
    domains: Iterable[str] | None = None,
) -> Message:
    """Store a message received for local recipients and enqueue its scan (one transaction).

    Raises ReceptionError (an unknown or closed recipient) or PolicyError (a
    charter rule); nothing is stored then. ``peer``: the operator whose TLS session
    delivered it. The same bytes with the same MAIL FROM from the same peer (its 250
    was lost) give the stored message back, delivered once; anything else is a new
    message, and one peer's message is never handed to another's recipients.
    """
    reception = read_reception(raw, mail_from, rcpt_tos, peer=peer, label=label)
    [outcome] = store_receptions([reception], domains=domains)
    if isinstance(outcome, Exception):
        raise outcome
    return outcome
