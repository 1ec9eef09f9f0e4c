"""A folder's messages as IMAP lists them, shared by every connection of the process.

A folder of 10,000 messages read and turned into pymap's structures by each connection
at each SELECT cost a fifth of a second of CPU and about 10 MB per connection. Here a
folder's state is one immutable ``FolderView`` per (modification sequence, \\Deleted
marks), kept by the process (``Views``) and moved forward by the entries changed since
(``Entry.modseq`` above the view's, the folder's count telling when some left); every
connection that has the folder selected points at the same view and at the same pymap
index (``ViewIndex``), and copies it only when pymap must keep a message the view
dropped (an EXPUNGE not yet told during a sequence-number command).

No rights are decided here: a connection asks the store (which asks the user's rights)
before it uses a view, at SELECT and at each change.
"""

from __future__ import annotations

import asyncio
from bisect import bisect_left
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from pymap.message import BaseLoadedMessage, BaseMessage
from pymap.parsing.specials import FetchRequirement, ObjectId
from pymap.parsing.specials.flag import Answered, Deleted, Flag, Flagged, Seen
from pymap.selected import SelectedMailbox, SynchronizedMessages, _Frozen

from clients.imap import planning

if TYPE_CHECKING:
    from pymap.parsing.command import Command
    from pymap.parsing.response import UntaggedResponse

    from clients.imap.store import Row

# One frozenset per combination of flags, shared by every message that has it (a
# frozenset is 216 bytes: 10,000 of them were 2 MB per connection).
_FLAG_SETS: dict[tuple[bool, bool, bool, bool], frozenset[Flag]] = {}


def flag_set(seen: bool, flagged: bool, answered: bool, deleted: bool) -> frozenset[Flag]:
    """The shared frozenset of these flags."""
    key = (seen, flagged, answered, deleted)
    found = _FLAG_SETS.get(key)
    if found is None:
        flags = {f for f, on in zip((Seen, Flagged, Answered, Deleted), key, strict=True) if on}
        found = _FLAG_SETS[key] = frozenset(flags)
    return found


def interned(flags: Iterable[Flag]) -> frozenset[Flag]:
    """``flags`` as the shared frozenset when they are only permanent ones."""
    flags = frozenset(flags)
    if flags <= {Seen, Flagged, Answered, Deleted}:
        return flag_set(Seen in flags, Flagged in flags, Answered in flags, Deleted in flags)
    return flags


class Message(BaseMessage):
    """A message of a folder: its entry, flags and date; its bytes read on demand (by the
    command's ``planning.Loader``). Shared by every connection that sees the folder."""

    __slots__ = ["entry_id", "size"]

    def __init__(
        self,
        uid: int,
        internal_date: datetime,
        permanent_flags: Iterable[Flag],
        *,
        entry_id: int,
        size: int,
        expunged: bool = False,
    ) -> None:
        super().__init__(
            uid,
            internal_date,
            permanent_flags,
            email_id=_NO_ID,
            thread_id=_NO_ID,
            expunged=expunged,
        )
        self.entry_id = entry_id
        self.size = size

    def copy_with(self, flags: Iterable[Flag] | None = None, *, expunged: bool = False) -> Message:
        return Message(
            self.uid,
            self.internal_date,
            self.permanent_flags if flags is None else interned(flags),
            entry_id=self.entry_id,
            size=self.size,
            expunged=expunged,
        )

    async def load_content(self, requirement: FetchRequirement) -> BaseLoadedMessage:
        return await planning.load_content(self, requirement)


# Messages have no object ids here (no OBJECTID capability): one shared empty one.
_NO_ID = ObjectId(None)


class ViewIndex:
    """pymap's ``SynchronizedMessages`` structures for one view, built once and never changed."""

    __slots__ = ("cache", "flags_key_map", "flags_key_set", "seqs", "sorted", "uids")

    def __init__(self, messages: dict[int, Message]) -> None:
        self.sorted = list(messages)  # the view's dict is in UID order
        self.uids = set(self.sorted)
        self.seqs = {uid: seq for seq, uid in enumerate(self.sorted, 1)}
        self.cache: dict[int, Any] = dict(messages)
        self.flags_key_map = {uid: msg.flags_key for uid, msg in messages.items()}
        self.flags_key_set = set(self.flags_key_map.values())


