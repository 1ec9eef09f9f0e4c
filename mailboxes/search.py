"""The search index of the mailboxes: keyed tokens, no word at rest (docs/decisions.md).

Each entry holds ``search_tokens``: the HMACs (``mssante.lib.searchindex``) of the terms
of its message — subject, correspondents, text body (or the text of its HTML), readable
attachments (plain text, CDA documents, those inside an IHE_XDM.ZIP) and attachment
names — under a key of its mailbox, derived (HKDF) from the master key. They are
computed where the plaintext is already in hand: the pipeline's delivery (the scan read
the message), the sender's Sent copy (the door holds the bytes), and ``reindex`` for
what was stored before (``manage.py rebuild_search_index``).

A search computes the tokens of its words under the box's key for every master key of
the ring (entries indexed before a rotation keep the old key's tokens until
``rebuild_search_index`` re-tokenises them) and asks for the entries holding them all.
"""

from __future__ import annotations

import functools
import html
import logging
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import nh3
from django.db import connection, transaction
from django.db.models import F

from mailboxes import blobs
from mailboxes.models import Entry, Folder, Message
from mssante.lib import mime, searchindex, xdm

log = logging.getLogger(__name__)

# Attachments whose text is indexed (read safely: no parser that runs anything). PDF is
# not: no PDF text extractor is among the project's dependencies (decisions.md).
TEXT_TYPES = frozenset({"text/plain", "text/csv"})
CDA_TYPES = frozenset({"text/xml", "application/xml", "application/hl7-cda+xml"})
# The bytes of attachments read for their text, per message.
MAX_ATTACHMENT_BYTES = 2_000_000


# --------------------------------------------------------------------------- keys


@functools.lru_cache(maxsize=1024)
def _derived(master: bytes, context: str) -> bytes:
    return searchindex.derive_key(master, context)


def _key_ids() -> list[str]:
    ring = blobs.keyring()
    return [ring.current, *(k for k in ring if k != ring.current)]


def term_key(key_id: str | None = None) -> bytes:
    """The key the terms of every message are digested with (per master key)."""
    ring = blobs.keyring()
    return _derived(ring[key_id or ring.current], "mssante/search/v1/terms")


def box_key(mailbox_id: int, key_id: str | None = None) -> bytes:
    """The search key of a mailbox under one master key (the current one by default)."""
    ring = blobs.keyring()
    return _derived(ring[key_id or ring.current], f"mssante/search/v1/box/{mailbox_id}")


def prepare(terms: Iterable[str]) -> bytes:
    """A message's terms digested once (current master key), for ``entry_tokens``."""
    return searchindex.digests(term_key(), terms)


def entry_tokens(mailbox_id: int, prepared: bytes) -> list[int]:
    """The tokens to store on an entry of this mailbox (current master key)."""
    return searchindex.tokens(box_key(mailbox_id), prepared)


def terms_tokens(mailbox_id: int, terms: Iterable[str]) -> list[int]:
    """``entry_tokens`` of terms not prepared yet (one recipient)."""
    return entry_tokens(mailbox_id, prepare(terms))


def query_tokens(mailbox_id: int, query: searchindex.Query) -> list[list[int]]:
    """The query's tokens under each master key of the ring (current first)."""
    return [
        searchindex.tokens(box_key(mailbox_id, k), searchindex.digests(term_key(k), query.terms))
        for k in _key_ids()
    ]


# --------------------------------------------------------------------------- what is indexed


def _html_text(value: str) -> str:
    # nh3 with no tag allowed keeps the text and drops scripts and styles with their
    # content; what is left is escaped text.
    return html.unescape(nh3.clean(value[: searchindex.MAX_TEXT * 2], tags=set()))


