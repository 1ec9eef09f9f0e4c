"""Reads of the patient space, all confined to the logged-in patient's own box."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from django.db.models import Q
from django.http import Http404

from accounts.models import PatientIdentity, User
from mailboxes.models import Delivery, Entry, Folder, Mailbox, Message
from patients import services


def patient_box(user: User) -> Mailbox | None:
    return services.patient_mailbox(user)


def get_entry(user: User, entry_id: int) -> Entry:
    """An entry of the patient's own box, or 404 (another patient's message does not exist)."""
    entry = (
        Entry.objects.select_related("message", "mailbox", "folder")
        .filter(
            pk=entry_id,
            mailbox__owner=user,
            mailbox__kind=Mailbox.Kind.PATIENT,
        )
        .exclude(folder__role=Folder.Role.TRASH)
        .first()
    )
    if entry is None:
        raise Http404
    return entry


@dataclass
class Conversation:
    """One conversation of the patient's inbox, as the list shows it."""

    latest: Entry
    first_received: Entry
    count: int
    unread: int
    closed: bool = False


@dataclass
class Correspondent:
    """A professional or establishment and its conversations with the patient, newest first."""

    address: str
    name: str
    conversations: list[Conversation] = field(default_factory=list)
    unread: int = 0

    @property
    def latest(self) -> datetime:
        return self.conversations[0].latest.received_at


def correspondents(box: Mailbox) -> list[Correspondent]:
    """Conversations grouped by the professional who opened them, most recent group first."""
    entries = list(
        Entry.objects.select_related("message")
        .filter(mailbox=box)
        .exclude(folder__role=Folder.Role.TRASH)
        .defer("message__wrapped_key", "message__key_id", "message__blob_name")
        .order_by("-received_at", "-pk")
    )
    threads: dict[str, list[Entry]] = {}
    for entry in entries:
        threads.setdefault(entry.message.thread_key or str(entry.message_id), []).append(entry)
    closed_keys = set(
        box.closed_conversations.filter(thread_key__in=list(threads)).values_list(
            "thread_key", flat=True
        )
    )
    groups: dict[str, Correspondent] = {}
    for key, items in threads.items():
        received = [e for e in items if e.message.sender_mailbox_id != box.pk]
        if not received:
            # Only the patient's own messages (cannot happen through the rules): not a
            # conversation a professional opened, nothing to show.
            continue
        opener = received[-1]
        conversation = Conversation(
            latest=items[0],
            first_received=received[0],
            count=len(items),
            unread=sum(1 for e in received if not e.seen),
            closed=key in closed_keys or any(e.message.conversation_closed for e in received),
        )
        address = opener.message.from_addr.lower()
        group = groups.get(address)
        if group is None:
            group = groups[address] = Correspondent(
                address=address, name=opener.message.from_name or address
            )
        group.conversations.append(conversation)
        group.unread += conversation.unread
    for group in groups.values():
        group.conversations.sort(key=lambda c: c.latest.received_at, reverse=True)
    return sorted(groups.values(), key=lambda g: g.latest, reverse=True)


def unread_count(box: Mailbox) -> int:
    return (
        Entry.objects.filter(mailbox=box, seen=False)
        .exclude(folder__role=Folder.Role.TRASH)
        .exclude(message__sender_mailbox=box)
        .count()
    )


def thread(entry: Entry) -> list[Entry]:
    """The conversation of ``entry`` in the patient's box, oldest first."""
    return list(
        Entry.objects.select_related("message")
        .filter(mailbox_id=entry.mailbox_id, message__thread_key=entry.message.thread_key)
        .exclude(folder__role=Folder.Role.TRASH)
        .order_by("message__date", "pk")
    ) or [entry]


@dataclass
class Exchange:
    """One message concerning the patient, as "Mes échanges de données" lists it."""

    message: Message
    received: bool
    sent_by_patient: bool
    recipients: list[str]
    documents: list[dict[str, str]]


def exchanges(user: User, box: Mailbox | None) -> list[Exchange]:
    """Every message concerning the patient: to or from their box, or naming their INS.

    A message naming the INS between professionals shows who, when and the kind of
    documents — its subject and content are not the patient's to read.
    """
    identity = PatientIdentity.objects.filter(user=user).first()
    condition = Q(pk__in=[])
    if box is not None:
        condition |= Q(deliveries__mailbox=box) | Q(sender_mailbox=box)
    if identity is not None:
        # Only from a professional of this operator (a box of ours that is not a patient's).
        condition |= Q(patient_ins=identity.ins, sender_mailbox__isnull=False) & ~Q(
            sender_mailbox__kind=Mailbox.Kind.PATIENT
        )
    messages = list(
        Message.objects.filter(condition)
        .distinct()
        .defer("wrapped_key", "key_id", "blob_name")
        .order_by("-date", "-pk")[:500]
    )
    received_ids: set[int] = set()
    if box is not None:
        received_ids = set(
            Delivery.objects.filter(
                mailbox=box, message_id__in=[m.pk for m in messages]
            ).values_list("message_id", flat=True)
        )
    out = []
    for m in messages:
        mine = box is not None and m.sender_mailbox_id == box.pk
        out.append(
            Exchange(
                message=m,
                received=m.pk in received_ids,
                sent_by_patient=mine,
                recipients=list(m.to_addrs or []) + list(m.cc_addrs or []),
                documents=[
                    {
                        "filename": str(a.get("filename", "")),
                        "content_type": str(a.get("content_type", "")),
                    }
                    for a in (m.attachments or [])
                    if isinstance(a, dict)
                ],
            )
        )
    return out


# --- Professional side -------------------------------------------------------------------


@dataclass
class PatientThread:
    """What a professional sees of a conversation with a patient: who, closed, read when."""

    box: Mailbox
    identity: PatientIdentity | None
    closed: bool
    # What the professional's box sent the patient in this conversation, and when it was read.
    deliveries: list[Delivery] = field(default_factory=list)


def patient_threads(entry: Entry) -> list[PatientThread]:
    """The patient boxes the entry's own box exchanged with in this conversation.

    Only the box's own exchanges: a professional copied in a colleague's conversation with
    a patient (or sent a message reusing its references) learns nothing of that patient.
    """
    key = entry.message.thread_key
    if not key or entry.mailbox.kind == Mailbox.Kind.PATIENT:
        return []
    box_ids = set(
        Delivery.objects.filter(
            message__thread_key=key,
            message__sender_mailbox=entry.mailbox,
            mailbox__kind=Mailbox.Kind.PATIENT,
        ).values_list("mailbox_id", flat=True)
    ) | set(
        Delivery.objects.filter(
            message__thread_key=key,
            message__sender_mailbox__kind=Mailbox.Kind.PATIENT,
            mailbox=entry.mailbox,
        ).values_list("message__sender_mailbox_id", flat=True)
    )
    out = []
    for box in Mailbox.objects.select_related("owner__patient").filter(pk__in=box_ids):
        _opened, closed = services.conversation_state(box, key)
        identity = getattr(box.owner, "patient", None) if box.owner else None
        sent = list(
            Delivery.objects.select_related("message")
            .filter(message__thread_key=key, mailbox=box, message__sender_mailbox=entry.mailbox)
            .order_by("message__date", "pk")
        )
        out.append(PatientThread(box, identity, closed, sent))
    return out
