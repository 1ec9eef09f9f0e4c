"""Reads for the webmail views and the API: every lookup is confined to the user's mailboxes."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import IntEnum
from typing import TYPE_CHECKING, Any

from django.conf import settings
from django.core.exceptions import PermissionDenied
from django.db.models import DateTimeField, F, Field, Func, OuterRef, Q, QuerySet, Subquery, Value
from django.db.models.functions import Coalesce
from django.db.models.lookups import GreaterThan, LessThan
from django.http import Http404
from django.utils import timezone

from accounts.models import PatientIdentity, User
from mailboxes import addresses, fields
from mailboxes import search as search_index
from mailboxes.models import (
    AccessEvent,
    ApiAgreement,
    Delivery,
    Draft,
    DraftAttachment,
    Entry,
    Folder,
    FolderCounter,
    HostedDomain,
    Mailbox,
    Membership,
    Message,
)
from trust.policy import HostedDomains

if TYPE_CHECKING:
    from uuid import UUID

PAGE_SIZE = 50
# A page of search results (keyset pagination, like a folder's).
SEARCH_LIMIT = PAGE_SIZE

# System folders first, in the order every webmail shows them; custom ones follow by name.
_ROLE_ORDER: dict[str, int] = {
    Folder.Role.INBOX: 0,
    Folder.Role.DRAFTS: 1,
    Folder.Role.SENT: 2,
    Folder.Role.ARCHIVE: 3,
    Folder.Role.TRASH: 4,
    Folder.Role.CUSTOM: 5,
}


# --------------------------------------------------------------------------- mailboxes


class Access(IntEnum):
    """What a user may do in a mailbox, each level including the ones below it."""

    READ = 1  # read, move, flag (a member or delegate with role "read")
    SEND = 2  # also send from the box
    MANAGE = 3  # also add and remove members (ORG members with role "manage")
    HOLDER = 4  # the PER/PAT holder or the ORG/APP responsible: also the access journal


_ROLE_ACCESS: dict[str, Access] = {
    Membership.Role.READ: Access.READ,
    Membership.Role.SEND: Access.SEND,
    Membership.Role.MANAGE: Access.MANAGE,
}


def live_memberships(now: datetime | None = None) -> QuerySet[Membership]:
    """Grants neither revoked nor expired at ``now``: the only ones that open a mailbox."""
    now = now or timezone.now()
    return Membership.objects.filter(revoked_at__isnull=True).filter(
        Q(expires_at__isnull=True) | Q(expires_at__gt=now)
    )


def accessible_mailboxes(user: User | Any) -> QuerySet[Mailbox]:
    """Mailboxes the user may read: their own, those they are responsible for, live grants.

    This is the single place deciding it. It reads the memberships at every call
    (never a copy in the session), so a member removed while logged in loses the
    box at their next request.
    """
    if not getattr(user, "is_authenticated", False):
        return Mailbox.objects.none()
    # One UNION of three index lookups (owner, responsible, live grants) rather than an
    # OR the database can only answer by reading every mailbox: the cost of a page does
    # not grow with the number of boxes the operator hosts.
    own = Mailbox.objects.filter(owner=user).order_by().values("pk")
    responsible = (
        Mailbox.objects.filter(
            responsible=user, kind__in=[Mailbox.Kind.ORGANISATIONAL, Mailbox.Kind.APPLICATIVE]
        )
        .order_by()
        .values("pk")
    )
    granted = live_memberships().filter(user=user).order_by().values("mailbox_id")
    return Mailbox.objects.filter(pk__in=own.union(responsible, granted, all=True))


def access(user: User | Any, mailbox: Mailbox) -> Access | None:
    """The user's level in this mailbox, or None when they may not see it."""
    if not getattr(user, "is_authenticated", False):
        return None
    if mailbox.owner_id is not None and mailbox.owner_id == user.pk:
        return Access.HOLDER
    if mailbox.responsible_id == user.pk and mailbox.kind in (
        Mailbox.Kind.ORGANISATIONAL,
        Mailbox.Kind.APPLICATIVE,
    ):
        return Access.HOLDER
    role = (
        live_memberships().filter(user=user, mailbox=mailbox).values_list("role", flat=True).first()
    )
    return _ROLE_ACCESS.get(role) if role else None


def require(user: User | Any, mailbox: Mailbox, need: Access) -> Access:
    """The user's level, at least ``need``: 404 for a stranger, 403 for a member short of it."""
    level = access(user, mailbox)
    if level is None:
        raise Http404
    if level < need:
        raise PermissionDenied
    return level


