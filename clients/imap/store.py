"""What the IMAP server asks of the store: plain Django calls, run in worker threads.

Every read goes through the selectors (the user's live rights, asked again at each
command), every write through the mailboxes services (the webmail's moves, flags,
trash and deletion, with their journal): IMAP is one more view of the same store.
"""

from __future__ import annotations

import email
import email.policy
import hashlib
import hmac
import re
from dataclasses import dataclass
from datetime import datetime
from email.message import EmailMessage
from email.utils import getaddresses
from typing import Any

from django.db import connection, transaction
from django.db.models import Q
from django.http import Http404
from django.utils.translation import gettext as _

from clients.services import ClientLogin
from mailboxes import search, selectors
from mailboxes.models import AccessEvent, Entry, Folder, FolderCounter, Mailbox, Message
from mailboxes.selectors import Access
from mailboxes.services import (
    DraftError,
    FolderError,
    add_draft_attachment,
    quarantine,
    read_raw,
    save_draft,
)
from mailboxes.services import folders as folder_services
from mailboxes.services.messages import header_bytes
from mailboxes.services.rights import authorise
from mailboxes.services.sharing import record_access
from mssante.lib import mime, searchindex

# The shared namespace (RFC 2342): the other boxes the password opens, under this prefix.
SHARED_PREFIX = "Partagés"
DELIMITER = "/"

SPECIAL_USE = {
    Folder.Role.SENT: b"Sent",
    Folder.Role.DRAFTS: b"Drafts",
    Folder.Role.TRASH: b"Trash",
    Folder.Role.ARCHIVE: b"Archive",
}


class StoreRefusal(Exception):
    """What the user asked cannot be done (the French reason)."""


class Gone(Exception):
    """The folder or the box is no longer the user's (revoked, deleted): as if it never was."""


@dataclass(frozen=True, slots=True)
class FolderRef:
    """A folder as this session names it."""

    name: str
    folder_id: int
    mailbox_id: int
    role: str
    readonly: bool
    uid_validity: int
    shared: bool


@dataclass(frozen=True, slots=True)
class Row:
    """One message of a folder, as IMAP lists it."""

    uid: int
    entry_id: int
    seen: bool
    flagged: bool
    answered: bool
    received_at: datetime
    size: int


def _clean(name: str) -> str:
    # The hierarchy delimiter cannot be part of a name; nor can control characters.
    cleaned = "".join(c for c in str(name) if c.isprintable()).replace(DELIMITER, "-")
    return cleaned.strip() or "-"


def _boxes(login: ClientLogin) -> list[tuple[Mailbox, Access]]:
    boxes: list[Mailbox] = [login.mailbox]
    if login.password.mailbox_id is None:
        others = (
            selectors.accessible_mailboxes(login.user)
            .exclude(pk=login.mailbox.pk)
            .order_by("address")
        )
        boxes.extend(others[:200])
    found = []
    for box in boxes:
        if not box.is_active:
            continue
        level = selectors.access(login.user, box)
        if level is not None:
            found.append((box, level))
    return found


def namespace(login: ClientLogin) -> list[FolderRef]:
    """The folders the session sees: its box's, then the shared boxes' under "Partagés/"."""
    refs: list[FolderRef] = []
    for box, level in _boxes(login):
        shared = box.pk != login.mailbox.pk
        prefix = f"{SHARED_PREFIX}{DELIMITER}{_clean(box.address)}{DELIMITER}" if shared else ""
        taken: set[str] = set()
        for folder in Folder.objects.filter(mailbox=box).order_by("pk"):
            if folder.role == Folder.Role.INBOX and not shared:
                name = "INBOX"
            else:
                base = _clean(folder.name)
                name = prefix + base
                n = 2
                while name.upper() in taken or (not shared and name.upper() == "INBOX"):
                    name = f"{prefix}{base} ({n})"
                    n += 1
            taken.add(name.upper())
            refs.append(
                FolderRef(
                    name=name,
                    folder_id=folder.pk,
                    mailbox_id=box.pk,
                    role=folder.role,
                    # A member with the role "Lecture" reads: EXAMINE, whatever they ask.
                    readonly=level < Access.SEND,
                    uid_validity=folder.uid_validity,
                    shared=shared,
                )
            )
    return refs


