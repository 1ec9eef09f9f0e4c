"""The one way a message is stored, whatever door it came through.

Web, API and command-line submission (``messages.submit_message``), mail from another
operator (``inbound.receive_message``), the reports we send (read receipts in
``transport.mdn``, delivery status notifications in ``transport.dsn``) and the
platform's notices (the quarantine notice) all end in ``store_message``. The doors
check what they must (rights, the charter, sizes, resends) and build or receive the
raw MIME; what differs between them is said by the parameters, never by another copy
of this code. Every door keeps the same promises to its sender:

- the raw MIME is sealed and written durably (fsynced, ``mailboxes.blobs``) before the
  transaction that names it commits, and deleted if that transaction does not commit;
  what a crash leaves in between is an unreferenced blob that the orphan collection
  removes, never a message without its body;
- the Message, one Delivery per recipient, the sender's Sent copy and the journal
  event commit together, or none of them does;
- work is enqueued only once committed, ids only: the scan, or for what the platform
  wrote itself the deliveries; the sweeper re-enqueues what a lost broker message
  dropped;
- the door answers its sender (a page, an API 201, an SMTP 250) only after this
  returns and its own transaction, when it has one, has committed.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from django.db import transaction
from django.utils import timezone

from accounts.models import User
from audit import journal
from mailboxes import blobs, search
from mailboxes.models import Delivery, Entry, Folder, Mailbox, Message
from mailboxes.services import queue
from mailboxes.services.mailbox import system_folder_id
from mssante.lib import mime, xdm

if TYPE_CHECKING:
    from django.http import HttpRequest


def _aware(value: datetime | None) -> datetime | None:
    """A Date: header in UTC, or None when it cannot be one.

    A zone like ``-2359`` is valid RFC 5322 but out of PostgreSQL's range (±15:59):
    stored as written it failed the whole transaction, so a peer was told 451 on
    every retry until it gave up. In UTC any zone fits.
    """
    if value is None:
        return None
    if timezone.is_naive(value):
        value = value.replace(tzinfo=UTC)
    try:
        return value.astimezone(UTC)
    except (OverflowError, ValueError):
        return None


@dataclass(frozen=True)
class Listing:
    """The message's clear columns: what lists, search and threads read without decrypting.

    Everything else (bodies, attachment bytes) exists only in the sealed blob.
    """

    message_id: str
    thread_key: str
    from_addr: str
    from_name: str = ""
    sender_addr: str = ""
    sender_name: str = ""
    to_addrs: Sequence[str] = ()
    cc_addrs: Sequence[str] = ()
    subject: str = ""
    in_reply_to: str = ""
    # None: the time it is stored.
    date: datetime | None = None
    attachments: Sequence[mime.ParsedPart] = ()
    conversation_closed: bool = False
    patient_ins: str = ""
    # Written by a program (RFC 3834): never answered by an out-of-office reply.
    automatic: bool = False

    @classmethod
    def of(cls, parsed: mime.ParsedMessage, *, fallback_id: str = "") -> Listing:
        """The columns as the message's own headers give them (a peer's, or a report's).

        ``fallback_id``: the Message-ID to record when the message has none.
        """
        message_id = parsed.message_id or fallback_id
        return cls(
            message_id=message_id,
            thread_key=mime.thread_key(message_id, parsed.in_reply_to, parsed.references),
            in_reply_to=parsed.in_reply_to or "",
            from_addr=parsed.from_[1].strip().lower(),
            from_name=parsed.from_[0],
            # A header may name any number of people; the row keeps the first hundred.
            to_addrs=[a for _n, a in parsed.to][:100],
            cc_addrs=[a for _n, a in parsed.cc][:100],
            subject=parsed.subject,
            date=_aware(parsed.date),
            attachments=parsed.attachments,
            conversation_closed=parsed.headers.get("X-MSS-MES", "").strip().upper() == "FIN",
            automatic=parsed.automatic,
        )


def xdm_patient_ins(parts: Sequence[tuple[str, bytes | None]]) -> str:
    """The patient's INS named by the first readable IHE_XDM.ZIP among ``parts``, or "".

    ``parts``: (file name, bytes) of a message's attachments. The doctor's list groups the
    results of applicative boxes by patient on ``Message.patient_ins``; a package that
    does not open names no one (it is shown, and refused, when read).
    """
    for filename, data in parts:
        if (filename or "").upper() != xdm.FILENAME or not data:
            continue
        try:
            ins = xdm.patient_ins(xdm.read(data))
        except xdm.XdmError:
            continue
        if ins:
            return ins
    return ""


def xdm_patient_ins_of_raw(raw: bytes, attachments: Sequence[mime.ParsedPart]) -> str:
    """``xdm_patient_ins`` for a received message: only its IHE_XDM.ZIP part is decoded."""
    parts = []
    for part in attachments:
        if (part.filename or "").upper() == xdm.FILENAME:
            try:
                parts.append((part.filename, mime.get_part(raw, part.index).data))
            except mime.PartNotFoundError:
                continue
    return xdm_patient_ins(parts)


@dataclass(frozen=True)
class Recipient:
    """One Delivery: a box of ours (``mailbox``) or another operator's address (``remote``).

    A box of ours that closed after its door accepted it is kept with no mailbox: its
    delivery bounces and the sender is told.
    """

    address: str
    mailbox: Mailbox | None = None
    remote: bool = False


@dataclass(frozen=True)
class Provenance:
    """What the TLS session of the operator that delivered a message proved, kept at reception.

    ``resend_key`` makes the same bytes from the same certificate with the same MAIL FROM
    one message (unique among messages; see ``inbound.resend_key``).
    """

    peer_dn: str
    peer_domain: str = ""
    from_via: str = ""
    resend_key: str = ""


def _deliveries(message: Message, recipients: Sequence[Recipient], now: datetime) -> list[Delivery]:
    """Queued, due one retry delay from now: the sweeper's safety net if the broker loses them."""
    due = now + queue.retry_delay()
    return [
        Delivery(
            message=message,
            recipient=r.address,
            mailbox=r.mailbox,
            remote=r.remote,
            next_attempt_at=due,
        )
        for r in recipients
    ]


