"""Submitting a message and reading it back."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from email.utils import parseaddr
from typing import TYPE_CHECKING

from django.conf import settings
from django.utils import timezone
from django.utils.translation import gettext as _

from accounts.models import User
from mailboxes import addresses, blobs, hooks
from mailboxes.models import Entry, HostedDomain, Mailbox, Message
from mailboxes.selectors import Access, closed_addresses, hosted_domains
from mailboxes.services.errors import SubmissionError
from mailboxes.services.rights import authorise
from mailboxes.services.sharing import sender_for
from mailboxes.services.store import (
    Listing,
    Recipient,
    header_block_of,
    store_message,
    xdm_patient_ins,
)
from mssante.lib import crypto, mime
from trust import listeblanche
from trust import submission as trust_checks
from trust.policy import PolicyError

if TYPE_CHECKING:
    from django.http import HttpRequest

log = logging.getLogger(__name__)


def human_size(n: int) -> str:
    return mime.human_size(n)


def _recipients(
    to: Sequence[str], cc: Sequence[str], bcc: Sequence[str] = ()
) -> tuple[list[str], list[str], list[str]]:
    """Normalised, deduplicated To, Cc and Bcc lists (an address already listed is dropped)."""
    seen: set[str] = set()
    out: tuple[list[str], list[str], list[str]] = ([], [], [])
    for target, values in zip(out, (to, cc, bcc), strict=True):
        for raw in values:
            if not (raw or "").strip():
                continue
            try:
                address = addresses.normalise(raw)
            except addresses.AddressError:
                raise SubmissionError(
                    _("L'adresse « %(address)s » n'est pas une adresse valide.")
                    % {"address": raw.strip()}
                ) from None
            if address not in seen:
                seen.add(address)
                target.append(address)
    return out


def _recipient_mailboxes(recipients: list[str]) -> dict[str, Mailbox]:
    domains = {d.name: d for d in HostedDomain.objects.filter(active=True)}
    boxes = {m.address: m for m in Mailbox.objects.filter(address__in=recipients)}
    for address in recipients:
        if addresses.domain_of(address) not in domains:
            # Another operator's domain: delivered over SMTP (mailboxes.transport), and
            # only when the liste blanche lists it.
            if listeblanche.is_listed(addresses.domain_of(address)):
                boxes.pop(address, None)
                continue
            raise SubmissionError(
                _(
                    "Le destinataire « %(address)s » est hors de l'espace de confiance "
                    "MSSanté : son domaine n'est ni hébergé ici ni inscrit sur la liste blanche."
                )
                % {"address": address}
            )
        box = boxes.get(address)
        if box is None:
            raise SubmissionError(
                _("Aucune boîte aux lettres n'existe à l'adresse « %(address)s ».")
                % {"address": address}
            )
        if not box.is_active:
            raise SubmissionError(
                _("La boîte aux lettres « %(address)s » est fermée.") % {"address": address}
            )
    return boxes


def _references(parent: Message) -> list[str]:
    try:
        refs = list(parse(parent).references)
    except crypto.BlobIntegrityError:
        # A damaged parent still yields a usable thread: its root and itself.
        refs = [f"<{parent.thread_key}>"]
    return [*refs, parent.message_id][-20:]


def _patient_fields(
    extra_headers: dict[str, str] | None,
    recipients: Sequence[str],
    attachments: Sequence[mime.Attachment] = (),
) -> dict:
    """Columns of a new Message the patient space reads: closed, and the patient's INS.

    The INS is the patient box's among the recipients, else the one the structured
    documents (IHE_XDM.ZIP) name: a lab's results to a doctor are grouped by patient.
    """
    headers = {k.lower(): v for k, v in (extra_headers or {}).items()}
    patients = [a for a in recipients if addresses.is_patient_address(a)]
    ins = patients[0].partition("@")[0].upper()[:15] if patients else ""
    if not ins and attachments:
        ins = xdm_patient_ins([(a.filename, a.data) for a in attachments])
    return {
        "conversation_closed": headers.get("x-mss-mes", "").strip().upper() == "FIN",
        "patient_ins": ins,
    }


def submit_message(
    *,
    mailbox: Mailbox,
    author: User | None,
    to: list[str],
    cc: list[str],
    subject: str,
    text: str,
    html: str | None = None,
    attachments: Sequence[mime.Attachment] = (),
    in_reply_to: Message | None = None,
    extra_headers: dict[str, str] | None = None,
    origin: str = Message.Origin.WEB,
    request: HttpRequest | None = None,
    mark_answered: bool = True,
    bcc: Sequence[str] = (),
    resend_key: str = "",
) -> Message:
    """Check, encrypt and store a message with its deliveries, then enqueue its scan.

    ``author`` is the person sending (None for the platform: API, gateway, commands); they
    need the send right in ``mailbox``. ``in_reply_to`` must be a message of that box: a
    reply never joins the conversation of a box the sender cannot read (the patient rules
    read the conversation from it). ``mark_answered`` False: an out-of-office reply does not
    mark the message it answers as answered by the person.
    ``bcc``: recipients delivered like the others and
    counted in every limit, never written in the message (no ``Bcc:`` header): the
    sender's copy shows them from its deliveries.
    """
    authorise(author, mailbox, Access.SEND)
    if not mailbox.is_active:
        raise SubmissionError(_("Votre boîte aux lettres est fermée : l'envoi est impossible."))
    to_list, cc_list, bcc_list = _recipients(to, cc, bcc)
    recipients = to_list + cc_list + bcc_list
    if not recipients:
        raise SubmissionError(_("Indiquez au moins un destinataire."))
    try:
        # The trust space's rules (trust space, limits, closed boxes, sanctions,
        # attachments), at every entrance; refusals are journalled with their rule.
        trust_checks.check_submission(
            mailbox=mailbox,
            author=author,
            recipients=recipients,
            domains=hosted_domains(),
            closed=closed_addresses(recipients),
            attachments=attachments,
            origin=origin,
            request=request,
        )
    except PolicyError as exc:
        raise SubmissionError(str(exc)) from None
    # The rules the apps above add (patients: a patient only answers; unknown INS).
    for rule in hooks.submission_rules():
        rule(mailbox=mailbox, recipients=recipients, in_reply_to=in_reply_to, author=author)
    if (
        in_reply_to is not None
        and not Entry.objects.filter(mailbox=mailbox, message=in_reply_to).exists()
    ):
        raise SubmissionError(_("Le message auquel vous répondez n'est pas dans cette boîte."))
    boxes = _recipient_mailboxes(recipients)
    limit = settings.MESSAGE_MAX_ATTACHMENTS
    if len(attachments) > limit:
        raise SubmissionError(
            _("Trop de pièces jointes : %(count)d, au plus %(limit)d par message.")
            % {"count": len(attachments), "limit": limit}
        )
    max_bytes = settings.MESSAGE_MAX_BYTES
    # Cheap early refusal before building: base64 makes the message at least this big.
    payload = (
        sum(len(a.data) for a in attachments) + len(text.encode()) + len((html or "").encode())
    )
    if payload > max_bytes:
        raise SubmissionError(
            _("Message trop volumineux : %(size)s, au plus %(limit)s.")
            % {"size": human_size(payload), "limit": human_size(max_bytes)}
        )

    now = timezone.now()
    # A delegate or a member of a shared box: From is the box, Sender the person.
    sender = sender_for(mailbox, author)
    outgoing = mime.OutgoingMessage(
        sender=sender,
        from_addr=mailbox.address,
        from_name=mailbox.display_name,
        to=to_list,
        cc=cc_list,
        subject=subject.strip(),
        text=text,
        html=html,
        attachments=list(attachments),
        in_reply_to=in_reply_to.message_id if in_reply_to else None,
        references=_references(in_reply_to) if in_reply_to else [],
        extra_headers=dict(extra_headers or {}),
    )
    try:
        message_id, raw = mime.build_message(outgoing, domain=mailbox.domain.name, now=now)
    except ValueError as exc:
        raise SubmissionError(
            _("Message impossible à construire : %(error)s") % {"error": exc}
        ) from None
    if len(raw) > max_bytes:
        raise SubmissionError(
            _("Message trop volumineux : %(size)s une fois encodé, au plus %(limit)s.")
            % {"size": human_size(len(raw)), "limit": human_size(max_bytes)}
        )
    try:
        # What every reader (ours, the peer's) will have to parse stays within bounds.
        mime.check_limits(raw)
    except mime.MimeLimitError as exc:
        raise SubmissionError(_(exc.template) % exc.params) from None
    # The attachment indices that get_part() understands come from parsing the
    # built message; a message without attachments has nothing to list.
    listed = mime.parse_message(raw).attachments if attachments else []
    thread = in_reply_to.thread_key if in_reply_to else mime.thread_key(message_id, None, None)

    return store_message(
        raw,
        Listing(
            message_id=message_id,
            thread_key=thread,
            in_reply_to=in_reply_to.message_id if in_reply_to else "",
            from_addr=mailbox.address,
            from_name=mailbox.display_name,
            sender_addr=parseaddr(sender)[1] if sender else "",
            sender_name=parseaddr(sender)[0] if sender else "",
            to_addrs=to_list,
            cc_addrs=cc_list,
            subject=outgoing.subject,
            date=now,
            attachments=listed,
            # X-MSS-MES: FIN, and the patient's INS when a patient box is a recipient.
            **_patient_fields(extra_headers, recipients, attachments),
            automatic=mime.is_automatic(
                *(
                    {k.lower(): v for k, v in (extra_headers or {}).items()}.get(name)
                    for name in ("auto-submitted", "list-id", "precedence")
                )
            ),
        ),
        origin=origin,
        recipients=[
            Recipient(address, boxes.get(address), remote=address not in boxes)
            for address in recipients
        ],
        author=author,
        sender_mailbox=mailbox,
        sent_copy=True,
        answers=in_reply_to if mark_answered else None,
        event="message.submitted",
        details={
            "mailbox": mailbox.address,
            "recipients": len(recipients),
            "size": len(raw),
            "attachments": len(listed),
            "origin": origin,
        },
        request=request,
        resend_key=resend_key,
    )


def read_raw(message: Message) -> bytes:
    """The message's raw MIME, decrypted; ``BlobIntegrityError`` if the blob was altered."""
    try:
        return blobs.read(message.blob_name, message.key_id, message.wrapped_key)
    except crypto.BlobIntegrityError as exc:
        log.error("message %s: stored blob cannot be opened: %s", message.public_id, exc)
        raise type(exc)(f"message {message.public_id} cannot be read: {exc}") from None


def header_bytes(message: Message) -> bytes:
    """The raw header block (sealed column); a message stored before it is filled now."""
    if message.header_block is None:
        block = header_block_of(read_raw(message))
        message.header_block = block.decode("latin-1")
        Message.objects.filter(pk=message.pk).update(header_block=message.header_block)
        return block
    return str(message.header_block).encode("latin-1")


def parse(message: Message) -> mime.ParsedMessage:
    """The parsed message (cached on the instance)."""
    cached = getattr(message, "_parsed_cache", None)
    if cached is None:
        cached = mime.parse_message(read_raw(message))
        message._parsed_cache = cached  # type: ignore[attr-defined]
    return cached