def _folder(login: ClientLogin, folder_id: int) -> Folder:
    try:
        return selectors.get_folder(login.user, folder_id)
    except Http404:
        raise Gone from None


def modseq(login: ClientLogin, folder_id: int) -> int:
    """The folder's highest modification sequence (what IDLE and NOOP compare)."""
    value = FolderCounter.objects.filter(folder_id=folder_id).values_list("modseq", flat=True)
    return int(value.first() or 0)


def modseqs(folder_ids: list[int]) -> dict[int, int]:
    """The modification sequences of these folders (what idle clients wait on; no content)."""
    return dict(
        FolderCounter.objects.filter(folder_id__in=folder_ids).values_list("folder_id", "modseq")
    )


def folder_state(login: ClientLogin, folder_id: int) -> tuple[int, int, list[Row]]:
    """The folder's modification sequence, next UID and messages in UID order (rights asked again)."""
    _folder(login, folder_id)
    with transaction.atomic():
        counter = FolderCounter.objects.filter(folder_id=folder_id).values_list(
            "modseq", "uid_next"
        )
        seq, uid_next = counter.first() or (0, 1)
        rows = [
            Row(*values)
            for values in Entry.objects.filter(folder_id=folder_id)
            .order_by("uid")
            .values_list("uid", "pk", "seen", "flagged", "answered", "received_at", "message__size")
        ]
    return int(seq), int(uid_next), rows


def folder_changes(
    login: ClientLogin, folder_id: int, since: int
) -> tuple[int, int, int, list[Row]]:
    """The folder's modification sequence, next UID, message count and the messages
    changed after modseq ``since`` (arrived, moved in, flags changed), in UID order.

    The counter is read first: a change committed after it has a higher modseq and is
    read again at the next refresh; one that left shows as a count below the rows known.
    """
    _folder(login, folder_id)
    counter = FolderCounter.objects.filter(folder_id=folder_id).values_list(
        "modseq", "uid_next", "total"
    )
    seq, uid_next, total = counter.first() or (0, 1, 0)
    rows = [
        Row(*values)
        for values in Entry.objects.filter(folder_id=folder_id, modseq__gt=since)
        .order_by("uid")
        .values_list("uid", "pk", "seen", "flagged", "answered", "received_at", "message__size")
    ]
    return int(seq), int(uid_next), int(total), rows


def folder_uids(login: ClientLogin, folder_id: int) -> list[int]:
    """The UIDs of the folder's messages (what is left when some went away)."""
    _folder(login, folder_id)
    return list(Entry.objects.filter(folder_id=folder_id).values_list("uid", flat=True))


def _entries(login: ClientLogin, folder_id: int, entry_ids: list[int]) -> list[Entry]:
    folder = _folder(login, folder_id)
    return list(
        Entry.objects.select_related("mailbox", "message").filter(pk__in=entry_ids, folder=folder)
    )


HELD_NOTICE = (
    "Content-Type: text/plain; charset=utf-8\r\n"
    "Content-Transfer-Encoding: 8bit\r\n"
    "Subject: =?utf-8?q?Message_retenu?=\r\n\r\n"
)


# A FETCH reads at most this many bodies per query (and this many bytes held at once).
BATCH = 200
BATCH_BYTES = 32 * 1024 * 1024


LOADED = (
    "pk",
    "message_id",
    "message__id",
    "message__public_id",
    "message__scan_status",
    "message__header_block",
    "message__blob_name",
    "message__key_id",
    "message__wrapped_key",
    "message__size",
)


def load_many(
    login: ClientLogin, folder_id: int, entry_ids: list[int], *, body: bool, opening: bool
) -> dict[int, bytes]:
    """Many messages of a folder at once: their header blocks, or their whole bytes.

    One rights check, one query for the rows; headers come from the sealed header
    column (no blob opened), bodies from the blobs; an opening in a shared box is
    journaled once for the batch. A message held by the antivirus gives the notice.
    """
    folder = _folder(login, folder_id)
    if not body:
        return _headers(login, folder, entry_ids[:BATCH])
    # Only what is read: an entry's search tokens and a message's other sealed columns
    # (subject, preview, attachments) would each be parsed or opened for nothing.
    entries = list(
        Entry.objects.select_related("message")
        .filter(pk__in=entry_ids[:BATCH], folder=folder)
        .only(*LOADED)
        .order_by("pk")
    )
    infected = [
        e.message_id for e in entries if e.message.scan_status == Message.ScanStatus.INFECTED
    ]
    released = set(quarantine.released_ids(infected)) if infected else set()
    held = _("Ce message est retenu par l'antivirus : son contenu n'est pas remis.")
    out: dict[int, bytes] = {}
    opened: list[Message] = []
    for entry in entries:
        message = entry.message
        if message.pk in infected and message.pk not in released:
            out[entry.pk] = (HELD_NOTICE + held + "\r\n").encode("utf-8")
        elif body:
            out[entry.pk] = read_raw(message)
            opened.append(message)
        else:
            out[entry.pk] = header_bytes(message)
    if opening and opened:
        record_access(folder.mailbox, AccessEvent.Action.OPEN, actor=login.user, messages=opened)
    return out


