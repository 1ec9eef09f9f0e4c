"""Receiving a message from another operator: the SMTP gateway's door into the store.

The SMTP gateway calls ``receive_message`` once the peer has sent DATA and
answers 250 only when it returns: by then ``store.store_message`` has stored the
raw MIME encrypted, committed the Message and one Delivery per local recipient,
and enqueued the scan. The raw bytes are kept exactly as received, even when the MIME is
broken (the reading side shows what it can).

What the peer's TLS session proved (its certificate, the domain it was accepted
for) is recorded on the Message at this point: resends are recognised by it, and
the display's "via" rests on it, never on what the message itself claims.
"""

from __future__ import annotations

import functools
import hashlib
import logging
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import replace

from django.conf import settings
from django.db import IntegrityError
from django.utils.translation import gettext as _

from mailboxes import addresses
from mailboxes.models import HostedDomain, Mailbox, Message
from mailboxes.selectors import hosted_domains
from mailboxes.services.peer import Peer
from mailboxes.services.store import Listing, Provenance, Recipient, add_recipients, store_message
from mailboxes.transport import mdn
from mssante.lib import mime
from trust import listeblanche, policy

log = logging.getLogger(__name__)


class ReceptionError(Exception):
    """A message from a peer that is refused; ``code`` is the SMTP reply code."""

    def __init__(self, message: str, *, code: int = 550, rule: str = "") -> None:
        super().__init__(message)
        self.code = code
        self.rule = rule


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
    boxes = Mailbox.objects.filter(address__in=wanted, status=Mailbox.Status.ACTIVE)
    if domains is not None:
        boxes = boxes.filter(domain__name__in=list(domains))
    else:
        boxes = boxes.filter(domain__active=True)
    return {
        box.address: box
        for box in boxes.select_related("domain")
        if box.domain.name == addresses.domain_of(box.address)
    }


def local_mailbox(address: str, domains: Iterable[str] | None = None) -> Mailbox | None:
    """The active mailbox at ``address`` in a domain we serve, else None."""
    try:
        address = addresses.normalise(address)
    except addresses.AddressError:
        return None
    return local_mailboxes([address], domains).get(address)


def _check_charter(raw: bytes, parsed: mime.ParsedMessage, recipients: list[str]) -> None:
    """The trust space's rules that apply to mail from outside (raises PolicyError)."""
    policy.check_recipient_count(len(recipients), exception_active=False)
    # What the patient reads counts, not only the envelope: a peer sending one message to
    # two patients as two transactions would otherwise show each the other's address.
    policy.check_patient_recipients(
        [*recipients, *(a for _n, a in parsed.to), *(a for _n, a in parsed.cc)],
        patient_domains=hosted_domains().patient,
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


def from_via(from_addr: str, peer: Peer | None, domains: Iterable[str] | None = None) -> str:
    """What to show after the sender as "via …", or "" when the From: domain is the peer's.

    The peer may write any From: it likes. It speaks for a domain only when the liste
    blanche lists its certificate for that domain (MAIL FROM's domain was checked so at
    MAIL); never for one of ours.
    """
    if peer is None:
        return ""
    domain = addresses.domain_of(from_addr.strip().lower()) if "@" in from_addr else ""
    if domain and not _hosted(domain, domains) and listeblanche.peer_allowed(domain, peer.subject):
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


def _recipients(
    rcpt_tos: Sequence[str], domains: Iterable[str] | None, *, gone_ok: bool = False
) -> tuple[list[str], dict[str, Mailbox | None]]:
    """The local mailboxes named by the envelope, in order (raises ReceptionError).

    ``gone_ok``: a recipient the gateway accepted at RCPT whose box closed since is kept
    with no box (its delivery bounces, the sender gets a DSN) as long as another
    recipient can still get the message: one closed box must not cost the others theirs.
    """
    recipients: list[str] = []
    boxes: dict[str, Mailbox | None] = {}
    found = local_mailboxes(rcpt_tos, domains)
    for address in rcpt_tos:
        try:
            normalised = addresses.normalise(address)
        except addresses.AddressError:
            normalised = ""
        box = found.get(normalised)
        if box is None and not (gone_ok and normalised):
            raise ReceptionError(
                _("Aucune boîte aux lettres active à l'adresse « %(address)s ».")
                % {"address": address[:254]},
                code=550,
                rule="unknown_recipient",
            )
        if normalised not in boxes:
            boxes[normalised] = box
            recipients.append(normalised)
    if not recipients:
        raise ReceptionError(_("Aucun destinataire."), code=554)
    if not any(boxes.values()):
        raise ReceptionError(
            _("Aucune boîte aux lettres active à l'adresse « %(address)s ».")
            % {"address": recipients[0]},
            code=550,
            rule="unknown_recipient",
        )
    return recipients, boxes


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
    recipients, boxes = _recipients(rcpt_tos, domains, gone_ok=peer is not None)
    deliveries = [Recipient(address, boxes[address]) for address in recipients]
    sender = "" if mail_from in ("", "<>") else mail_from.strip().lower()
    key = resend_key(raw, sender, peer)
    if key:
        existing = Message.objects.filter(resend_key=key).first()
        if existing is not None:
            return add_recipients(existing, deliveries)

    parsed = mime.parse_message(raw)
    _check_charter(raw, parsed, recipients)
    listing = Listing.of(parsed, fallback_id=f"<{uuid.uuid4().hex}@{settings.SMTP_HOSTNAME}>")
    listing = replace(listing, from_addr=listing.from_addr or sender, sender_addr=sender)
    try:
        return store_message(
            raw,
            listing,
            origin=Message.Origin.SMTP,
            recipients=deliveries,
            provenance=(
                Provenance(
                    peer_dn=peer.dn,
                    peer_domain=peer.domain,
                    from_via=from_via(listing.from_addr[:254], peer, domains),
                    resend_key=key,
                )
                if peer is not None
                else None
            ),
            event="message.received",
            details={
                "origin": Message.Origin.SMTP,
                "peer": label[:300],
                "mail_from": sender,
                "recipients": len(recipients),
                "size": len(raw),
                "attachments": len(parsed.attachments),
                "defects": len(parsed.defects),
            },
            # A read or delivery report from a peer updates the original's timeline.
            then=functools.partial(mdn.apply_report, raw=raw, peer=peer),
        )
    except IntegrityError:
        # The same resend on a parallel connection won the race: it is that message.
        existing = Message.objects.filter(resend_key=key).first() if key else None
        if existing is None:
            raise
        return add_recipients(existing, deliveries)