def default_mailbox(user: User | Any) -> Mailbox | None:
    """The mailbox the webmail opens on: the user's own nominative one first."""
    own = Mailbox.objects.filter(owner=user, kind=Mailbox.Kind.PERSONAL).order_by("address")
    personal = own.first() if getattr(user, "is_authenticated", False) else None
    return personal or accessible_mailboxes(user).order_by("-kind", "address").first()


def get_mailbox(user: User | Any, mailbox_id: int, need: Access = Access.READ) -> Mailbox:
    """The mailbox with this id among the user's, or 404 (403 when their role falls short)."""
    mailbox = accessible_mailboxes(user).filter(pk=mailbox_id).first()
    if mailbox is None:
        raise Http404
    if need > Access.READ:
        require(user, mailbox, need)
    return mailbox


@dataclass(frozen=True, slots=True)
class SwitcherItem:
    """One mailbox in the switcher: the box, its unread count in the inbox, the user's role."""

    mailbox: Mailbox
    unread: int
    own: bool


def switcher(user: User | Any) -> list[SwitcherItem]:
    """Every mailbox the user may open, own box first, with unread counts (one query).

    The counts are read from the inboxes' counters (FolderCounter), never counted.
    """
    inbox_unread = FolderCounter.objects.filter(
        folder__mailbox=OuterRef("pk"), folder__role=Folder.Role.INBOX
    ).values("unread")[:1]
    rows = accessible_mailboxes(user).annotate(
        unread_count=Coalesce(Subquery(inbox_unread), Value(0))
    )
    items = [
        SwitcherItem(
            mailbox=box,
            unread=box.unread_count,
            own=box.owner_id == user.pk,
        )
        for box in rows
    ]
    items.sort(
        key=lambda i: (not i.own, i.mailbox.kind != Mailbox.Kind.PERSONAL, i.mailbox.address)
    )
    return items


# --------------------------------------------------------------------------- folders


@dataclass(frozen=True, slots=True)
class FolderView:
    """A folder as the side menu shows it."""

    folder: Folder
    unread: int
    total: int
    label: str


def folders_with_counts(mailbox: Mailbox) -> list[FolderView]:
    """Every folder of the mailbox with its unread and total counts, in one query.

    The counts are the folders' counters, kept by the database (FolderCounter): reading
    them costs the same at ten messages and at a million.
    """
    rows = Folder.objects.filter(mailbox=mailbox).annotate(
        unread_count=Coalesce(F("counter__unread"), Value(0)),
        total_count=Coalesce(F("counter__total"), Value(0)),
    )
    views = []
    for folder in rows:
        views.append(
            FolderView(
                folder=folder,
                unread=folder.unread_count,
                total=folder.total_count,
                label=folder_label(folder),
            )
        )
    views.sort(key=lambda v: folder_sort_key(v.folder))
    return views


def folder_label(folder: Folder) -> str:
    """System folders are named in the reader's language; the user's own keep their name."""
    if folder.role == Folder.Role.CUSTOM:
        return folder.name
    return str(Folder.Role(folder.role).label)


def draft_count(mailbox: Mailbox, author: User | Any = None) -> int:
    """Drafts are rows of their own, not entries: the drafts folder shows this count."""
    qs = Draft.objects.filter(mailbox=mailbox)
    if author is not None:
        qs = qs.filter(author=author)
    return qs.count()


def get_folder(user: User | Any, folder_id: int) -> Folder:
    """The folder with this id in one of the user's mailboxes, or 404."""
    folder = (
        Folder.objects.select_related("mailbox")
        .filter(pk=folder_id, mailbox__in=accessible_mailboxes(user))
        .first()
    )
    if folder is None:
        raise Http404
    return folder


def folder_by_name(mailbox: Mailbox, name: str, role: str | None = None) -> Folder | None:
    """The folder of ``mailbox`` named ``name`` (case and blanks aside), by its name's
    keyed digest: names are sealed and cannot be compared in SQL."""
    qs = Folder.objects.filter(
        mailbox=mailbox, name_key__in=fields.name_keys(Folder, mailbox.pk, name)
    )
    if role is not None:
        qs = qs.filter(role=role)
    return qs.first()


def folder_sort_key(folder: Folder) -> tuple[int, str]:
    """System folders in their usual order, then the user's own by name."""
    return (_ROLE_ORDER.get(folder.role, 9), folder.name.casefold())