def _attachment_texts(raw: bytes, parsed: mime.ParsedMessage) -> list[str]:
    wanted = [
        p
        for p in parsed.attachments
        if p.content_type in TEXT_TYPES
        or p.content_type in CDA_TYPES
        or p.filename.upper() == xdm.FILENAME
    ]
    if not wanted:
        return []
    texts: list[str] = []
    budget = MAX_ATTACHMENT_BYTES
    for _index, part in mime.get_parts(raw):
        if budget <= 0:
            break
        if part.content_type in TEXT_TYPES:
            texts.append(mime.guess_decode(part.data[:budget]))
        elif part.content_type in CDA_TYPES:
            texts.append(xdm.cda_text(part.data[:budget]))
        elif part.filename.upper() == xdm.FILENAME:
            try:
                package = xdm.read(part.data)
            except xdm.XdmError:
                continue  # an unsafe archive is never unpacked
            for document in package.documents:
                texts.append(document.title)
                if document.mime_type in CDA_TYPES:
                    texts.append(xdm.cda_text(document.data))
                elif document.mime_type in TEXT_TYPES:
                    texts.append(mime.guess_decode(document.data[:budget]))
        budget -= len(part.data)
    return texts


def document(raw: bytes) -> searchindex.Document:
    """What the index reads of a raw message (parsed within the MIME limits)."""
    parsed = mime.parse_message(raw)
    doc = searchindex.Document(subject=parsed.subject)
    people = [parsed.from_, *([parsed.sender] if parsed.sender else [])]
    doc.senders = [v for name, addr in people for v in (name, addr) if v]
    doc.recipients = [v for name, addr in [*parsed.to, *parsed.cc] for v in (name, addr) if v]
    if parsed.text:
        doc.texts.append(parsed.text)
    if parsed.html:
        doc.texts.append(_html_text(parsed.html))
    doc.attachment_names = [p.filename for p in parsed.attachments]
    doc.has_attachments = bool(parsed.attachments)
    if parsed.attachments and parsed.too_complex is None:
        doc.texts.extend(_attachment_texts(raw, parsed))
    return doc


PREVIEW_LENGTH = 140


def preview(doc: searchindex.Document) -> str:
    """The first words of the text body (or of the HTML's text), at most PREVIEW_LENGTH."""
    text = " ".join(" ".join(doc.texts[:1]).split()) if doc.texts else ""
    if len(text) <= PREVIEW_LENGTH:
        return text
    return text[: PREVIEW_LENGTH - 1].rsplit(" ", 1)[0] + "…"


def index_sent_copies(terms: dict[int, bytes]) -> int:
    """The sender's copy of each message whose terms were just read, indexed with them.

    ``store_message`` leaves the copy of a message that is to be scanned without tokens:
    the worker reads the message once, after the scan, for its sender and every local
    recipient alike (the web request does not parse what it just wrote). Returns how
    many copies were indexed.
    """
    if not terms:
        return 0
    rows = list(
        Entry.objects.filter(
            message_id__in=list(terms), mailbox_id=F("message__sender_mailbox_id")
        ).only("pk", "mailbox_id", "message_id")
    )
    for row in rows:
        row.search_tokens = entry_tokens(row.mailbox_id, terms[row.message_id])
    if rows:
        Entry.objects.bulk_update(rows, ["search_tokens"])
    return len(rows)


def store_previews(previews: dict[int, str]) -> None:
    """Write the messages' preview lines (sealed), in one statement."""
    rows = [Message(pk=pk, preview=text) for pk, text in previews.items() if text]
    if rows:
        Message.objects.bulk_update(rows, ["preview"])


def terms_of(raw: bytes, message: Message | None = None) -> set[str]:
    """The terms of a message; the stored row completes what its bytes do not say.

    The row's listing (a platform notice's subject, recipients taken from the envelope)
    is what the lists show: it is indexed too.
    """
    return _terms(document(raw), message)