def _headers(login: ClientLogin, folder: Folder, entry_ids: list[int]) -> dict[int, bytes]:
    """The header blocks of these entries: the sealed column opened, no model instance
    made (a 1,000-header FETCH made 2,000); a message stored before the column existed
    goes the way of ``header_bytes`` (its block filled now)."""
    rows = list(
        Entry.objects.filter(pk__in=entry_ids, folder=folder)
        .order_by("pk")
        .values_list("pk", "message_id", "message__scan_status", "message__header_block")
    )
    infected = [m for _e, m, status, _h in rows if status == Message.ScanStatus.INFECTED]
    released = set(quarantine.released_ids(infected)) if infected else set()
    held = _("Ce message est retenu par l'antivirus : son contenu n'est pas remis.")
    out: dict[int, bytes] = {}
    unfilled: list[int] = []
    for entry_id, message_id, _status, block in rows:
        if message_id in infected and message_id not in released:
            out[entry_id] = (HELD_NOTICE + held + "\r\n").encode("utf-8")
        elif block is None:
            unfilled.append(entry_id)
        else:
            out[entry_id] = str(block).encode("latin-1")
    if unfilled:
        for entry in Entry.objects.select_related("message").filter(pk__in=unfilled):
            out[entry.pk] = header_bytes(entry.message)
    return out


# A SEARCH key the columns and the index answer: ("from" | "to" | "cc" | "subject" |
# "body" | "text", words), ("larger" | "smaller", n), ("or", a, b), ("and", [..]),
# ("not", a). Computed in SQL on the folder's entries; no message is opened.
Spec = tuple[Any, ...]


def search_uids(login: ClientLogin, folder_id: int, specs: list[Spec]) -> set[int]:
    """The UIDs of the folder's messages matching every spec (see ``Spec``)."""
    folder = _folder(login, folder_id)
    universe: set[int] | None = None

    def every() -> set[int]:
        nonlocal universe
        if universe is None:
            universe = set(Entry.objects.filter(folder=folder).values_list("uid", flat=True))
        return universe

    def uids(query: Any) -> set[int]:
        return set(query.values_list("uid", flat=True))

    def tokens(words: str) -> set[int]:
        try:
            query = searchindex.parse_query(words)
        except searchindex.QueryError:
            raise StoreRefusal(_("Recherche trop longue : réduisez le nombre de mots.")) from None
        params: list[Any] = []
        match = search._token_match(search.query_tokens(folder.mailbox_id, query), params)
        sql = f"SELECT uid FROM mailboxes_entry WHERE folder_id = %s AND {match}"  # noqa: S608
        with connection.cursor() as cursor:
            cursor.execute(sql, [folder.pk, *params])
            return {row[0] for row in cursor.fetchall()}

    def evaluate(spec: Spec) -> set[int]:
        kind = spec[0]
        entries = Entry.objects.filter(folder=folder)
        if kind == "and":
            found = every()
            for part in spec[1]:
                found = found & evaluate(part)
            return found
        if kind == "or":
            return evaluate(spec[1]) | evaluate(spec[2])
        if kind == "not":
            return every() - evaluate(spec[1])
        if kind == "from":
            value = spec[1]
            return uids(
                entries.filter(
                    Q(message__from_addr__icontains=value)
                    | Q(message__from_name__icontains=value)
                    | Q(message__sender_addr__icontains=value)
                )
            )
        if kind in ("to", "cc"):
            column = (
                "message__to_addrs__icontains" if kind == "to" else "message__cc_addrs__icontains"
            )
            return uids(entries.filter(**{column: spec[1]}))
        if kind == "larger":
            return uids(entries.filter(message__size__gt=spec[1]))
        if kind == "smaller":
            return uids(entries.filter(message__size__lt=spec[1]))
        if kind == "subject":
            # The index finds the candidates; their sealed subjects, opened, say which.
            candidates = tokens(spec[1])
            wanted = searchindex.normalise(spec[1])
            return {
                uid
                for uid, subject in Entry.objects.filter(
                    folder=folder, uid__in=candidates
                ).values_list("uid", "message__subject")
                if wanted in searchindex.normalise(str(subject))
            }
        # body, text: the words of the message (subject, people, text, attachments).
        return tokens(spec[1])

    found = every()
    for spec in specs:
        found = found & evaluate(spec)
    return found