def system_folder(mailbox: Mailbox, role: str) -> Folder | None:
    return Folder.objects.filter(mailbox=mailbox, role=role).first()


# --------------------------------------------------------------------------- pages


@dataclass(frozen=True, slots=True)
class Page:
    """One page of a folder, newest first, and the cursor of the next (older) page."""

    entries: list[Entry]
    next_cursor: str | None


def _cursor(entry: Entry) -> str:
    stamp = int(entry.received_at.timestamp() * 1_000_000)
    return f"{stamp}-{entry.pk}"


def parse_cursor(value: str | None) -> tuple[datetime, int] | None:
    """The (received_at, id) a cursor designates, or None when absent or malformed."""
    if not value:
        return None
    stamp, sep, pk = value.partition("-")
    # ASCII digits only: str.isdigit() also takes "²" (which int() refuses) and "٣".
    if not sep or not (stamp + pk).isascii() or not stamp.isdigit() or not pk.isdigit():
        return None
    if len(stamp) > 20 or len(pk) > 19:
        return None
    try:
        when = datetime.fromtimestamp(int(stamp) / 1_000_000, tz=UTC)
    except (OverflowError, OSError, ValueError):
        return None
    # Microseconds are rebuilt exactly: floats lose them past 2**53, integers do not.
    when = when.replace(microsecond=int(stamp) % 1_000_000)
    return when, int(pk)


class _Row(Func):
    """A row value, ``(a, b)``: compared as a whole, as the index orders its columns."""

    function = ""
    output_field = Field()


def _position() -> _Row:
    return _Row(F("received_at"), F("pk"))


def _at(cursor: tuple[datetime, int]) -> _Row:
    when, pk = cursor
    return _Row(Value(when, output_field=DateTimeField()), Value(pk))


def older_than(cursor: tuple[datetime, int]) -> LessThan:
    """Entries after ``cursor`` in the newest-first order: ``(received_at, id) < (when, pk)``.

    One row comparison, not ``received_at < when OR (received_at = when AND id < pk)``:
    PostgreSQL reads a row comparison as one range of the (folder or mailbox, received_at,
    id) index and starts the walk at the cursor, where with the OR it walked the index from
    the newest entry (or gathered every older one and sorted them): a page 50,000 messages
    down read 50,000 rows (docs/decisions.md, "The deep inbox page").
    """
    return LessThan(_position(), _at(cursor))


def newer_than(cursor: tuple[datetime, int]) -> GreaterThan:
    """Entries before ``cursor`` in the newest-first order (``older_than``'s mirror)."""
    return GreaterThan(_position(), _at(cursor))


def _entries() -> QuerySet[Entry]:
    # The blob pointer and keys are never needed to list, nor the search tokens (the
    # database reads them): leave them in the database.
    return Entry.objects.select_related("message", "folder").defer(
        "search_tokens", "message__wrapped_key", "message__key_id", "message__blob_name"
    )


def folder_page(folder: Folder, before: str | None = None, limit: int = PAGE_SIZE) -> Page:
    """A page of the folder, newest first, after the cursor ``before`` (keyset pagination).

    Keyset rather than OFFSET: the database walks the (folder, received_at, id)
    index from the cursor, so the 2000th page costs what the first does.
    """
    # Every row is in this folder: no join to read it again 50 times.
    qs = _entries().select_related(None).select_related("message").filter(folder=folder)
    cursor = parse_cursor(before)
    if cursor is not None:
        qs = qs.filter(older_than(cursor))
    rows = list(qs.order_by("-received_at", "-pk")[: limit + 1])
    more = len(rows) > limit
    rows = rows[:limit]
    for row in rows:
        row.folder = folder
    return Page(entries=rows, next_cursor=_cursor(rows[-1]) if more and rows else None)


def search(
    mailbox: Mailbox,
    criteria: search_index.Criteria | str,
    *,
    before: str | None = None,
    limit: int | None = None,
) -> Page:
    """A page of the entries of the mailbox matching ``criteria``, newest first, the trash
    left out unless it is the folder asked for; ``before``: the cursor of the page.

    Every word must be found (in the subject, a correspondent, the body, a readable
    attachment or an attachment's name), the last one as a prefix; the filters narrow.
    It reads the keyed tokens of the entries (``mailboxes.search``): the words of the
    query never reach the database. ``searchindex.QueryError`` for a query of too many
    words (the form refuses them first).
    """
    if isinstance(criteria, str):
        criteria = search_index.Criteria(text=criteria)
    if criteria.empty:
        return Page(entries=[], next_cursor=None)
    limit = limit or SEARCH_LIMIT
    ids = search_index.search_ids(mailbox.pk, criteria, limit + 1, parse_cursor(before))
    more = len(ids) > limit
    ids = ids[:limit]
    found = _entries().in_bulk(ids)
    rows = [found[pk] for pk in ids if pk in found]
    return Page(entries=rows, next_cursor=_cursor(rows[-1]) if more and rows else None)


