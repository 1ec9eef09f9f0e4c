"""What a FETCH or a SEARCH needs of the store, decided before anything is read.

- FETCH: which attributes open a body (the access journal), what each message's content
  must be ("none", "headers" from the sealed header column, "whole" bytes, or a parsed
  "body"), and the ``Loader`` that reads the command's messages by batches;
- SEARCH: the keys the columns and the search index answer (``search_spec``, computed in
  SQL by the store) and those the folder's view answers alone (``view_predicate``: flags,
  dates, sizes, UID and sequence sets), without a message opened.
"""

from __future__ import annotations

import contextvars
from collections.abc import Callable, Collection, Iterable, Sequence
from datetime import UTC, datetime, time, timedelta
from typing import TYPE_CHECKING, Any

from pymap.bytes import Writeable
from pymap.message import BaseLoadedMessage
from pymap.mime import MessageBody, MessageContent, MessageHeader
from pymap.parsing.specials import FetchRequirement
from pymap.parsing.specials.flag import Answered, Deleted, Flagged, Seen
from pymap.search import SearchCriteria, SearchParams

from clients.imap import store

if TYPE_CHECKING:
    from clients.imap.backend import FolderData
    from clients.imap.folderview import Message

# Whether the FETCH being answered asks for a message's body (not only its headers): set
# by the connection's state for each FETCH (pymap's own requirement counts a
# BODY.PEEK[HEADER] as the whole content), read when a message is loaded.
FETCH_OPENS: contextvars.ContextVar[bool] = contextvars.ContextVar("imap_fetch_opens", default=True)
HEADER_ONLY = frozenset({b"HEADER", b"HEADER.FIELDS", b"HEADER.FIELDS.NOT", b"MIME"})

# What the FETCH being answered needs of each message's content: "none" (UID, FLAGS,
# INTERNALDATE), "headers" (headers, envelope, size: the sealed header column, no blob
# opened), "whole" (its bytes, no MIME structure) or "body". Set by the connection's
# state for each FETCH, like FETCH_OPENS.
FETCH_NEEDS: contextvars.ContextVar[str] = contextvars.ContextVar(
    "imap_fetch_needs", default="body"
)


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
    """The message for a FETCH of its bytes or its headers only: its header lines found
    (each header parsed only if asked: ENVELOPE), its body one flat part (a multipart's
    MIME structure is parsed only when BODYSTRUCTURE or a part is asked)."""
    view = memoryview(raw)
    lines = MessageContent._find_lines(raw)
    header_lines, body_lines = MessageContent._split_lines(raw, lines)
    header = MessageHeader._parse(raw, view, header_lines)
    body = MessageBody._parse(raw, view, body_lines, None)
    return MessageContent(raw, header, body)


class HeaderOnly(BaseLoadedMessage):
    """A message loaded from its header block: its size is the stored message's, its
    header block handed out as it is stored (BODY.PEEK[HEADER], RFC822.HEADER) and parsed
    only when a header is asked by name (ENVELOPE, HEADER.FIELDS)."""

    __slots__ = ["_raw"]

    def __init__(self, message: Any, requirement: FetchRequirement, raw: bytes) -> None:
        super().__init__(message, requirement, None)
        self._raw = raw

    @property
    def content(self) -> MessageContent:
        if self._content is None:
            self._content = shallow_content(self._raw)
        return self._content

    def get_message_headers(
        self,
        section: Sequence[int] | None = None,
        subset: Collection[bytes] | None = None,
        inverse: bool = False,
    ) -> Writeable:
        if not section and subset is None and _is_header_block(self._raw):
            return Writeable.wrap(self._raw)
        return super().get_message_headers(section, subset, inverse)

    def get_size(self, section: Sequence[int] | None = None) -> int:
        if not section:
            return int(getattr(self.message, "size"))  # noqa: B009 (our Message)
        return super().get_size(section)


def _is_header_block(raw: bytes) -> bool:
    """Whether ``raw`` is a header block and nothing else (its first blank line ends it):
    then it is its own header, as pymap's parse would give it back."""
    for blank in (b"\r\n\r\n", b"\n\n"):
        end = raw.find(blank)
        if end >= 0:
            return end + len(blank) == len(raw)
    return False


class Loader:
    """The messages one FETCH or SEARCH reads, in its order, a batch of ``store.BATCH`` at a
    time (one query and one rights check per batch, not per message)."""

    def __init__(self, folder: FolderData, messages: Sequence[Message], *, body: bool) -> None:
        self.folder = folder
        self.ids = [m.entry_id for m in messages if not m.expunged]
        self.order = {entry_id: i for i, entry_id in enumerate(self.ids)}
        self.sizes = {m.entry_id: m.size for m in messages}
        self.body = body
        self.found: dict[int, bytes] = {}

    async def loaded(self, entry_id: int, *, body: bool, opening: bool) -> bytes | None:
        """One message's bytes (its header block when not ``body``), from the batch."""
        if entry_id in self.found:
            return self.found.pop(entry_id)
        ids = [entry_id]
        start = self.order.get(entry_id)
        if start is not None and body == self.body:
            ids, total = [], 0
            for other in self.ids[start : start + store.BATCH]:
                total += self.sizes.get(other, 0) if body else 0
                if ids and total > store.BATCH_BYTES:
                    break
                ids.append(other)
        folder = self.folder
        self.found = await folder.config.store(
            store.load_many,
            folder.session.login,
            folder.ref.folder_id,
            ids,
            body=body,
            opening=opening,
        )
        return self.found.pop(entry_id, None)


# The FETCH or SEARCH being answered (set by the session's fetch_messages/search_mailbox,
# read when pymap loads a message while it writes the response, in the same task).
LOADER: contextvars.ContextVar[Loader | None] = contextvars.ContextVar("imap_loader", default=None)