@dataclass(eq=False)
class FolderView:
    """A folder's messages at one modification sequence, in UID order (never changed)."""

    folder_id: int
    modseq: int
    uid_next: int
    messages: dict[int, Message]
    # The \Deleted marks it was made with (Config.deleted's version for the folder).
    deleted_version: int = 0
    _index: ViewIndex | None = field(default=None, repr=False)
    _unseen: list[int] | None = field(default=None, repr=False)

    @property
    def index(self) -> ViewIndex:
        if self._index is None:
            self._index = ViewIndex(self.messages)
        return self._index

    @property
    def unseen(self) -> list[int]:
        """The UIDs without \\Seen, in order."""
        if self._unseen is None:
            self._unseen = [
                uid for uid, msg in self.messages.items() if Seen not in msg.permanent_flags
            ]
        return self._unseen

    @property
    def next_uid(self) -> int:
        # The counter's: above every UID the folder ever gave, moved-away ones included.
        return max(self.uid_next, next(reversed(self.messages), 0) + 1)

    def first_unseen(self) -> int | None:
        """The sequence number of the first message without \\Seen."""
        unseen = self.unseen
        if not unseen:
            return None
        return bisect_left(self.index.sorted, unseen[0]) + 1

    def with_messages(self, changed: Sequence[Message], *, deleted_version: int) -> FolderView:
        """This view with these messages' new flags (\\Deleted marks, a STORE just made)."""
        messages = dict(self.messages)
        for msg in changed:
            if msg.uid in messages:
                messages[msg.uid] = msg
        return FolderView(
            self.folder_id, self.modseq, self.uid_next, messages, deleted_version=deleted_version
        )


def build(
    folder_id: int,
    modseq: int,
    uid_next: int,
    rows: Iterable[Row],
    deleted: set[int],
    *,
    base: FolderView | None = None,
    keep: set[int] | None = None,
    deleted_version: int = 0,
) -> FolderView:
    """A view from the store's rows: all of them, or those changed since ``base``.

    ``keep``: the folder's UIDs now, when some of ``base``'s left (else all are kept).
    """
    messages: dict[int, Message] = {}
    if base is not None:
        old = base.messages
        messages = dict(old) if keep is None else {u: m for u, m in old.items() if u in keep}
    out_of_order = False
    last = next(reversed(messages), 0)
    for row in rows:
        uid = row.uid
        if keep is not None and uid not in keep:
            continue
        if uid <= last:
            out_of_order = True
        else:
            last = uid
        messages[uid] = Message(
            uid,
            row.received_at.astimezone(UTC),
            flag_set(row.seen, row.flagged, row.answered, uid in deleted),
            entry_id=row.entry_id,
            size=row.size,
        )
    if out_of_order:
        messages = dict(sorted(messages.items()))
    return FolderView(folder_id, modseq, uid_next, messages, deleted_version=deleted_version)


def remark(view: FolderView, deleted: set[int], version: int) -> FolderView:
    """``view`` with these \\Deleted marks (another connection's STORE or EXPUNGE)."""
    changed = [
        msg.copy_with(interned(msg.permanent_flags ^ {Deleted}))
        for uid, msg in view.messages.items()
        if (Deleted in msg.permanent_flags) != (uid in deleted)
    ]
    return view.with_messages(changed, deleted_version=version)


class Views:
    """The process's views, one per folder, and a lock per folder so that one connection
    reads a change while the others wait for it rather than read it too."""

    def __init__(self) -> None:
        self.current: dict[int, FolderView] = {}
        self.locks: dict[int, asyncio.Lock] = {}
        # \Deleted marks awaiting EXPUNGE: folder id → UIDs, and their version.
        self.deleted: dict[int, set[int]] = {}
        self.deleted_versions: dict[int, int] = {}

    def lock(self, folder_id: int) -> asyncio.Lock:
        return self.locks.setdefault(folder_id, asyncio.Lock())

    def deleted_of(self, folder_id: int) -> set[int]:
        return self.deleted.setdefault(folder_id, set())

    def deleted_version(self, folder_id: int) -> int:
        return self.deleted_versions.get(folder_id, 0)

    def marks_changed(self, folder_id: int) -> int:
        version = self.deleted_versions[folder_id] = self.deleted_version(folder_id) + 1
        return version


# --------------------------------------------------------------------------- pymap's side


