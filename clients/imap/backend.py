"""pymap's backend over our store: sessions, folders and messages (no IMAP parsing here).

pymap parses the commands and keeps each connection's view of its selected folder
(sequence numbers, untagged EXISTS/EXPUNGE/FETCH); this module answers its questions
from the store (``clients.imap.store``, run in worker threads: the event loop never
waits on the database):

- a folder's state is its entries in UID order, re-read only when the folder's
  modification sequence moved (one small query per NOOP, per second in IDLE);
- \\Seen, \\Flagged and \\Answered are the entry's flags; \\Deleted lives in this process
  until EXPUNGE, which moves to the trash (in the trash: the webmail's delete);
- a body is read as the webmail's "source" serves it and, in a shared box, journaled.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import logging
from collections.abc import AsyncIterator, Callable, Iterable, Sequence
from datetime import UTC, datetime
from typing import Any, TypeVar

from django.core.exceptions import PermissionDenied
from django.http import Http404
from django.utils.translation import gettext as _
from pymap.concurrent import Event
from pymap.config import BackendCapability, IMAPConfig
from pymap.context import socket_info
from pymap.exceptions import (
    InvalidAuth,
    MailboxConflict,
    MailboxNotFound,
    MailboxReadOnly,
    NotAllowedError,
    NotSupportedError,
)
from pymap.flags import FlagOp, PermanentFlags, SessionFlags
from pymap.interfaces.message import CachedMessage
from pymap.listtree import ListTree
from pymap.mailbox import MailboxSnapshot
from pymap.message import BaseLoadedMessage, BaseMessage
from pymap.mime import MessageBody, MessageContent, MessageHeader
from pymap.parsing.message import AppendMessage
from pymap.parsing.response.code import AppendUid, CopyUid
from pymap.parsing.specials import FetchRequirement, ObjectId, SequenceSet
from pymap.parsing.specials.flag import Answered, Deleted, Flag, Flagged, Recent, Seen
from pymap.search import SearchCriteriaSet, SearchParams
from pymap.selected import SelectedMailbox, SelectedSet
from pysasl.creds.server import ServerCredentials

from clients import services
from clients.imap import store
from clients.imap.idle import Watcher
from clients.imap.patterns import MAX_PATTERN, MAX_WILDCARDS, glob_matches
from clients.models import AppPassword
from mailboxes.models import Folder
from mailboxes.transport.inbound import ThreadedDatabase, smtp_text

T = TypeVar("T")

log = logging.getLogger(__name__)

# Whether the FETCH being answered asks for a message's body (not only its headers): set
# by the connection's state for each FETCH (pymap's own requirement counts a
# BODY.PEEK[HEADER] as the whole content), read when a message is loaded.
FETCH_OPENS: contextvars.ContextVar[bool] = contextvars.ContextVar("imap_fetch_opens", default=True)
HEADER_ONLY = frozenset({b"HEADER", b"HEADER.FIELDS", b"HEADER.FIELDS.NOT", b"MIME"})


def opens_a_body(attributes: Iterable[Any]) -> bool:
    """Whether these FETCH attributes hand out a body (an opening for the access journal)."""
    for attr in attributes:
        name = bytes(attr.value).upper()
        if name in (b"RFC822", b"RFC822.TEXT"):
            return True
        if name in (b"BODY", b"BODY.PEEK", b"BINARY", b"BINARY.PEEK") and attr.section is not None:
            section = attr.section
            if section.parts or section.specifier not in HEADER_ONLY:
                return True
    return False


# What the FETCH being answered needs of each message's content: "none" (UID, FLAGS,
# INTERNALDATE), "headers" (headers, envelope, size: the sealed header column, no blob
# opened), "whole" (its bytes, no MIME structure) or "body". Set by the connection's
# state for each FETCH, like FETCH_OPENS.
FETCH_NEEDS: contextvars.ContextVar[str] = contextvars.ContextVar(
    "imap_fetch_needs", default="body"
)


def fetch_needs(attributes: Iterable[Any]) -> str:
    """What these FETCH attributes need: "none", "headers", "whole" (the bytes, no MIME
    structure) or "body" (see FETCH_NEEDS)."""
    rank = {"none": 0, "headers": 1, "whole": 2, "body": 3}
    need = "none"
    for attr in attributes:
        name = bytes(attr.value).upper()
        section = attr.section
        if name in (b"UID", b"FLAGS", b"INTERNALDATE", b"MODSEQ"):
            this = "none"
        elif name in (b"ENVELOPE", b"RFC822.HEADER", b"RFC822.SIZE"):
            this = "headers"
        elif name in (b"RFC822", b"RFC822.TEXT"):
            this = "whole"
        elif name in (b"BODY", b"BODY.PEEK") and section is not None and not section.parts:
            # (pymap's own requirement counts a BODY.PEEK[HEADER] as the whole content.)
            if section.specifier in (b"HEADER", b"HEADER.FIELDS", b"HEADER.FIELDS.NOT"):
                this = "headers"
            elif section.specifier in (None, b"TEXT"):
                this = "whole"
            else:
                this = "body"
        else:
            this = "body"
        if rank[this] > rank[need]:
            need = this
    return need


def shallow_content(raw: bytes) -> MessageContent:
    """The message for a FETCH of its bytes only: its header parsed, its body one flat part
    (a multipart's MIME structure is parsed only when BODYSTRUCTURE or a part is asked)."""
    view = memoryview(raw)
    lines = MessageContent._find_lines(raw)
    header_lines, body_lines = MessageContent._split_lines(raw, lines)
    header = MessageHeader._parse(raw, view, header_lines)
    body = MessageBody._parse(raw, view, body_lines, None)
    return MessageContent(raw, header, body)


class HeaderOnly(BaseLoadedMessage):
    """A message loaded from its header block: its size is the stored message's."""

    def get_size(self, section: Sequence[int] | None = None) -> int:
        if not section:
            assert isinstance(self.message, Message)
            return self.message.size
        return super().get_size(section)


PERMANENT = frozenset({Seen, Flagged, Answered, Deleted})


def imap_text(text: str) -> str:
    """A response text in ASCII (IMAP without UTF8=ACCEPT): the French loses its accents."""
    return smtp_text(text)


class StoreAccess:
    """The store from the event loop: each call in a worker thread, errors made IMAP's."""

    def __init__(self, db: ThreadedDatabase) -> None:
        self.db = db

    async def __call__(self, func: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        try:
            return await self.db._in_thread(func, *args, **kwargs)
        except store.StoreRefusal as exc:
            raise NotAllowedError(imap_text(str(exc))) from None
        except (store.Gone, Http404):
            raise MailboxNotFound("") from None
        except PermissionDenied:
            raise NotAllowedError(
                imap_text(_("Vos droits sur cette boîte ne le permettent pas."))
            ) from None


class Config(IMAPConfig):
    """pymap's settings for our server; the folders' shared state lives here (one per process)."""

    def __init__(self, args: Any, *, db: ThreadedDatabase, **extra: Any) -> None:
        super().__init__(args, **extra)
        self.store = StoreAccess(db)
        self.watcher = Watcher(self.store.db)
        self.selected_sets: dict[int, SelectedSet] = {}
        # \Deleted marks awaiting EXPUNGE: folder id → UIDs.
        self.deleted: dict[int, set[int]] = {}

    @property
    def backend_capability(self) -> BackendCapability:
        return BackendCapability(
            idle=True, object_id=False, multi_append=False, custom=[b"SPECIAL-USE"]
        )

    @property
    def greeting(self) -> bytes:
        return b"Messagerie MSSante prete"


class Message(BaseMessage):
    """A message of a folder: its entry, flags and date; its bytes read on demand."""

    __slots__ = ["_folder", "entry_id", "size"]

    def __init__(
        self,
        uid: int,
        internal_date: datetime,
        permanent_flags: Iterable[Flag],
        *,
        folder: FolderData,
        entry_id: int,
        size: int,
        expunged: bool = False,
    ) -> None:
        super().__init__(uid, internal_date, permanent_flags, expunged=expunged)
        self._folder = folder
        self.entry_id = entry_id
        self.size = size

    def copy_with(self, flags: Iterable[Flag] | None = None, *, expunged: bool = False) -> Message:
        return Message(
            self.uid,
            self.internal_date,
            self.permanent_flags if flags is None else flags,
            folder=self._folder,
            entry_id=self.entry_id,
            size=self.size,
            expunged=expunged,
        )

    async def load_content(self, requirement: FetchRequirement) -> BaseLoadedMessage:
        if requirement.has_none(FetchRequirement.CONTENT) or self.expunged:
            return BaseLoadedMessage(self, requirement, None)
        # Headers, envelope and size come from the header column; anything else reads
        # the message (a SEARCH sets "body" when it needs more than the headers).
        needs = FETCH_NEEDS.get()
        body = requirement.has_all(FetchRequirement.BODY) and needs != "headers"
        raw = await self._folder.loaded(self.entry_id, body=body, opening=FETCH_OPENS.get())
        if raw is None:  # gone meanwhile
            return BaseLoadedMessage(self, requirement, None)
        if body and needs == "whole":
            return BaseLoadedMessage(self, requirement, shallow_content(raw))
        if body:
            return BaseLoadedMessage(self, requirement, MessageContent.parse(raw))
        return HeaderOnly(self, requirement, MessageContent.parse(raw))


class FolderData:
    """One folder of the store, as pymap's ``MailboxDataInterface`` wants it."""

    def __init__(self, session: Session, ref: store.FolderRef) -> None:
        self.session = session
        self.ref = ref
        self.config = session.config
        self._messages: dict[int, Message] = {}
        self._modseq: int | None = None
        self._uid_next = 1
        # The FETCH being answered: its entries in order, loaded a batch at a time.
        self._plan: dict[int, int] = {}
        self._plan_ids: list[int] = []
        self._plan_body = False
        self._loaded: dict[int, bytes] = {}

    # --- what pymap reads

    @property
    def mailbox_id(self) -> ObjectId:
        return ObjectId.new_mailbox_id(str(self.ref.folder_id).encode())

    @property
    def readonly(self) -> bool:
        return self.ref.readonly

    @property
    def uid_validity(self) -> int:
        return self.ref.uid_validity

    @property
    def permanent_flags(self) -> frozenset[Flag]:
        return PERMANENT

    @property
    def session_flags(self) -> frozenset[Flag]:
        return frozenset({Recent})

    @property
    def selected_set(self) -> SelectedSet:
        return self.config.selected_sets.setdefault(self.ref.folder_id, SelectedSet())

    @property
    def _deleted(self) -> set[int]:
        return self.config.deleted.setdefault(self.ref.folder_id, set())

    # --- the store

    async def _refresh(self, *, force: bool = False) -> None:
        login = self.session.login
        if not force and self._modseq is not None:
            seq = await self.config.store(store.modseq, login, self.ref.folder_id)
            if seq == self._modseq:
                return
        seq, uid_next, rows = await self.config.store(store.folder_state, login, self.ref.folder_id)
        self._uid_next = uid_next
        deleted = self._deleted
        live = {row.uid for row in rows}
        deleted &= live
        self._messages = {
            row.uid: Message(
                row.uid,
                row.received_at.astimezone(UTC),
                _flags(row.seen, row.flagged, row.answered, row.uid in deleted),
                folder=self,
                entry_id=row.entry_id,
                size=row.size,
            )
            for row in rows
        }
        self._modseq = seq

    def plan(self, messages: Sequence[Message], *, body: bool) -> None:
        """The messages the FETCH will load, in order: read by batches of ``store.BATCH``."""
        self._plan_ids = [m.entry_id for m in messages if not m.expunged]
        self._plan = {entry_id: i for i, entry_id in enumerate(self._plan_ids)}
        self._plan_body = body
        self._loaded = {}

    async def loaded(self, entry_id: int, *, body: bool, opening: bool) -> bytes | None:
        """One message's bytes (its header block when not ``body``), from the batch."""
        if entry_id in self._loaded:
            return self._loaded.pop(entry_id)
        ids = [entry_id]
        start = self._plan.get(entry_id)
        if start is not None and body == self._plan_body:
            sizes = {m.entry_id: m.size for m in self._messages.values()}
            ids, total = [], 0
            for other in self._plan_ids[start : start + store.BATCH]:
                total += sizes.get(other, 0) if body else 0
                if ids and total > store.BATCH_BYTES:
                    break
                ids.append(other)
        found = await self.config.store(
            store.load_many, self.session.login, self.ref.folder_id, ids, body=body, opening=opening
        )
        self._loaded = found
        return self._loaded.pop(entry_id, None)

    async def update_selected(
        self, selected: SelectedMailbox, *, wait_on: Event | None = None
    ) -> SelectedMailbox:
        if wait_on is not None:
            # IDLE: until the folder moves or the client is done (the process's watcher
            # looks at every watched folder once a second, in one query).
            while not wait_on.is_set():
                before = self._modseq
                await self._refresh()
                if self._modseq != before:
                    break
                await self.config.watcher.wait(self.ref.folder_id, self._modseq, wait_on)
        else:
            await self._refresh()
        selected.set_messages(list(self._messages.values()))
        return selected

    async def snapshot(self) -> MailboxSnapshot:
        await self._refresh()
        exists = len(self._messages)
        unseen = 0
        first_unseen = None
        for seq, uid in enumerate(sorted(self._messages), 1):
            if Seen not in self._messages[uid].permanent_flags:
                unseen += 1
                if first_unseen is None:
                    first_unseen = seq
        # The counter's: above every UID the folder ever gave, moved-away ones included.
        next_uid = max(self._uid_next, max(self._messages, default=0) + 1)
        return MailboxSnapshot(
            self.mailbox_id,
            self.readonly,
            self.uid_validity,
            self.permanent_flags,
            self.session_flags,
            exists,
            0,
            unseen,
            first_unseen,
            next_uid,
        )

    async def get(self, uid: int, cached_msg: CachedMessage) -> Message:
        msg = self._messages.get(uid)
        if msg is None:
            if isinstance(cached_msg, Message):
                return cached_msg.copy_with(expunged=True)
            raise IndexError(uid)
        return msg

    async def find(
        self, seq_set: SequenceSet, selected: SelectedMailbox
    ) -> AsyncIterator[tuple[int, Message]]:
        for seq, cached_msg in selected.messages.get_all(seq_set):
            yield seq, await self.get(cached_msg.uid, cached_msg)

    async def find_deleted(self, seq_set: SequenceSet, selected: SelectedMailbox) -> Sequence[int]:
        return [
            msg.uid
            async for _, msg in self.find(seq_set, selected)
            if not msg.expunged and Deleted in msg.permanent_flags
        ]

    async def update_many(
        self, messages: list[Message], flag_set: frozenset[Flag], mode: FlagOp
    ) -> list[Message]:
        """Apply a STORE to these messages: one write per flag value, not one per message."""
        changes: dict[tuple[str, bool], list[int]] = {}
        updated = []
        for msg in messages:
            if msg.expunged:
                updated.append(msg)
                continue
            new = mode.apply(msg.permanent_flags, flag_set & PERMANENT)
            for flag, field in ((Seen, "seen"), (Flagged, "flagged"), (Answered, "answered")):
                if (flag in new) != (flag in msg.permanent_flags):
                    changes.setdefault((field, flag in new), []).append(msg.entry_id)
            if Deleted in new:
                self._deleted.add(msg.uid)
            else:
                self._deleted.discard(msg.uid)
            fresh = msg.copy_with(new)
            self._messages[msg.uid] = fresh
            updated.append(fresh)
        for (field, value), ids in changes.items():
            await self.config.store(
                store.set_flags, self.session.login, self.ref.folder_id, ids, **{field: value}
            )
        return updated

    async def update(
        self, uid: int, cached_msg: CachedMessage, flag_set: frozenset[Flag], mode: FlagOp
    ) -> Message:
        msg = await self.get(uid, cached_msg)
        return (await self.update_many([msg], flag_set, mode))[0]

    async def delete(self, uids: Iterable[int]) -> None:
        ids = [self._messages[uid].entry_id for uid in uids if uid in self._messages]
        if ids:
            await self.config.store(store.expunge, self.session.login, self.ref.folder_id, ids)
        self._deleted.difference_update(uids)
        await self._refresh(force=True)

    async def append(self, append_msg: AppendMessage, *, recent: bool = False) -> Message:
        raise NotSupportedError()  # the session's append_messages answers APPEND

    async def copy(self, uid: int, destination: FolderData, *, recent: bool = False) -> int | None:
        raise NotSupportedError()

    async def move(self, uid: int, destination: FolderData, *, recent: bool = False) -> int | None:
        raise NotSupportedError()

    async def claim_recent(self, selected: SelectedMailbox) -> None:
        return None

    async def cleanup(self) -> None:
        return None


def _flags(seen: bool, flagged: bool, answered: bool, deleted: bool) -> frozenset[Flag]:
    flags = set()
    if seen:
        flags.add(Seen)
    if flagged:
        flags.add(Flagged)
    if answered:
        flags.add(Answered)
    if deleted:
        flags.add(Deleted)
    return frozenset(flags)


class Session:
    """One signed-in connection: its folders (the login's box, then the shared ones)."""

    def __init__(self, login: services.ClientLogin, config: Config) -> None:
        self.login = login
        self.config = config
        self._refs: dict[str, store.FolderRef] = {}
        self._folders: dict[int, FolderData] = {}

    @property
    def owner(self) -> str:
        return self.login.mailbox.address

    @property
    def filter_set(self) -> None:
        return None

    def close(self) -> None:
        return None

    async def cleanup(self) -> None:
        return None

    # --- the folders

    async def _load(self) -> dict[str, store.FolderRef]:
        refs = await self.config.store(store.namespace, self.login)
        self._refs = {_key(r.name): r for r in refs}
        return self._refs

    async def _folder(self, name: str, *, try_create: bool = False) -> FolderData:
        ref = (await self._load()).get(_key(name))
        if ref is None:
            raise MailboxNotFound(name, try_create=try_create)
        folder = self._folders.get(ref.folder_id)
        if folder is None or folder.ref != ref:
            folder = self._folders[ref.folder_id] = FolderData(self, ref)
        return folder

    async def _selected_folder(self, selected: SelectedMailbox) -> FolderData:
        # The selected folder as SELECT resolved it: the namespace is not read again at
        # each command (bodies, listings and writes ask the user's rights themselves).
        ref = self._refs.get(_key(selected.lookup))
        folder = self._folders.get(ref.folder_id) if ref is not None else None
        if folder is not None:
            return folder
        return await self._folder(selected.lookup)

    async def _updates(self, selected: SelectedMailbox | None) -> SelectedMailbox | None:
        if selected is None:
            return None
        try:
            folder = await self._selected_folder(selected)
        except MailboxNotFound:
            selected.set_deleted()
            return selected
        return await folder.update_selected(selected)

    async def list_mailboxes(
        self,
        ref_name: str,
        filter_: str,
        subscribed: bool = False,
        selected: SelectedMailbox | None = None,
    ) -> tuple[Iterable[tuple[str, str | None, Sequence[bytes]]], SelectedMailbox | None]:
        if not filter_:
            return [("", store.DELIMITER, [b"Noselect"])], await self._updates(selected)
        refs = await self._load()
        tree = ListTree(store.DELIMITER).update("INBOX", *(r.name for r in refs.values()))
        found = []
        pattern = ref_name + filter_
        if len(pattern) > MAX_PATTERN or sum(pattern.count(w) for w in "*%") > MAX_WILDCARDS:
            raise NotAllowedError(imap_text(_("Motif de dossiers trop long ou trop complexe.")))
        for entry in tree.list():
            wanted = pattern.upper() if entry.name == "INBOX" else pattern
            if not glob_matches(wanted, entry.name):
                continue
            attrs = list(entry.attributes)
            ref = refs.get(_key(entry.name))
            if ref is not None and not ref.shared and ref.role in store.SPECIAL_USE:
                attrs.append(store.SPECIAL_USE[Folder.Role(ref.role)])
            found.append((entry.name, store.DELIMITER, attrs))
        return found, await self._updates(selected)

    async def get_mailbox(
        self, name: str, selected: SelectedMailbox | None = None
    ) -> tuple[MailboxSnapshot, SelectedMailbox | None]:
        folder = await self._folder(name)
        return await folder.snapshot(), await self._updates(selected)

    async def create_mailbox(
        self, name: str, selected: SelectedMailbox | None = None
    ) -> tuple[ObjectId, SelectedMailbox | None]:
        if _key(name) in await self._load():
            raise MailboxConflict(name)
        await self.config.store(store.create_folder, self.login, name)
        folder = await self._folder(name)
        return folder.mailbox_id, await self._updates(selected)

    async def delete_mailbox(
        self, name: str, selected: SelectedMailbox | None = None
    ) -> SelectedMailbox | None:
        folder = await self._folder(name)
        await self.config.store(store.delete_folder, self.login, folder.ref.folder_id)
        return await self._updates(selected)

    async def rename_mailbox(
        self, before_name: str, after_name: str, selected: SelectedMailbox | None = None
    ) -> SelectedMailbox | None:
        folder = await self._folder(before_name)
        if _key(after_name) in self._refs:
            raise MailboxConflict(after_name)
        await self.config.store(store.rename_folder, self.login, folder.ref.folder_id, after_name)
        return await self._updates(selected)

    async def subscribe(
        self, name: str, selected: SelectedMailbox | None = None
    ) -> SelectedMailbox | None:
        return await self._updates(selected)

    async def unsubscribe(
        self, name: str, selected: SelectedMailbox | None = None
    ) -> SelectedMailbox | None:
        return await self._updates(selected)

    async def append_messages(
        self,
        name: str,
        messages: Sequence[AppendMessage],
        selected: SelectedMailbox | None = None,
    ) -> tuple[AppendUid | None, SelectedMailbox | None]:
        folder = await self._folder(name, try_create=True)
        if folder.readonly:
            raise MailboxReadOnly(name)
        if folder.ref.role == Folder.Role.DRAFTS:
            for m in messages:
                await self.config.store(
                    store.append_draft, self.login, folder.ref.folder_id, bytes(m.literal)
                )
            # A draft is not an entry: it has no UID to give back (no APPENDUID).
            return None, await self._updates(selected)
        uids = [
            await self.config.store(
                store.append, self.login, folder.ref.folder_id, bytes(m.literal)
            )
            for m in messages
        ]
        return AppendUid(folder.uid_validity, uids), await self._updates(selected)

    async def select_mailbox(
        self, name: str, readonly: bool = False
    ) -> tuple[MailboxSnapshot, SelectedMailbox]:
        folder = await self._folder(name)
        selected = SelectedMailbox(
            folder.mailbox_id,
            readonly or folder.readonly,
            PermanentFlags(folder.permanent_flags),
            SessionFlags(folder.session_flags),
            selected_set=folder.selected_set,
            lookup=name,
        )
        snapshot = await folder.snapshot()
        return snapshot, await folder.update_selected(selected)

    async def check_mailbox(
        self, selected: SelectedMailbox, *, wait_on: Event | None = None, housekeeping: bool = False
    ) -> SelectedMailbox:
        folder = await self._selected_folder(selected)
        return await folder.update_selected(selected, wait_on=wait_on)

    async def fetch_messages(
        self, selected: SelectedMailbox, sequence_set: SequenceSet, set_seen: bool
    ) -> tuple[Iterable[tuple[int, Message]], SelectedMailbox]:
        folder = await self._selected_folder(selected)
        found = [(seq, msg) async for seq, msg in folder.find(sequence_set, selected)]
        folder.plan([m for _s, m in found], body=FETCH_NEEDS.get() in ("whole", "body"))
        if set_seen:
            unseen = [m for _s, m in found if not m.expunged and Seen not in m.permanent_flags]
            if unseen:
                await folder.update_many(unseen, frozenset({Seen}), FlagOp.ADD)
                found = [(seq, await folder.get(m.uid, m)) for seq, m in found]
        return found, await folder.update_selected(selected)

    async def search_mailbox(
        self, selected: SelectedMailbox, keys: frozenset[Any]
    ) -> tuple[Iterable[tuple[int, Message]], SelectedMailbox]:
        """SEARCH: people, words and sizes from the columns and the search index (no message
        opened); flags, dates and UID sets on the folder's rows; anything else reads the
        messages left, at most SEARCH_OPENS of them."""
        folder = await self._selected_folder(selected)
        await folder._refresh()
        specs, rest = [], []
        for key in keys:
            spec = _search_spec(key)
            if spec is None:
                rest.append(key)
            else:
                specs.append(spec)
        served: set[int] | None = None
        if specs:
            served = await self.config.store(
                store.search_uids, self.login, folder.ref.folder_id, specs
            )
        req = FetchRequirement.reduce(key.requirement for key in rest)
        params = SearchParams(selected, disabled=self.config.disable_search_keys)
        search = SearchCriteriaSet(rest, params)
        candidates = [
            (seq, msg)
            async for seq, msg in folder.find(search.sequence_set, selected)
            if served is None or msg.uid in served
        ]
        opens = not req.has_none(FetchRequirement.CONTENT)
        if opens and len(candidates) > SEARCH_OPENS:
            raise NotAllowedError(
                imap_text(
                    _(
                        "Recherche trop large pour ce critère : précisez-la (expéditeur, "
                        "destinataire, objet, mots, dates)."
                    )
                )
            )
        FETCH_NEEDS.set("body")
        FETCH_OPENS.set(False)  # a SEARCH reads, the client opens nothing
        folder.plan([m for _s, m in candidates], body=True)
        found = []
        for seq, msg in candidates:
            if not opens:
                content = BaseLoadedMessage(msg, req, None)
            else:
                content = await msg.load_content(FetchRequirement.HEADER | req)
            if search.matches(seq, msg, content):
                found.append((seq, msg))
        return found, await folder.update_selected(selected)

    async def expunge_mailbox(
        self, selected: SelectedMailbox, uid_set: SequenceSet | None = None
    ) -> SelectedMailbox:
        if selected.readonly:
            raise MailboxReadOnly()
        folder = await self._selected_folder(selected)
        await folder._refresh()
        uids = await folder.find_deleted(uid_set or SequenceSet.all(uid=True), selected)
        await folder.delete(uids)
        return await folder.update_selected(selected)

    async def copy_messages(
        self, selected: SelectedMailbox, sequence_set: SequenceSet, mailbox: str
    ) -> tuple[CopyUid | None, SelectedMailbox]:
        raise NotAllowedError(
            imap_text(
                _(
                    "Copie impossible : un message est dans un seul dossier de la boîte ; "
                    "utilisez MOVE (déplacer)."
                )
            )
        )

    async def move_messages(
        self, selected: SelectedMailbox, sequence_set: SequenceSet, mailbox: str
    ) -> tuple[CopyUid | None, SelectedMailbox]:
        if selected.readonly:
            raise MailboxReadOnly()
        folder = await self._selected_folder(selected)
        dest = await self._folder(mailbox, try_create=True)
        if dest.readonly:
            raise MailboxReadOnly(mailbox)
        pairs = [
            (uid, folder._messages[uid].entry_id)
            for _seq, uid in selected.messages.get_uids(sequence_set)
            if uid in folder._messages
        ]
        if not pairs:
            return None, await folder.update_selected(selected)
        new_uids = await self.config.store(
            store.move,
            self.login,
            folder.ref.folder_id,
            [entry_id for _uid, entry_id in pairs],
            dest.ref.folder_id,
        )
        moved = [(uid, new_uids[e]) for uid, e in pairs if e in new_uids]
        folder._deleted.difference_update(uid for uid, _e in pairs)
        copy_uid = CopyUid(dest.uid_validity, moved) if moved else None
        return copy_uid, await folder.update_selected(selected)

    async def update_flags(
        self,
        selected: SelectedMailbox,
        sequence_set: SequenceSet,
        flag_set: frozenset[Flag],
        mode: FlagOp = FlagOp.REPLACE,
    ) -> tuple[Iterable[tuple[int, Message]], SelectedMailbox]:
        if selected.readonly:
            raise MailboxReadOnly()
        folder = await self._selected_folder(selected)
        await folder._refresh()
        found = [(seq, msg) async for seq, msg in folder.find(sequence_set, selected)]
        updated = await folder.update_many([m for _s, m in found], flag_set, mode)
        for msg in updated:
            if not msg.expunged:
                selected.session_flags.update(msg.uid, flag_set, mode)
        return list(
            zip([s for s, _m in found], updated, strict=True)
        ), await folder.update_selected(selected)


# A SEARCH key that no column nor the index answers reads at most this many messages.
SEARCH_OPENS = 500
_PEOPLE = {b"FROM": "from", b"TO": "to", b"CC": "cc"}
_WORDS = {b"SUBJECT": "subject", b"BODY": "body", b"TEXT": "text"}


def _search_spec(key: Any) -> store.Spec | None:
    """The store's spec for a SEARCH key the columns and index answer, else None."""
    name = bytes(key.value).upper()
    spec: store.Spec | None
    if name in _PEOPLE:
        spec = (_PEOPLE[name], str(key.filter))
    elif name in _WORDS:
        spec = (_WORDS[name], str(key.filter))
    elif name in (b"LARGER", b"SMALLER"):
        spec = (name.decode().lower(), int(key.filter))
    elif name == b"OR":
        left, right = (_search_spec(k) for k in key.filter)
        spec = None if left is None or right is None else ("or", left, right)
    elif name == b"KEYSET":
        parts = [_search_spec(k) for k in key.filter]
        spec = None if any(p is None for p in parts) else ("and", parts)
    else:
        return None
    if spec is not None and key.inverse:
        return ("not", spec)
    return spec


def _key(name: str) -> str:
    # INBOX is case-insensitive (RFC 3501 5.1); other names are as they are.
    return "INBOX" if name.upper() == "INBOX" else name


class Login:
    """pymap's login: an address and an application password of scope IMAP (or both)."""

    def __init__(self, config: Config) -> None:
        self.config = config

    @property
    def tokens(self) -> Any:
        return None

    async def authenticate(self, credentials: ServerCredentials) -> Identity:
        try:
            ip = str(socket_info.get().peername_ip or "")
        except LookupError:
            ip = ""
        try:
            found = await self.config.store.db._in_thread(
                services.authenticate,
                credentials.authcid,
                # pysasl keeps it private: no accessor, and verify() wants a stored one.
                str(getattr(credentials, "_secret", "") or ""),
                protocol=AppPassword.Protocol.IMAP,
                ip=ip,
            )
        except services.ClientAuthError as exc:
            raise InvalidAuth(imap_text(str(exc))) from None
        return Identity(found, self.config, typed=credentials.authcid)

    async def authorize(self, authenticated: Any, authzid: str) -> Identity:
        assert isinstance(authenticated, Identity)
        if authzid and authzid.lower() != authenticated.typed.lower():
            raise InvalidAuth(imap_text(_("Identité de connexion différente de l'adresse.")))
        return authenticated


class Identity:
    def __init__(self, login: services.ClientLogin, config: Config, *, typed: str) -> None:
        self.login = login
        self.config = config
        self.typed = typed

    @property
    def name(self) -> str:
        return self.login.mailbox.address

    @property
    def roles(self) -> frozenset[str]:
        return frozenset()

    @contextlib.asynccontextmanager
    async def new_session(self) -> AsyncIterator[Session]:
        yield Session(self.login, self.config)

    async def new_token(self, *, expiration: datetime | None = None) -> str | None:
        return None

    async def get(self) -> Any:
        raise NotSupportedError()

    async def set(self, metadata: Any) -> int | None:
        raise NotSupportedError()

    async def delete(self) -> None:
        raise NotSupportedError()


__all__ = ["Config", "Login", "asyncio"]