# --------------------------------------------------------------------------- messages


def get_entry(user: User | Any, entry_id: int, need: Access = Access.READ) -> Entry:
    """The entry with this id in one of the user's mailboxes, or 404 (never 403: no oracle).

    A member whose role falls short of ``need`` (a reader replying) gets 403.
    """
    entry = (
        Entry.objects.select_related("message", "folder", "mailbox")
        .defer("search_tokens")
        .filter(pk=entry_id, mailbox__in=accessible_mailboxes(user))
        .first()
    )
    if entry is None:
        raise Http404
    if need > Access.READ:
        require(user, entry.mailbox, need)
    return entry


def thread_size(entry: Entry) -> int:
    """How many entries of the mailbox are in the entry's conversation (the trash left out)."""
    key = entry.message.thread_key
    if not key:
        return 1
    return (
        Entry.objects.filter(mailbox_id=entry.mailbox_id, message__thread_key=key)
        .exclude(folder__role=Folder.Role.TRASH)
        .count()
    ) or 1


def thread(entry: Entry) -> list[Entry]:
    """Entries of the same mailbox in the entry's conversation, oldest first."""
    key = entry.message.thread_key
    if not key:
        return [entry]
    return list(
        _entries()
        .filter(mailbox_id=entry.mailbox_id, message__thread_key=key)
        .exclude(folder__role=Folder.Role.TRASH)
        .order_by("message__date", "pk")
    ) or [entry]


_NO_REPLY_LOCAL_PARTS = frozenset({"ne-pas-repondre", "mailer-daemon"})


def is_no_reply(message: Message) -> bool:
    """Written by the platform from its no-reply address (notices, delivery reports): no answer.

    The address is CHARTER_NOTICE_FROM, or ``ne-pas-repondre@`` / ``mailer-daemon@`` one of
    our domains (mailboxes.services.notices, transport.dsn).
    """
    sender = (message.from_addr or "").lower()
    configured = (settings.CHARTER_NOTICE_FROM or "").lower()
    if configured and sender == configured:
        return True
    local, _at, domain = sender.rpartition("@")
    return local in _NO_REPLY_LOCAL_PARTS and HostedDomain.objects.filter(name=domain).exists()


def blind_copies(entry: Entry) -> list[str]:
    """The Cci of a message, for the box that sent it only (no header of the message names them)."""
    message = entry.message
    if message.sender_mailbox_id != entry.mailbox_id or message.origin == Message.Origin.SYSTEM:
        return []
    shown = {a.lower() for a in (message.to_addrs or []) + (message.cc_addrs or [])}
    return [
        r
        for r in Delivery.objects.filter(message_id=message.pk)
        .order_by("pk")
        .values_list("recipient", flat=True)
        if r.lower() not in shown
    ]


def deliveries(entry: Entry) -> list[Delivery]:
    """Per-recipient delivery status, shown only to the mailbox that sent the message."""
    if entry.message.sender_mailbox_id != entry.mailbox_id:
        return []
    return list(Delivery.objects.filter(message_id=entry.message_id).order_by("recipient"))


# --------------------------------------------------------------------------- drafts


def drafts(mailbox: Mailbox, author: User | Any = None) -> list[Draft]:
    """The drafts of a mailbox; in a shared box each person sees only their own."""
    qs = Draft.objects.filter(mailbox=mailbox)
    if author is not None:
        qs = qs.filter(author=author)
    return list(qs.order_by("-updated_at", "-pk")[:PAGE_SIZE])


def get_draft(user: User | Any, draft_id: int) -> Draft:
    """One of the user's own drafts in a mailbox they may still send from, or 404/403."""
    draft = (
        Draft.objects.select_related("mailbox")
        .filter(pk=draft_id, author=user, mailbox__in=accessible_mailboxes(user))
        .first()
    )
    if draft is None:
        raise Http404
    require(user, draft.mailbox, Access.SEND)
    return draft