class SharedMessages(SynchronizedMessages):
    """pymap's per-connection message list, pointing at a view's index until pymap
    changes it (then it copies it: that connection alone pays)."""

    def __init__(self) -> None:
        super().__init__()
        self._shared: ViewIndex | None = None

    def share(self, index: ViewIndex) -> None:
        self._shared = index
        self._uids = index.uids
        self._sorted = index.sorted
        self._seqs_cache = index.seqs
        self._cache = index.cache
        self._flags_key_map = index.flags_key_map
        self._flags_key_set = index.flags_key_set

    def _own(self) -> None:
        if self._shared is not None:
            self._shared = None
            self._uids = set(self._uids)
            self._sorted = list(self._sorted)
            self._seqs_cache = dict(self._seqs_cache)
            self._cache = dict(self._cache)
            self._flags_key_map = dict(self._flags_key_map)
            self._flags_key_set = set(self._flags_key_set)

    def _update(self, messages: Iterable[Any]) -> None:
        messages = list(messages)
        if messages:
            self._own()
            super()._update(messages)

    def _remove(self, uids: Iterable[int], pending: bool) -> None:
        uids = list(uids)
        if pending:
            self._pending_remove.update(uids)
        elif uids or self._pending_remove:
            self._own()
            super()._remove(uids, pending)


class _Light:
    """What pymap's ``_compare`` reads of a state, when nothing but the session's flags
    can have moved (the same view before and after): no set of 10,000 UIDs compared."""

    def __init__(self, frozen: _Frozen) -> None:
        self.is_deleted = frozen.is_deleted
        self.uids: frozenset[int] = frozenset()
        self.flags: frozenset[Any] = frozenset()
        self.seqs_cache = frozen.seqs_cache
        self.recent = frozen.recent
        self.sflags = frozen.sflags


class Selected(SelectedMailbox):
    """pymap's selected folder, following the process's views of the folder."""

    view: FolderView | None = None

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("_messages", SharedMessages())
        super().__init__(*args, **kwargs)

    @property
    def shared(self) -> SharedMessages:
        messages = self._messages
        assert isinstance(messages, SharedMessages)
        return messages

    def follow(self, view: FolderView) -> None:
        """Move to ``view``: untagged EXISTS/EXPUNGE/FETCH follow at the command's end."""
        messages = self.shared
        if view is self.view and not messages._pending_remove:
            return
        self.view = view
        if not messages._uids and not messages._pending_remove:
            messages.share(view.index)
            return
        expunged = messages._uids - view.index.uids
        if messages._pending_remove or (expunged and self._hide_expunged):
            # pymap keeps an expunged message that a sequence-number command must not
            # renumber: its own comparison, on this connection's copy.
            self.set_messages(list(view.messages.values()))
            return
        messages.share(view.index)
        self._session_flags.remove(expunged)

    def fork(self, command: Command) -> tuple[SelectedMailbox, Iterable[UntaggedResponse]]:
        messages = self.shared
        session_flags = self._session_flags
        frozen = _Frozen.__new__(_Frozen)
        frozen.is_deleted = self._is_deleted
        if messages._shared is not None:
            # The view's structures never change: the next command compares with them as they are.
            frozen.uids = messages._uids
            frozen.seqs_cache = messages._seqs_cache
            frozen.flags = messages._flags_key_set
        else:
            frozen.uids = messages._uids.copy()
            frozen.seqs_cache = messages._seqs_cache.copy()
            frozen.flags = messages._flags_key_set.copy()
        frozen.recent = session_flags.recent_uids & frozen.uids
        frozen.sflags = frozenset(session_flags.flags.items())
        copy = type(self)(
            self._mailbox_id,
            self._readonly,
            self._permanent_flags,
            session_flags,
            self._selected_set,
            self._lookup,
            _mod_sequence=self._mod_sequence,
            _prev=frozen,
            _messages=messages,
        )
        copy.view = self.view
        untagged: Iterable[UntaggedResponse] = []
        prev = self._prev
        if prev is not None:
            with_uid: bool = getattr(command, "uid", False)
            if prev.uids is frozen.uids and prev.flags is frozen.flags:
                untagged = list(self._compare(_Light(prev), _Light(frozen), with_uid))  # type: ignore[arg-type]
            else:
                untagged = list(self._compare(prev, frozen, with_uid))
        return copy, untagged