def _terms(doc: searchindex.Document, message: Message | None = None) -> set[str]:
    if message is not None:
        if message.subject and message.subject not in doc.subject:
            doc.subject = f"{doc.subject}\n{message.subject}"
        doc.senders.extend(v for v in (message.from_name, message.from_addr) if v)
        doc.recipients.extend(message.to_addrs or [])
        doc.recipients.extend(message.cc_addrs or [])
        listed = [a for a in message.attachments or [] if isinstance(a, dict)]
        doc.attachment_names.extend(str(a.get("filename", "")) for a in listed)
        doc.has_attachments = doc.has_attachments or bool(listed)
    return doc.terms()


def read_terms(message: Message) -> set[str]:
    """The terms of a stored message, its blob decrypted (not for the hot path)."""
    try:
        raw = blobs.read(message.blob_name, message.key_id, message.wrapped_key)
    except Exception as exc:
        log.warning("message %s indexed without its body: %s", message.pk, type(exc).__name__)
        raw = b""
    return terms_of(raw, message)


def reindex(entries: Sequence[Entry]) -> int:
    """Compute again the tokens of these entries (current master key); how many changed."""
    cache: dict[int, bytes] = {}
    changed = []
    for entry in entries:
        if entry.message_id not in cache:
            cache[entry.message_id] = prepare(read_terms(entry.message))
        fresh = entry_tokens(entry.mailbox_id, cache[entry.message_id])
        if fresh != entry.search_tokens:
            entry.search_tokens = fresh
            changed.append(entry)
    with transaction.atomic():
        Entry.objects.bulk_update(changed, ["search_tokens"], batch_size=200)
    return len(changed)


# --------------------------------------------------------------------------- the query


@dataclass(frozen=True)
class Criteria:
    """A search: its words and filters (all optional; at least one is given)."""

    text: str = ""
    sender: str = ""
    recipient: str = ""
    folder_id: int | None = None
    unread: bool = False
    with_attachments: bool = False
    since: datetime | None = None
    until: datetime | None = None

    def query(self) -> searchindex.Query:
        """The terms every result holds (``searchindex.QueryError`` on too many words)."""
        return searchindex.parse_query(
            self.text,
            sender=self.sender,
            recipient=self.recipient,
            with_attachments=self.with_attachments,
        )

    @property
    def empty(self) -> bool:
        return not (
            self.text.strip()
            or self.sender.strip()
            or self.recipient.strip()
            or self.folder_id
            or self.unread
            or self.with_attachments
            or self.since
            or self.until
        )


# How many of the newest entries (of the box, or of the folder) the first step reads. A
# query found at least ``limit`` times among them is a common one: those are the results.
# Otherwise the index finds every entry holding the tokens (few, since they were rare there).
PROBE = 2000


def _token_match(sets: list[list[int]], params: list[Any]) -> str:
    """The SQL that an entry holds every token of one of the sets (one set per master key)."""
    if not sets or not sets[0]:
        return "TRUE"
    if connection.vendor == "postgresql":
        params.extend(sets)
        return "(" + " OR ".join("search_tokens @> %s::bigint[]" for _s in sets) + ")"
    ors = []
    for tokens_ in sets:
        ors.append(" AND ".join("instr(search_tokens, %s) > 0" for _t in tokens_))
        params.extend(f" {t} " for t in tokens_)
    return "((" + ") OR (".join(ors) + "))"


def _filters(
    mailbox_id: int, criteria: Criteria, before: tuple[datetime, int] | None, params: list[Any]
) -> str:
    box = "%s::bigint" if connection.vendor == "postgresql" else "%s"
    where = [f"mailbox_id = {box}"]
    params.append(mailbox_id)
    if criteria.folder_id:
        where.append("folder_id = %s")
        params.append(criteria.folder_id)
    else:
        where.append(
            "folder_id NOT IN (SELECT id FROM mailboxes_folder WHERE mailbox_id = %s AND role = %s)"
        )
        params.extend([mailbox_id, Folder.Role.TRASH])
    if criteria.unread:
        where.append("NOT seen")
    # Raw SQL: datetimes as the backend stores them (SQLite compares text).
    stamp = connection.ops.adapt_datetimefield_value
    if criteria.since is not None:
        where.append("received_at >= %s")
        params.append(stamp(criteria.since))
    if criteria.until is not None:
        where.append("received_at < %s")
        params.append(stamp(criteria.until))
    if before is not None:
        when, pk = before
        # One row comparison: a range of the (mailbox or folder, received_at, id) index
        # that starts at the cursor (an OR of the two cases walked from the newest).
        where.append("(received_at, id) < (%s, %s)")
        params.extend([stamp(when), pk])
    return " AND ".join(where)