def get_draft_attachment(user: User | Any, draft_id: int, attachment_id: int) -> DraftAttachment:
    """A file of one of the user's drafts, or 404."""
    att = (
        DraftAttachment.objects.select_related("draft", "draft__mailbox")
        .filter(
            pk=attachment_id,
            draft_id=draft_id,
            draft__author=user,
            draft__mailbox__in=accessible_mailboxes(user),
        )
        .first()
    )
    if att is None:
        raise Http404
    require(user, att.draft.mailbox, Access.SEND)
    return att


# --------------------------------------------------------------------------- sharing


def memberships(mailbox: Mailbox) -> list[Membership]:
    """Every grant of the mailbox, live ones first, with who granted and revoked them."""
    rows = list(
        Membership.objects.filter(mailbox=mailbox)
        .select_related("user", "user__professional", "granted_by", "revoked_by")
        .order_by("revoked_at", "-granted_at", "-pk")
    )
    now = timezone.now()
    rows.sort(key=lambda m: not m.is_live(now))
    return rows


def get_membership(user: User | Any, mailbox_id: int, membership_id: int) -> Membership:
    """A grant of a mailbox the user manages, or 404 / 403."""
    mailbox = get_mailbox(user, mailbox_id, Access.MANAGE)
    membership = (
        Membership.objects.select_related("user", "mailbox")
        .filter(pk=membership_id, mailbox=mailbox)
        .first()
    )
    if membership is None:
        raise Http404
    return membership


JOURNAL_PAGE = 100


def access_events(
    mailbox: Mailbox,
    *,
    actor_id: int | None = None,
    action: str = "",
    since: datetime | None = None,
    until: datetime | None = None,
    limit: int = JOURNAL_PAGE,
) -> list[AccessEvent]:
    """The mailbox's access journal, newest first, filtered by person, action and dates."""
    qs = AccessEvent.objects.filter(mailbox=mailbox).select_related("message")
    if actor_id is not None:
        qs = qs.filter(actor_id=actor_id)
    if action:
        qs = qs.filter(action=action)
    if since is not None:
        qs = qs.filter(at__gte=since)
    if until is not None:
        qs = qs.filter(at__lt=until)
    return list(qs.order_by("-at", "-pk")[:limit])


def journal_actors(mailbox: Mailbox) -> list[tuple[int, str]]:
    """The people who appear in the mailbox's journal, for the filter's choices."""
    rows = (
        AccessEvent.objects.filter(mailbox=mailbox, actor__isnull=False)
        .values_list("actor_id", "actor_label")
        .distinct()
    )
    return sorted({(pk, label) for pk, label in rows if pk is not None}, key=lambda r: r[1])


def message_accesses(entry: Entry) -> list[AccessEvent]:
    """Who opened, downloaded, moved this message in its mailbox ("ouvert par … à …")."""
    return list(
        AccessEvent.objects.filter(
            mailbox_id=entry.mailbox_id, message_id=entry.message_id
        ).order_by("-at", "-pk")[:50]
    )


# --------------------------------------------------------------------------- the API


def entry_by_public_id(mailbox: Mailbox, public_id: UUID) -> Entry | None:
    """The mailbox's entry of the message with this public id (the API's ``id``), if any."""
    return (
        Entry.objects.select_related("message", "folder", "mailbox")
        .filter(mailbox=mailbox, message__public_id=public_id)
        .first()
    )


def message_by_public_id(mailbox: Mailbox, public_id: UUID) -> tuple[Message, Entry | None]:
    """A message of the mailbox (received, or sent by it) and its entry there, or 404."""
    entry = entry_by_public_id(mailbox, public_id)
    if entry is not None:
        return entry.message, entry
    message = Message.objects.filter(public_id=public_id, sender_mailbox=mailbox).first()
    if message is None:
        raise Http404
    return message, None


def folder_named(mailbox: Mailbox, name: str) -> Folder | None:
    """A folder of the mailbox by role (inbox, sent, archive, trash) or custom name.

    Drafts are not offered: a draft is the webmail's, not a message to list or file into.
    """
    qs = Folder.objects.filter(mailbox=mailbox)
    folder = qs.exclude(role=Folder.Role.CUSTOM).filter(role=name).first() or folder_by_name(
        mailbox, name, role=Folder.Role.CUSTOM
    )
    if folder is None or folder.role == Folder.Role.DRAFTS:
        return None
    return folder