def set_flags(
    login: ClientLogin,
    folder_id: int,
    entry_ids: list[int],
    *,
    seen: bool | None = None,
    flagged: bool | None = None,
    answered: bool | None = None,
) -> None:
    """Set flags through the webmail's service (the user's right checked there)."""
    entries = _entries(login, folder_id, entry_ids)
    if entries:
        folder_services.set_flags(
            entries, by=login.user, seen=seen, flagged=flagged, answered=answered
        )


def move(
    login: ClientLogin, folder_id: int, entry_ids: list[int], target_id: int
) -> dict[int, int]:
    """Move entries to another folder of their box; their new UIDs by entry id."""
    entries = _entries(login, folder_id, entry_ids)
    target = _folder(login, target_id)
    if any(e.mailbox_id != target.mailbox_id for e in entries):
        raise StoreRefusal(
            _("Un message ne peut être déplacé que dans un dossier de sa propre boîte.")
        )
    try:
        folder_services.move_entries(entries, target, by=login.user)
    except FolderError as exc:
        raise StoreRefusal(str(exc)) from None
    return dict(
        Entry.objects.filter(pk__in=[e.pk for e in entries], folder=target).values_list("pk", "uid")
    )


def expunge(login: ClientLogin, folder_id: int, entry_ids: list[int]) -> None:
    """EXPUNGE: to the trash, as the webmail's delete; in the trash, deleted for good."""
    folder = _folder(login, folder_id)
    entries = _entries(login, folder_id, entry_ids)
    if not entries:
        return
    if folder.role == Folder.Role.TRASH:
        # The webmail's "delete for good": managers and the holder only.
        authorise(login.user, folder.mailbox, Access.MANAGE)
        folder_services.delete_entries(
            folder.mailbox,
            Entry.objects.filter(pk__in=[e.pk for e in entries]),
            by=login.user,
            event="entries.deleted",
        )
    else:
        folder_services.trash_entries(entries, by=login.user)


# How many stored messages of the box carrying an APPENDed message's Message-ID are
# opened to find the one with the same bytes (a forged duplicate cannot make us read more).
APPEND_CANDIDATES = 5


# isync's mbsync marks what it APPENDs with a last header line "X-TUID: <12 chars>" (to
# find the new UID): not part of the message, taken out before comparing.
_TUID = re.compile(rb"\r?\nX-TUID: [A-Za-z0-9+/]{12}(?=\r?\n\r?\n)")


def _without_client_marks(raw: bytes) -> bytes:
    head_end = raw.find(b"\r\n\r\n")
    if head_end < 0:
        head_end = raw.find(b"\n\n")
    if head_end < 0:
        return raw
    head_end += 4
    return _TUID.sub(b"", raw[:head_end], count=1) + raw[head_end:]