def _named_folders(mailbox_id: int, text: str) -> list[int]:
    """The folders of the box whose name holds every word of ``text`` (the last one as a
    prefix): names are sealed, so they are opened here, a box holding a few folders."""
    wanted = searchindex.words(text)
    if not wanted:
        return []
    *whole, last = wanted
    found = []
    for folder in Folder.objects.filter(mailbox_id=mailbox_id).only("pk", "name"):
        held = searchindex.words(folder.name)
        if all(w in held for w in whole) and any(h.startswith(last) for h in held):
            found.append(folder.pk)
    return found


def search_ids(
    mailbox_id: int,
    criteria: Criteria,
    limit: int,
    before: tuple[datetime, int] | None = None,
) -> list[int]:
    """Ids of the entries matching, newest first, at most ``limit`` (two steps, see PROBE).

    Every value is a parameter; the words never reach the database, only their tokens.
    """
    sets = query_tokens(mailbox_id, criteria.query())
    probe_params: list[Any] = []
    filters = _filters(mailbox_id, criteria, before, probe_params)
    match_params: list[Any] = []
    match = _token_match(sets, match_params)
    named = _named_folders(mailbox_id, criteria.text)
    if named and match != "TRUE":
        # The words name a folder: its messages are found too (with the other criteria).
        rest = searchindex.parse_query(
            sender=criteria.sender,
            recipient=criteria.recipient,
            with_attachments=criteria.with_attachments,
        )
        rest_params: list[Any] = []
        rest_match = _token_match(query_tokens(mailbox_id, rest), rest_params)
        holders = ", ".join("%s" for _f in named)
        match = f"({match} OR (folder_id IN ({holders}) AND {rest_match}))"
        match_params.extend([*named, *rest_params])
    order = "ORDER BY received_at DESC, id DESC"
    # Step 1: the newest PROBE entries the filters allow, then the tokens among them.
    probe = (
        f"SELECT id FROM (SELECT id, received_at, folder_id, search_tokens FROM mailboxes_entry "  # noqa: S608
        f"WHERE {filters} {order} LIMIT %s) AS newest WHERE {match} {order} LIMIT %s"
    )
    materialized = "MATERIALIZED" if connection.vendor == "postgresql" else ""
    every_params: list[Any] = []
    every_filters = _filters(mailbox_id, criteria, before, every_params)
    # Step 2: every entry holding the tokens (the GIN index), then the newest of them.
    every = (
        f"WITH found AS {materialized} (SELECT id, received_at FROM mailboxes_entry "  # noqa: S608
        f"WHERE {match} AND {every_filters}) SELECT id FROM found {order} LIMIT %s"
    )
    with connection.cursor() as cursor:
        cursor.execute(probe, [*probe_params, PROBE, *match_params, limit])
        ids = [row[0] for row in cursor.fetchall()]
        if len(ids) < limit and match != "TRUE":
            cursor.execute(every, [*match_params, *every_params, limit])
            ids = [row[0] for row in cursor.fetchall()]
        elif len(ids) < limit:
            # Filters only: the box (or folder) in date order, as far as it takes.
            cursor.execute(
                f"SELECT id FROM mailboxes_entry WHERE {filters} {order} LIMIT %s",  # noqa: S608
                [*probe_params, limit],
            )
            ids = [row[0] for row in cursor.fetchall()]
    return ids