def _enqueue_stored(message_pk: int) -> None:
    """The stored message's work, once committed: one task scans it and delivers it."""
    queue.enqueue_processing([message_pk])


def header_block_of(raw: bytes) -> bytes:
    """The message's header block as it is stored: up to and with the blank line."""
    for blank in (b"\r\n\r\n", b"\n\n"):
        end = raw.find(blank)
        if end >= 0:
            return raw[: end + len(blank)]
    return raw


def store_message(
    raw: bytes,
    listing: Listing,
    *,
    origin: str,
    recipients: Sequence[Recipient],
    event: str,
    details: Mapping[str, Any] | None = None,
    author: User | None = None,
    sender_mailbox: Mailbox | None = None,
    sent_copy: bool = False,
    answers: Message | None = None,
    scan: bool = True,
    null_return_path: bool = False,
    provenance: Provenance | None = None,
    request: HttpRequest | None = None,
    then: Callable[[Message], object] | None = None,
    resend_key: str = "",
) -> Message:
    """Seal ``raw``, store it with its deliveries in one transaction, journal it, enqueue its work.

    - ``origin``, ``author`` (who submitted it, None for the platform and peers) and
      ``sender_mailbox`` (the box of ours it leaves from, None for mail from outside);
    - ``recipients``: one Delivery each, queued for the pipeline;
    - ``sent_copy``: file a read copy in ``sender_mailbox``'s Sent folder; ``answers``:
      the message of that box it replies to, marked answered;
    - ``scan``: False for what the platform wrote itself from our own text and headers
      (notices, DSNs): nothing to scan, ``not_scanned`` (never "clean"), its deliveries
      enqueued at once;
    - ``null_return_path``: a report, leaving with ``MAIL FROM:<>`` and never reported on;
    - ``provenance``: for mail from another operator, what its TLS session proved;
    - ``event`` and ``details``: the journal event (counts and ids, never content);
    - ``then``: writes that must commit with the message (a report applied to its
      original), called inside the transaction;
    - ``resend_key``: for our own doors, what makes a second sending of the same thing
      (a compose page sent again after a lost answer) fail on the unique key.

    Nested in a caller's transaction (a draft sent, an API key recorded, a bounce), it
    commits with it; a caller that rolls back leaves an orphan blob for the collection.
    Raises ``BlobStoreUnavailable`` when the blob cannot be written: nothing is stored.
    """
    now = timezone.now()
    blob_name = blobs.new_name("messages")
    sealed = blobs.write(blob_name, raw)
    committed: list[bool] = []
    try:
        with transaction.atomic():
            # First of the on-commit callbacks: those after it may raise (a task run
            # eagerly), and must not take the committed message's blob with them.
            transaction.on_commit(lambda: committed.append(True))
            message = Message.objects.create(
                message_id=listing.message_id[:255],
                thread_key=listing.thread_key[:255],
                in_reply_to=listing.in_reply_to[:255],
                sender_mailbox=sender_mailbox,
                submitted_by=author,
                from_addr=listing.from_addr[:254],
                from_name=listing.from_name[:200],
                sender_addr=listing.sender_addr[:254],
                sender_name=listing.sender_name[:200],
                to_addrs=list(listing.to_addrs),
                cc_addrs=list(listing.cc_addrs),
                subject=listing.subject[:998],
                date=listing.date or now,
                size=len(raw),
                header_block=header_block_of(raw).decode("latin-1"),
                attachments=[
                    {
                        "index": p.index,
                        "filename": p.filename,
                        "content_type": p.content_type,
                        "size": p.size,
                    }
                    for p in listing.attachments
                ],
                patient_ins=listing.patient_ins,
                conversation_closed=listing.conversation_closed,
                origin=origin,
                scan_status=(
                    Message.ScanStatus.PENDING if scan else Message.ScanStatus.NOT_SCANNED
                ),
                null_return_path=null_return_path,
                automatic=listing.automatic or null_return_path,
                peer_dn=provenance.peer_dn[:500] if provenance else "",
                peer_domain=provenance.peer_domain[:253] if provenance else "",
                from_via=provenance.from_via[:253] if provenance else "",
                resend_key=provenance.resend_key if provenance else resend_key,
                blob_name=blob_name,
                key_id=sealed.key_id,
                wrapped_key=sealed.wrapped_key,
                created_at=now,
            )
            deliveries = Delivery.objects.bulk_create(_deliveries(message, recipients, now))
            if sent_copy and sender_mailbox is not None:
                Entry.objects.create(
                    mailbox=sender_mailbox,
                    message=message,
                    folder_id=system_folder_id(sender_mailbox.pk, Folder.Role.SENT),
                    seen=True,
                    received_at=now,
                    # A message to scan is read once, in the worker, for the sender's
                    # copy and the recipients alike (search.index_sent_copies); one
                    # that is not scanned has no such step: its copy is indexed now.
                    search_tokens=(
                        [] if scan else search.terms_tokens(sender_mailbox.pk, search.terms_of(raw))
                    ),
                )
            if answers is not None and sender_mailbox is not None:
                Entry.objects.filter(mailbox=sender_mailbox, message=answers).update(answered=True)
            journal.record(event, actor=author, obj=message, request=request, **dict(details or {}))
            if then is not None:
                then(message)
            if scan or deliveries:
                transaction.on_commit(functools.partial(_enqueue_stored, message.pk))
    except BaseException:
        if not committed:
            # The row that would have pointed to the blob was never committed.
            blobs.delete(blob_name)
        raise
    return message


def add_recipients(message: Message, recipients: Sequence[Recipient]) -> Message:
    """A resend of a stored message: deliveries for the recipients it does not have yet."""
    now = timezone.now()
    with transaction.atomic():
        # The unique (message, recipient) constraint skips those it has.
        Delivery.objects.bulk_create(_deliveries(message, recipients, now), ignore_conflicts=True)
        journal.record("message.resent", obj=message, recipients=len(recipients))
        # The scan of a judged message enqueues its pending deliveries (the new ones).
        transaction.on_commit(functools.partial(_enqueue_stored, message.pk))
    return message