def append(login: ClientLogin, folder_id: int, raw: bytes) -> int:
    """APPEND: a message of this box filed into the folder (its new UID); nothing injected.

    A client without MOVE (isync's mbsync) files a message by APPENDing it to the target
    and expunging it from the source: when the bytes are those of a message of the box
    (same Message-ID and the same digest as the stored message), its entry is moved there
    through the webmail's service (journal, counters, a new UID). Anything else is
    refused: a client cannot inject mail that did not go through the pipeline (no scan,
    no charter). Sent keeps its copy of a message sent by the submission.
    """
    folder = _folder(login, folder_id)
    authorise(login.user, folder.mailbox, Access.SEND)
    parsed = email.message_from_bytes(raw[:200_000], policy=email.policy.compat32)
    message_id = str(parsed.get("Message-ID") or "").strip()
    candidates = (
        list(
            Entry.objects.select_related("mailbox", "message")
            .filter(mailbox=folder.mailbox, message__message_id=message_id)
            .order_by("pk")[:APPEND_CANDIDATES]
        )
        if message_id
        else []
    )
    if folder.role == Folder.Role.SENT:
        # The copy the submission already filed (the client's bytes may differ: headers).
        for entry in candidates:
            if entry.folder_id == folder.pk:
                return int(entry.uid)
    digest = hashlib.sha256(_without_client_marks(raw)).digest()
    same: list[Entry] = []
    checked: dict[int, bool] = {}
    for entry in candidates:
        if entry.message_id not in checked:
            try:
                stored = read_raw(entry.message)
            except Exception:  # an unreadable blob is not a match
                stored = b""
            checked[entry.message_id] = hmac.compare_digest(hashlib.sha256(stored).digest(), digest)
        if checked[entry.message_id]:
            same.append(entry)
    if not same:
        if folder.role == Folder.Role.SENT:
            raise StoreRefusal(
                _(
                    "Copie refusée : les messages envoyés par la soumission SMTP sont déjà "
                    "classés dans Envoyés ; un message envoyé ailleurs ne peut pas y être déposé."
                )
            )
        raise StoreRefusal(
            _(
                "Dépôt refusé : seul un message déjà présent dans cette boîte peut être classé "
                "dans un dossier ; un message venu d'ailleurs doit être envoyé (analyse "
                "antivirus et charte)."
            )
        )
    for entry in same:
        if entry.folder_id == folder.pk:
            return int(entry.uid)
    entry = same[0]
    try:
        folder_services.move_entries([entry], folder, by=login.user)
    except FolderError as exc:
        raise StoreRefusal(str(exc)) from None
    return int(Entry.objects.filter(pk=entry.pk).values_list("uid", flat=True).get())


def append_draft(login: ClientLogin, folder_id: int, raw: bytes) -> None:
    """APPEND to Drafts: the message becomes a draft of the box (as the compose page saves)."""
    folder = _folder(login, folder_id)
    parsed = email.message_from_bytes(raw, policy=email.policy.default)
    if not isinstance(parsed, EmailMessage):
        raise StoreRefusal(_("Message illisible : structure MIME invalide."))
    try:
        text, html, files = mime.client_content(parsed)
    except (LookupError, ValueError, TypeError):
        raise StoreRefusal(_("Message illisible : structure MIME invalide.")) from None

    def named(header: str) -> list[str]:
        values = [str(v) for v in parsed.get_all(header, [])]
        return [a.strip().lower() for _n, a in getaddresses(values) if a][:100]

    try:
        # One transaction: a refused attachment leaves no half-made draft.
        with transaction.atomic():
            draft = save_draft(
                mailbox=folder.mailbox,
                author=login.user,
                draft=None,
                to=named("To"),
                cc=named("Cc"),
                bcc=named("Bcc"),
                subject=str(parsed.get("Subject") or "")[:998],
                text=text,
                html=html,
            )
            for f in files:
                add_draft_attachment(draft, f.filename, f.content_type, f.data, by=login.user)
    except DraftError as exc:
        raise StoreRefusal(str(exc)) from None


def create_folder(login: ClientLogin, name: str) -> None:
    if DELIMITER in name:
        raise StoreRefusal(_("Les sous-dossiers ne sont pas pris en charge."))
    try:
        folder_services.create_folder(login.mailbox, name, by=login.user)
    except FolderError as exc:
        raise StoreRefusal(str(exc)) from None


def delete_folder(login: ClientLogin, folder_id: int) -> None:
    folder = _folder(login, folder_id)
    try:
        folder_services.delete_folder(folder, by=login.user)
    except FolderError as exc:
        raise StoreRefusal(str(exc)) from None


def rename_folder(login: ClientLogin, folder_id: int, name: str) -> None:
    folder = _folder(login, folder_id)
    if DELIMITER in name:
        raise StoreRefusal(_("Les sous-dossiers ne sont pas pris en charge."))
    try:
        folder_services.rename_folder(folder, name, by=login.user)
    except FolderError as exc:
        raise StoreRefusal(str(exc)) from None