async def load_content(msg: Message, requirement: FetchRequirement) -> BaseLoadedMessage:
    """A message's content as the command being answered needs it (see FETCH_NEEDS)."""
    loader = LOADER.get()
    if requirement.has_none(FetchRequirement.CONTENT) or msg.expunged or loader is None:
        return BaseLoadedMessage(msg, requirement, None)
    # Headers, envelope and size come from the header column; anything else reads
    # the message (a SEARCH sets "body" when it needs more than the headers).
    needs = FETCH_NEEDS.get()
    body = requirement.has_all(FetchRequirement.BODY) and needs != "headers"
    raw = await loader.loaded(msg.entry_id, body=body, opening=FETCH_OPENS.get())
    if raw is None:  # gone meanwhile
        return BaseLoadedMessage(msg, requirement, None)
    if body and needs == "whole":
        return BaseLoadedMessage(msg, requirement, shallow_content(raw))
    if body:
        return BaseLoadedMessage(msg, requirement, MessageContent.parse(raw))
    # A header block has no body to structure: its Content-Type is not parsed (the
    # email package's header parser was a quarter of a 1,000-header FETCH).
    return HeaderOnly(msg, requirement, raw)


# --------------------------------------------------------------------------- SEARCH

# A SEARCH key that no column, no index and no view answers reads at most this many messages.
SEARCH_OPENS = 500
_PEOPLE = {b"FROM": "from", b"TO": "to", b"CC": "cc"}
_WORDS = {b"SUBJECT": "subject", b"BODY": "body", b"TEXT": "text"}


def search_spec(key: Any) -> store.Spec | None:
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
        left, right = (search_spec(k) for k in key.filter)
        spec = None if left is None or right is None else ("or", left, right)
    elif name == b"KEYSET":
        parts = [search_spec(k) for k in key.filter]
        spec = None if any(p is None for p in parts) else ("and", parts)
    else:
        return None
    if spec is not None and key.inverse:
        return ("not", spec)
    return spec


# The permanent flags a key asks (the view's messages carry them: no session flag needed).
_FLAG_KEYS = {
    b"SEEN": (Seen, True),
    b"UNSEEN": (Seen, False),
    b"FLAGGED": (Flagged, True),
    b"UNFLAGGED": (Flagged, False),
    b"ANSWERED": (Answered, True),
    b"UNANSWERED": (Answered, False),
    b"DELETED": (Deleted, True),
    b"UNDELETED": (Deleted, False),
}

Predicate = Callable[[int, Any], bool]


def view_predicate(key: Any, params: SearchParams) -> Predicate | None:
    """A test of (sequence number, message) for a key the folder's view answers alone
    (flags, internal dates, sizes, UID and sequence sets, and their NOT/OR/sets), else None.

    The same answers as pymap's criteria (``pymap.search``), without its per-message
    machinery: a SEARCH UNSEEN of 10,000 messages is a loop over the view, no message read.
    """
    if key.inverse:
        inner = view_predicate(key.not_inverse, params)
        return None if inner is None else (lambda seq, msg: not inner(seq, msg))
    name = bytes(key.value).upper()
    if name == b"ALL":
        return lambda seq, msg: True
    if name in _FLAG_KEYS:
        flag, wanted = _FLAG_KEYS[name]
        if wanted:
            return lambda seq, msg: flag in msg.permanent_flags
        return lambda seq, msg: flag not in msg.permanent_flags
    if name in (b"SINCE", b"BEFORE", b"ON"):
        # pymap compares the internal date's day (ours are in UTC) with the key's: the
        # same as comparing the date-time with that day's midnight, UTC, and faster.
        day = key.filter_datetime.date()
        start = datetime.combine(day, time(0), UTC)
        end = start + timedelta(days=1)
        if name == b"SINCE":
            return lambda seq, msg: msg.internal_date >= start
        if name == b"BEFORE":
            return lambda seq, msg: msg.internal_date < start
        return lambda seq, msg: start <= msg.internal_date < end
    if name == b"LARGER":
        larger = key.filter_int
        return lambda seq, msg: msg.size > larger
    if name == b"SMALLER":
        smaller = key.filter_int
        return lambda seq, msg: msg.size < smaller
    if name == b"SEQSET":
        seq_set = key.filter_sequence_set
        if seq_set.uid:
            uids = seq_set.flatten(params.max_uid)
            return lambda seq, msg: msg.uid in uids
        seqs = seq_set.flatten(params.max_seq)
        return lambda seq, msg: seq in seqs
    if name in (b"KEYSET", b"OR"):
        parts = [view_predicate(k, params) for k in key.filter]
        if any(p is None for p in parts):
            return None
        tests = [p for p in parts if p is not None]
        if name == b"OR":
            left, right = tests
            return lambda seq, msg: left(seq, msg) or right(seq, msg)
        return lambda seq, msg: all(t(seq, msg) for t in tests)
    if name in (b"RECENT", b"NEW", b"OLD", b"DRAFT", b"UNDRAFT", b"KEYWORD", b"UNKEYWORD"):
        # Session flags (\Recent) or flags the view does not keep: pymap's own test.
        crit = SearchCriteria.of(key, params)
        return lambda seq, msg: crit.matches(seq, msg, None)  # type: ignore[arg-type]
    return None


def view_search(keys: Iterable[Any], params: SearchParams) -> Predicate | None:
    """One test for all these keys (they must all match), or None when one needs more."""
    tests = []
    for key in keys:
        test = view_predicate(key, params)
        if test is None:
            return None
        tests.append(test)
    if len(tests) == 1:
        return tests[0]
    return lambda seq, msg: all(t(seq, msg) for t in tests)
