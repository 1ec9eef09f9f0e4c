"""pymap's backend over our store: sessions, folders and messages (no IMAP parsing here).

pymap parses the commands and keeps each connection's view of its selected folder
(sequence numbers, untagged EXISTS/EXPUNGE/FETCH); this module answers its questions
from the store (``clients.imap.store``, run in worker threads: the event loop never
waits on the database):

- a folder's state is a view of its entries in UID order shared by the process's
  connections (``clients.imap.folderview``), moved forward only when the folder's
  modification sequence moved (one small query per NOOP, per second in IDLE), by the
  entries changed since;
- what a FETCH or a SEARCH reads is planned in ``clients.imap.planning``;
- \\Seen, \\Flagged and \\Answered are the entry's flags; \\Deleted lives in this process
  until EXPUNGE, which moves to the trash (in the trash: the webmail's delete);
- a body is read as the webmail's "source" serves it and, in a shared box, journaled.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Callable, Iterable, Sequence
from datetime import datetime
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
from pymap.message import BaseLoadedMessage
from pymap.parsing.message import AppendMessage
from pymap.parsing.response.code import AppendUid, CopyUid
from pymap.parsing.specials import FetchRequirement, ObjectId, SequenceSet
from pymap.parsing.specials.flag import Answered, Deleted, Flag, Flagged, Recent, Seen
from pymap.search import SearchCriteriaSet, SearchParams
from pymap.selected import SelectedMailbox, SelectedSet
from pysasl.creds.server import ServerCredentials

from clients import services
from clients.imap import store
from clients.imap.folderview import (
    FolderView,
    Message,
    Selected,
    Views,
    build,
    interned,
    remark,
)
from clients.imap.idle import Watcher
from clients.imap.patterns import MAX_PATTERN, MAX_WILDCARDS, glob_matches
from clients.imap.planning import (
    FETCH_NEEDS,
    FETCH_OPENS,
    LOADER,
    SEARCH_OPENS,
    Loader,
    Predicate,
    search_spec,
    view_search,
)
from clients.models import AppPassword
from mailboxes.models import Folder
from mailboxes.transport.inbound import ThreadedDatabase, smtp_text

T = TypeVar("T")

log = logging.getLogger(__name__)

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
        # The folders' messages, shared by the connections (and the \Deleted marks).
        self.views = Views()

    @property
    def backend_capability(self) -> BackendCapability:
        return BackendCapability(
            idle=True, object_id=False, multi_append=False, custom=[b"SPECIAL-USE"]
        )

    @property
    def greeting(self) -> bytes:
        return b"Messagerie MSSante prete"


class FolderData:
    """One folder of the store, as pymap's ``MailboxDataInterface`` wants it: this
    connection's handle on the process's shared view of the folder."""

    def __init__(self, session: Session, ref: store.FolderRef) -> None:
        self.session = session
        self.ref = ref
        self.config = session.config
        self._view: FolderView | None = None

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
        return self.config.views.deleted_of(self.ref.folder_id)

    @property
    def _messages(self) -> dict[int, Message]:
        return self._view.messages if self._view is not None else {}

    @property
    def _modseq(self) -> int | None:
        return self._view.modseq if self._view is not None else None

    # --- the store

    async def _refresh(self, *, force: bool = False) -> FolderView:
        """The folder's current view: the process's when the folder has not moved (one
        small query), else moved forward by the entries changed since (rights asked)."""
        views = self.config.views
        folder_id = self.ref.folder_id
        login = self.session.login
        seq = await self.config.store(store.modseq, login, folder_id)
        view = views.current.get(folder_id)
        if not force and _current(view, seq, views.deleted_version(folder_id)):
            assert view is not None
            self._view = view
            return view
        async with views.lock(folder_id):
            # Another connection may have read it while this one waited.
            view = views.current.get(folder_id)
            version = views.deleted_version(folder_id)
            if force or not _current(view, seq, version):
                view = await self._read(view if not force else None, version)
                views.current[folder_id] = view
        assert view is not None
        self._view = view
        return view

    async def _read(self, base: FolderView | None, version: int) -> FolderView:
        login = self.session.login
        folder_id = self.ref.folder_id
        deleted = self._deleted
        if base is None:
            seq, uid_next, rows = await self.config.store(store.folder_state, login, folder_id)
            view = build(folder_id, seq, uid_next, rows, deleted, deleted_version=version)
            deleted.intersection_update(view.messages)
            return view
        seq, uid_next, total, rows = await self.config.store(
            store.folder_changes, login, folder_id, base.modseq
        )
        new = sum(1 for row in rows if row.uid not in base.messages)
        keep = None
        if len(base.messages) + new != total:
            # Some left (moved, deleted): the UIDs still there.
            keep = set(await self.config.store(store.folder_uids, login, folder_id))
            deleted.intersection_update(keep)
        if base.deleted_version != version:
            base = remark(base, deleted, version)
        return build(
            folder_id, seq, uid_next, rows, deleted, base=base, keep=keep, deleted_version=version
        )

    def plan(self, messages: Sequence[Message], *, body: bool) -> None:
        """The messages the command will load, in order (read by batches of ``store.BATCH``)."""
        LOADER.set(Loader(self, messages, body=body))

    async def update_selected(
        self, selected: SelectedMailbox, *, wait_on: Event | None = None, fresh: bool = False
    ) -> SelectedMailbox:
        """The client's state moved to the folder's (``fresh``: the command just refreshed)."""
        view: FolderView | None
        if fresh and self._view is not None:
            view = self._view
        elif wait_on is not None:
            # IDLE: until the folder moves or the client is done (the process's watcher
            # looks at every watched folder once a second, in one query).
            while not wait_on.is_set():
                before = self._modseq
                await self._refresh()
                if self._modseq != before:
                    break
                await self.config.watcher.wait(self.ref.folder_id, self._modseq, wait_on)
            view = self._view
        else:
            view = await self._refresh()
        assert view is not None
        if isinstance(selected, Selected):
            selected.follow(view)
        else:
            selected.set_messages(list(view.messages.values()))
        return selected

    async def snapshot(self) -> MailboxSnapshot:
        view = await self._refresh()
        return MailboxSnapshot(
            self.mailbox_id,
            self.readonly,
            self.uid_validity,
            self.permanent_flags,
            self.session_flags,
            len(view.messages),
            0,
            len(view.unseen),
            view.first_unseen(),
            view.next_uid,
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
        for seq, msg in self.found(seq_set, selected):
            yield seq, msg

    def found(self, seq_set: SequenceSet, selected: SelectedMailbox) -> list[tuple[int, Message]]:
        """The messages of ``seq_set`` as the view has them now (expunged: as the client knew them)."""
        messages = self._messages
        out = []
        for seq, cached_msg in selected.messages.get_all(seq_set):
            msg = messages.get(cached_msg.uid)
            if msg is None:
                if not isinstance(cached_msg, Message):
                    raise IndexError(cached_msg.uid)
                msg = cached_msg.copy_with(expunged=True)
            out.append((seq, msg))
        return out

    def known(self, selected: SelectedMailbox, uids: Iterable[int]) -> list[tuple[int, Message]]:
        """These UIDs' messages, those the client knows, with their sequence numbers."""
        messages = self._messages
        known = selected.messages
        out = []
        for uid in uids:
            cached = known.get(uid)
            if cached is None:
                continue
            msg = messages.get(uid)
            if msg is None:
                if not isinstance(cached, Message):
                    continue
                msg = cached.copy_with(expunged=True)
            out.append((known._seqs_cache[uid], msg))
        return out

    def matching(self, selected: SelectedMailbox, test: Predicate) -> list[tuple[int, Message]]:
        """The messages the client knows that pass ``test`` (a SEARCH the view answers)."""
        messages = self._messages
        known = selected.messages
        view = self._view
        if view is not None and getattr(known, "_shared", None) is view.index:
            # The client knows the view as it is: its messages in order are the answer's.
            return [(seq, msg) for seq, msg in enumerate(messages.values(), 1) if test(seq, msg)]
        out = []
        # pymap's list of the client's UIDs in order (its own copy, or an older view).
        for seq, uid in enumerate(known._sorted, 1):
            msg = messages.get(uid)
            if msg is None:
                cached = known.get(uid)
                if not isinstance(cached, Message):
                    continue
                msg = cached.copy_with(expunged=True)
            if test(seq, msg):
                out.append((seq, msg))
        return out

    async def find_deleted(self, seq_set: SequenceSet, selected: SelectedMailbox) -> Sequence[int]:
        return [
            msg.uid
            for _, msg in self.found(seq_set, selected)
            if not msg.expunged and Deleted in msg.permanent_flags
        ]

    async def update_many(
        self, messages: list[Message], flag_set: frozenset[Flag], mode: FlagOp
    ) -> list[Message]:
        """Apply a STORE to these messages: one write per flag value, not one per message."""
        changes: dict[tuple[str, bool], list[int]] = {}
        updated = []
        fresh_ones = []
        deleted = self._deleted
        marks = False
        for msg in messages:
            if msg.expunged:
                updated.append(msg)
                continue
            new = interned(mode.apply(msg.permanent_flags, flag_set & PERMANENT))
            for flag, field in ((Seen, "seen"), (Flagged, "flagged"), (Answered, "answered")):
                if (flag in new) != (flag in msg.permanent_flags):
                    changes.setdefault((field, flag in new), []).append(msg.entry_id)
            if (Deleted in new) != (msg.uid in deleted):
                marks = True
                if Deleted in new:
                    deleted.add(msg.uid)
                else:
                    deleted.discard(msg.uid)
            fresh = msg.copy_with(new) if new is not msg.permanent_flags else msg
            fresh_ones.append(fresh)
            updated.append(fresh)
        for (field, value), ids in changes.items():
            await self.config.store(
                store.set_flags, self.session.login, self.ref.folder_id, ids, **{field: value}
            )
        view = self._view
        if view is not None and (marks or changes):
            # The process's view at once (the written flags also move the folder's modseq:
            # the next refresh reads them back from the store).
            views = self.config.views
            folder_id = self.ref.folder_id
            version = views.marks_changed(folder_id) if marks else views.deleted_version(folder_id)
            current = views.current.get(folder_id, view)
            view = current.with_messages(fresh_ones, deleted_version=version)
            if not changes:
                views.current[folder_id] = view
            self._view = view
        return updated

    async def update(
        self, uid: int, cached_msg: CachedMessage, flag_set: frozenset[Flag], mode: FlagOp
    ) -> Message:
        msg = await self.get(uid, cached_msg)
        return (await self.update_many([msg], flag_set, mode))[0]

    async def delete(self, uids: Iterable[int]) -> None:
        uids = list(uids)
        ids = [self._messages[uid].entry_id for uid in uids if uid in self._messages]
        if ids:
            await self.config.store(store.expunge, self.session.login, self.ref.folder_id, ids)
        self._deleted.difference_update(uids)
        self.config.views.marks_changed(self.ref.folder_id)
        await self._refresh()

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