def sent_deliveries(mailbox: Mailbox, message: Message) -> list[Delivery]:
    """Each recipient's delivery of a message, for the mailbox that sent it (else none)."""
    if message.sender_mailbox_id != mailbox.pk:
        return []
    return list(Delivery.objects.filter(message=message).order_by("recipient"))


# --------------------------------------------------------------------------- API agreements


def holder_boxes(user: User | Any) -> list[Mailbox]:
    """The open PER and ORG boxes the user holds or is responsible for (they alone agree to the API)."""
    if not getattr(user, "is_authenticated", False):
        return []
    return list(
        Mailbox.objects.filter(status=Mailbox.Status.ACTIVE)
        .filter(
            Q(owner=user, kind=Mailbox.Kind.PERSONAL)
            | Q(responsible=user, kind=Mailbox.Kind.ORGANISATIONAL)
        )
        .order_by("kind", "address")
    )


def api_agreements(boxes: list[Mailbox]) -> list[ApiAgreement]:
    """The agreements in force for these boxes, with their live tokens, newest first."""
    return list(
        ApiAgreement.objects.filter(mailbox__in=boxes, withdrawn_at__isnull=True)
        .select_related("mailbox")
        .prefetch_related("tokens")
        .order_by("-granted_at", "-pk")
    )


def get_api_agreement(user: User | Any, agreement_id: int) -> ApiAgreement:
    """An agreement in force on a box the user holds: 404 for a stranger, 403 for a member."""
    agreement = (
        ApiAgreement.objects.select_related("mailbox")
        .filter(
            pk=agreement_id,
            mailbox__in=accessible_mailboxes(user),
            withdrawn_at__isnull=True,
        )
        .first()
    )
    if agreement is None:
        raise Http404
    require(user, agreement.mailbox, Access.HOLDER)
    return agreement


# --------------------------------------------------------------------------- patient recipients
# Writing to a patient: the compose page shows who the patient is. A patient box and the
# patients a box wrote to are facts of our own tables (and of accounts' identities).


@dataclass
class PatientRecipient:
    address: str
    identity: PatientIdentity | None


def patients_among(addresses_: list[str]) -> list[PatientRecipient]:
    """The patient addresses among the recipients, with the identity each designates."""
    wanted = [a.strip().lower() for a in addresses_ if addresses.is_patient_address(a)]
    if not wanted:
        return []
    boxes = {
        b.address: b
        for b in Mailbox.objects.select_related("owner__patient").filter(
            address__in=wanted, kind=Mailbox.Kind.PATIENT
        )
    }
    out = []
    for address in dict.fromkeys(wanted):
        box = boxes.get(address)
        identity = getattr(box.owner, "patient", None) if box and box.owner else None
        out.append(PatientRecipient(address, identity))
    return out


def patients_written_to(box: Mailbox, also: list[str] | None = None) -> list[PatientIdentity]:
    """The patients this professional box has written to (and those among ``also``), by name."""
    found = {
        identity.pk: identity
        for identity in PatientIdentity.objects.filter(
            user__mailboxes__deliveries__message__sender_mailbox=box
        ).distinct()
    }
    for recipient in patients_among(also or []):
        if recipient.identity is not None:
            found.setdefault(recipient.identity.pk, recipient.identity)
    return sorted(found.values(), key=lambda i: (i.birth_name, i.first_names, i.pk))


# --------------------------------------------------------------------------- trust rules
# What the trust rules (the trust app, below this one) need to know of our boxes: they
# read none of our tables, the submission gives them these.


def hosted_domains() -> HostedDomains:
    """The domains this operator serves: those receiving mail, those of patients (one query)."""
    rows = list(HostedDomain.objects.values_list("name", "kind", "active"))
    return HostedDomains(
        active=frozenset(name for name, _kind, active in rows if active),
        patient=frozenset(
            name for name, kind, _active in rows if kind == HostedDomain.Kind.PATIENT
        ),
    )


def closed_addresses(addresses: Sequence[str]) -> set[str]:
    """Those of these addresses whose box is closed, or whose holder's account is."""
    return set(
        Mailbox.objects.filter(address__in=list(addresses))
        .filter(
            Q(status=Mailbox.Status.CLOSED)
            | Q(
                kind__in=[Mailbox.Kind.PERSONAL, Mailbox.Kind.PATIENT],
                owner__status=User.Status.CLOSED,
            )
        )
        .values_list("address", flat=True)
    )