def _current(view: FolderView | None, seq: int, version: int) -> bool:
    r"""Whether ``view`` shows the folder at modseq ``seq`` with the current \Deleted marks."""
    return view is not None and view.modseq >= seq and view.deleted_version == version


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
        selected = Selected(
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
        found = folder.found(sequence_set, selected)
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
        """SEARCH: flags, dates, sizes and UID sets on the folder's view; people and words
        from the columns and the search index (no message opened); anything else reads
        the messages left, at most SEARCH_OPENS of them."""
        folder = await self._selected_folder(selected)
        await folder._refresh()
        params = SearchParams(selected, disabled=self.config.disable_search_keys)
        test = view_search(keys, params)
        if test is not None:
            found = folder.matching(selected, test)
            return found, await folder.update_selected(selected, fresh=True)
        specs, rest = [], []
        for key in keys:
            spec = search_spec(key)
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
        search = SearchCriteriaSet(rest, params)
        if served is None:
            candidates = folder.found(search.sequence_set, selected)
        else:
            # The store's few, not the folder's thousands (a sequence set among the
            # keys is still tested below, with the others).
            candidates = folder.known(selected, sorted(served))
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
        self.config.views.marks_changed(folder.ref.folder_id)
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
        found = folder.found(sequence_set, selected)
        updated = await folder.update_many([m for _s, m in found], flag_set, mode)
        for msg in updated:
            if not msg.expunged:
                selected.session_flags.update(msg.uid, flag_set, mode)
        return list(
            zip([s for s, _m in found], updated, strict=True)
        ), await folder.update_selected(selected)


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
