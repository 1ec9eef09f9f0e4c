"""Build, parse and display RFC 5322 messages.

Everything goes through the standard library's ``email`` package: messages are
built with ``EmailMessage`` and written with ``email.policy.SMTP``; they are read
with its feed parser. Parsing is hostile-input code: mail from other operators
and software may be truncated, mislabelled or crafted, so ``parse_message`` and
``get_part`` never raise on bad input; they return what they can and report the
rest in ``defects``.

Work is bounded per message (docs/decisions.md, "Parsing limits"): the standard
library's header parsers grow with the square of a header's length and its
feed parser with the product of nesting depth and lines, so the parse is fed
through ``_LimitedParser``, which stops at ``LIMITS`` (header size and count,
header bytes, depth, parts, lines) with a ``MimeLimitError``; ``check_limits``
is that check alone, for the doors that refuse such a message. MIME parameters
are read through a linear scanner (``_ReadPolicy``), and the structured header
parsers only ever see a bounded amount of text.
"""

from __future__ import annotations

import base64
import contextlib
import email
import email.feedparser
import email.header
import email.policy
import email.utils
import functools
import mimetypes
import quopri
import re
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.headerregistry import Address
from email.message import EmailMessage, Message
from email.utils import format_datetime, getaddresses, make_msgid, parseaddr
from typing import TYPE_CHECKING, Any, Final
from urllib.parse import quote

from mssante.lib.html import SanitizedHtml, html_too_large, human_size, sanitize_html

__all__ = [
    "LIMITS",
    "Attachment",
    "MimeLimitError",
    "MimeLimits",
    "OutgoingMessage",
    "ParsedMessage",
    "ParsedPart",
    "PartNotFoundError",
    "SanitizedHtml",
    "build_message",
    "check_limits",
    "client_content",
    "get_part",
    "get_parts",
    "html_too_large",
    "human_size",
    "is_automatic",
    "parse_message",
    "parse_tree",
    "sanitize_html",
    "thread_key",
]

# Names a caller may not set through ``extra_headers``: build_message owns them,
# and a duplicate would make the message ambiguous to the receiving side.
_RESERVED_HEADERS: Final = frozenset(
    {
        "from",
        "sender",
        "to",
        "cc",
        "bcc",
        "subject",
        "date",
        "message-id",
        "in-reply-to",
        "references",
        "mime-version",
        "content-type",
        "content-transfer-encoding",
        "content-disposition",
    }
)
_HEADER_NAME_RE: Final = re.compile(r"[!-9;-~]+")
_MIME_TYPE_RE: Final = re.compile(r"[a-z0-9][a-z0-9!#$&^_.+-]*/[a-z0-9][a-z0-9!#$&^_.+-]*")
_MSG_ID_RE: Final = re.compile(r"<([^<>\s]+)>")
_CONTROL_RE: Final = re.compile(r"[\x00-\x08\x0b-\x1f\x7f]")
_HEADER_CONTROL_RE: Final = re.compile(r"[\x00-\x1f\x7f]+")
_MAX_ID_LENGTH: Final = 998
_MAX_REFERENCES: Final = 100
_MAX_PARTS: Final = 1000
_MAX_DEFECTS: Final = 100
_MAX_FILENAME: Final = 200

# 7bit so that a message crosses any relay unchanged: quoted-printable or base64
# bodies do not depend on the peer announcing 8BITMIME.
_BUILD_POLICY: Final = email.policy.SMTP.clone(cte_type="7bit")
# Structured header parsing (addresses, dates, encoded words), on bounded text only.
_PARSE_POLICY: Final = email.policy.default

Addr = tuple[str, str]


# --------------------------------------------------------------------------- building


@dataclass(slots=True)
class Attachment:
    """A file carried by a message."""

    filename: str
    content_type: str
    data: bytes


@dataclass(slots=True)
class OutgoingMessage:
    """What the compose form, the API or a service wants to send."""

    from_addr: str
    from_name: str
    to: list[str]
    cc: list[str] = field(default_factory=list)
    subject: str = ""
    text: str = ""
    html: str | None = None
    attachments: list[Attachment] = field(default_factory=list)
    in_reply_to: str | None = None
    references: list[str] = field(default_factory=list)
    extra_headers: dict[str, str] = field(default_factory=dict)
    sender: str | None = None


# Python's header folder (3.11-3.13) writes an empty continuation line, which ends the
# header section, between two display-name words each longer than a line: the rest of
# the header would become the body. Longer words are cut (found by tests/lib/test_reports).
_MAX_NAME_WORD: Final = 40
_LONG_WORD_RE: Final = re.compile(r"\S{41,}")  # longer than _MAX_NAME_WORD


def client_content(msg: EmailMessage) -> tuple[str, str | None, list[Attachment]]:
    """The text, the HTML (None) and the attachments of a message a mail client composed
    (what the SMTP submission sends and an IMAP APPEND to Drafts saves)."""
    text_part = msg.get_body(preferencelist=("plain",))
    html_part = msg.get_body(preferencelist=("html",))
    text = str(text_part.get_content()) if text_part is not None else ""
    html = str(html_part.get_content()) if html_part is not None else None
    files = []
    for part in msg.iter_attachments():
        payload = part.get_payload(decode=True)
        if isinstance(payload, bytes):
            files.append(
                Attachment(
                    filename=part.get_filename() or "piece-jointe",
                    content_type=part.get_content_type(),
                    data=payload,
                )
            )
    return text, html, files


def safe_display_name(value: str) -> str:
    """``value`` with each word longer than 40 characters cut in pieces (see above)."""
    return _LONG_WORD_RE.sub(
        lambda m: " ".join(
            m.group(0)[i : i + _MAX_NAME_WORD] for i in range(0, len(m.group(0)), _MAX_NAME_WORD)
        ),
        value,
    )


def _make_address(value: str, display_name: str = "") -> Address:
    name, addr_spec = parseaddr(value) if "<" in value else ("", value.strip())
    try:
        return Address(display_name=safe_display_name(display_name or name), addr_spec=addr_spec)
    except Exception as exc:  # the email package raises several unrelated types here
        raise ValueError(f"invalid e-mail address {value!r}: {exc}") from None


def _bracketed(message_id: str) -> str:
    bare = _bare_id(message_id)
    if not bare:
        raise ValueError(f"invalid Message-ID {message_id!r}")
    return f"<{bare}>"


def _bare_id(value: str) -> str:
    match = _MSG_ID_RE.search(value)
    if match:
        return match.group(1)
    bare = value.strip().strip("<>").strip()
    return "" if not bare or any(c.isspace() for c in bare) else bare


def _attachment_type(content_type: str) -> tuple[str, str]:
    ctype = content_type.strip().lower()
    # message/* may not be base64-encoded (RFC 2046) and multipart/* needs a
    # structure we do not have: both travel as opaque files.
    if not _MIME_TYPE_RE.fullmatch(ctype) or ctype.split("/")[0] in {"multipart", "message"}:
        return "application", "octet-stream"
    maintype, subtype = ctype.split("/", 1)
    return maintype, subtype


def build_message(
    msg: OutgoingMessage, *, domain: str, now: datetime | None = None
) -> tuple[str, bytes]:
    """Return (Message-ID, raw bytes) of the RFC 5322 message for ``msg``."""
    em = EmailMessage(policy=_BUILD_POLICY)
    em["From"] = _make_address(msg.from_addr, msg.from_name)
    if msg.sender and msg.sender.strip().lower() != msg.from_addr.strip().lower():
        em["Sender"] = _make_address(msg.sender)
    if msg.to:
        em["To"] = [_make_address(a) for a in msg.to]
    if msg.cc:
        em["Cc"] = [_make_address(a) for a in msg.cc]
    em["Subject"] = msg.subject
    when = now or datetime.now(UTC)
    # RFC 5322 dates carry an offset; a naive datetime is taken as UTC rather
    # than written as "-0000" (unknown zone).
    em["Date"] = format_datetime(when if when.tzinfo else when.replace(tzinfo=UTC))
    message_id = make_msgid(domain=domain)
    em["Message-ID"] = message_id
    if msg.in_reply_to:
        em["In-Reply-To"] = _bracketed(msg.in_reply_to)
    if msg.references:
        em["References"] = " ".join(_bracketed(r) for r in msg.references)
    for name, value in msg.extra_headers.items():
        if not _HEADER_NAME_RE.fullmatch(name):
            raise ValueError(f"invalid header name {name!r}")
        if name.lower() in _RESERVED_HEADERS:
            raise ValueError(f"header {name!r} is set by build_message, not extra_headers")
        em[name] = value
    em.set_content(msg.text)
    if msg.html is not None:
        em.add_alternative(msg.html, subtype="html")
    for attachment in msg.attachments:
        maintype, subtype = _attachment_type(attachment.content_type)
        em.add_attachment(
            attachment.data,
            maintype=maintype,
            subtype=subtype,
            filename=_HEADER_CONTROL_RE.sub(" ", attachment.filename).strip() or "fichier",
        )
    # The email package stamps MIME-Version on every part it creates; only the
    # top level should carry it.
    for part in em.walk():
        if part is not em:
            del part["MIME-Version"]
    return message_id, em.as_bytes(policy=email.policy.SMTP)


# --------------------------------------------------------------------------- limits


def gettext_noop(message: str) -> str:
    """Marks a message for the catalogue; the Django layer translates it (see identifiers)."""
    return message


@dataclass(frozen=True, slots=True)
class MimeLimits:
    """What one message may hold before it is refused (doors) or not parsed (reading).

    The figures and their reasons are in docs/decisions.md ("Parsing limits").
    """

    # One header field, folded lines included: Postfix's header_size_limit.
    header_bytes: int = 100_000
    # Fields in one header block (the message's or a part's).
    header_fields: int = 1000
    # One header block, and every header block of the message together.
    header_block_bytes: int = 256_000
    header_total_bytes: int = 1_000_000
    # Nested multiparts and attached messages, the message itself included.
    depth: int = 20
    # Every MIME part, containers included.
    parts: int = 1000
    # Lines of the whole message (the feed parser keeps an object per line).
    lines: int = 1_000_000


LIMITS: Final = MimeLimits()

_LIMIT_TEXTS: Final = {
    "header_size": gettext_noop(
        "L'en-tête « %(name)s » du message dépasse la taille permise (%(size)s pour "
        "%(limit)s au plus)."
    ),
    "header_fields": gettext_noop(
        "Le message a trop d'en-têtes (plus de %(limit)s dans un même bloc d'en-têtes)."
    ),
    "header_block": gettext_noop(
        "Les en-têtes du message dépassent la taille permise (%(limit)s au plus)."
    ),
    "mime_depth": gettext_noop(
        "La structure du message est trop profonde (plus de %(limit)s niveaux imbriqués)."
    ),
    "mime_parts": gettext_noop("Le message compte trop de parties (plus de %(limit)s)."),
    "lines": gettext_noop("Le message compte trop de lignes (plus de %(limit)s)."),
}


class MimeLimitError(ValueError):
    """A message beyond ``MimeLimits``: ``template % params`` says why, in French.

    ``rule`` is a short stable code (for the journal); ``smtp_code`` the reply a
    gateway gives (552: the message is too big for us, in one of its dimensions).
    """

    smtp_code = 552

    def __init__(self, rule: str, **params: str) -> None:
        self.rule = rule
        self.template = _LIMIT_TEXTS[rule]
        self.params = params
        super().__init__(self.template % params)


def _limit_error(rule: str, limit: int, *, in_bytes: bool = False, **params: str) -> MimeLimitError:
    shown = human_size(limit) if in_bytes else f"{limit:_}".replace("_", "\u202f")
    return MimeLimitError(rule, limit=shown, **params)


_HEADER_NAME_SHOWN: Final = 60
_FEED_CHUNK: Final = 64 * 1024


# The feed parser's end-of-part test, as it builds it: the boundary regex's own
# text, around re.escape(separator).
_SEP_PREFIX: Final = "(?P<sep>"
_SEP_SUFFIX: Final = r")(?P<end>--)?(?P<ws>[ \t]*)(?P<linesep>\r\n|\r|\n)?$"
_BLANK_MATCH: Final = email.feedparser.NLCRE.match  # type: ignore[attr-defined]

if TYPE_CHECKING:  # the line buffer is not in typeshed: what we use of it

    class _BufferedSubFile:
        _lines: deque[str]
        _closed: bool

        def push_eof_matcher(self, pred: Callable[[str], Any]) -> None: ...
        def pop_eof_matcher(self) -> Callable[[str], Any]: ...
        def readline(self) -> Any: ...

else:
    _BufferedSubFile = email.feedparser.BufferedSubFile


def _matcher_kind(pred: Any) -> str | None:
    """The separator a boundary matcher looks for, "" for the blank-line matcher, else None."""
    if pred == _BLANK_MATCH:
        return ""
    pattern = getattr(getattr(pred, "__self__", None), "pattern", None)
    if (
        isinstance(pattern, str)
        and pattern.startswith(_SEP_PREFIX)
        and pattern.endswith(_SEP_SUFFIX)
    ):
        escaped = pattern[len(_SEP_PREFIX) : -len(_SEP_SUFFIX)]
        separator = re.sub(r"\\(.)", r"\1", escaped, flags=re.DOTALL)
        if separator and re.escape(separator) == escaped:
            return separator
    return None


class _SubFile(_BufferedSubFile):
    """The feed parser's line buffer with its end-of-part test in constant time.

    The standard one tries every enclosing boundary's regex on every line: time
    grows with depth times lines. A line ends a part when it is an enclosing
    separator (optionally followed by "--", blanks and its line break), or a
    blank line under a blank-line matcher: a set lookup gives the same answer.
    An unrecognised matcher falls back to the standard loop.
    """

    def __init__(self) -> None:
        super().__init__()
        self._kinds: list[str | None] = []
        self._separators: dict[str, int] = {}
        self._blank = 0
        self._unknown = 0

    def push_eof_matcher(self, pred: Any) -> None:
        kind = _matcher_kind(pred)
        self._kinds.append(kind)
        if kind is None:
            self._unknown += 1
        elif kind == "":
            self._blank += 1
        else:
            self._separators[kind] = self._separators.get(kind, 0) + 1
        super().push_eof_matcher(pred)

    def pop_eof_matcher(self) -> Any:
        kind = self._kinds.pop()
        if kind is None:
            self._unknown -= 1
        elif kind == "":
            self._blank -= 1
        else:
            self._separators[kind] -= 1
            if not self._separators[kind]:
                del self._separators[kind]
        return super().pop_eof_matcher()

    def readline(self) -> Any:
        if self._unknown:
            return super().readline()
        lines = self._lines
        if not lines:
            return "" if self._closed else email.feedparser.NeedMoreData  # type: ignore[attr-defined]
        line = lines.popleft()
        if self._at_eof(line):
            lines.appendleft(line)
            return ""
        return line

    def _at_eof(self, line: str) -> bool:
        first = line[:1]
        if first in ("\r", "\n"):
            return self._blank > 0
        if not self._separators or not line.startswith("--"):
            return False
        if line.endswith("\r\n"):
            line = line[:-2]
        elif line.endswith(("\r", "\n")):
            line = line[:-1]
        line = line.rstrip(" \t")
        return line in self._separators or (line.endswith("--") and line[:-2] in self._separators)


class _LimitedParser(email.feedparser.BytesFeedParser):
    """The standard feed parser, stopped with MimeLimitError as soon as a limit is crossed.

    ``_new_message`` and ``_parse_headers`` are the feed parser's own steps for
    "a part starts" and "a header block ends" (stable since Python 3.3).
    """

    def __init__(self, limits: MimeLimits) -> None:
        super().__init__(policy=_READ_POLICY)
        self._input = _SubFile()
        self._limits = limits
        self._part_count = 0
        self._header_total = 0

    def _new_message(self) -> None:
        self._part_count += 1
        if self._part_count > self._limits.parts:
            raise _limit_error("mime_parts", self._limits.parts)
        super()._new_message()  # type: ignore[misc]
        if len(self._msgstack) > self._limits.depth:  # type: ignore[attr-defined]
            raise _limit_error("mime_depth", self._limits.depth)

    def _parse_headers(self, lines: list[str]) -> None:
        limits = self._limits
        fields = block = field_size = 0
        name = ""
        for line in [*lines, ""]:
            if line[:1] in (" ", "\t"):
                field_size += len(line)
            else:
                if field_size > limits.header_bytes:
                    shown = _clean_header(name)[:_HEADER_NAME_SHOWN] or "?"
                    raise _limit_error(
                        "header_size",
                        limits.header_bytes,
                        in_bytes=True,
                        name=shown,
                        size=human_size(field_size),
                    )
                if not line:
                    break
                fields += 1
                field_size = len(line)
                name = line.partition(":")[0]
            block += len(line)
        if fields > limits.header_fields:
            raise _limit_error("header_fields", limits.header_fields)
        self._header_total += block
        if block > limits.header_block_bytes:
            raise _limit_error("header_block", limits.header_block_bytes, in_bytes=True)
        if self._header_total > limits.header_total_bytes:
            raise _limit_error("header_block", limits.header_total_bytes, in_bytes=True)
        super()._parse_headers(lines)  # type: ignore[misc]


def _line_count(raw: bytes) -> int:
    # An upper bound of what the feed parser splits (it also breaks on a lone CR).
    return max(raw.count(b"\n"), raw.count(b"\r"))


def _bounded_parse(raw: bytes, limits: MimeLimits) -> Message:
    """The parsed message, or MimeLimitError; time and memory grow linearly with ``raw``."""
    if _line_count(raw) > limits.lines:
        raise _limit_error("lines", limits.lines)
    parser = _LimitedParser(limits)
    view = memoryview(raw)
    for start in range(0, len(view), _FEED_CHUNK):
        parser.feed(bytes(view[start : start + _FEED_CHUNK]))
    return parser.close()


def check_limits(raw: bytes, limits: MimeLimits = LIMITS) -> None:
    """Raise MimeLimitError when ``raw`` is beyond ``limits``; the doors call it before storing."""
    _bounded_parse(bytes(raw), limits)


# MIME parameters: the standard library's parsers are quadratic on hostile input
# (a quoted value full of ";" costs seconds per access, and every access parses
# again). Each Content-Type / Content-Disposition value is therefore rewritten
# once (cached) into an equivalent short form with at most _MAX_PARAMS
# parameters, none holding ";", quotes or backslashes inside quotes: the
# Message methods (get_content_type, get_param, get_filename, the feed parser's
# get_boundary) then read it in linear time, and they all see the same value.
_PARAM_HEADERS: Final = frozenset({"content-type", "content-disposition"})
_MAX_PARAM_HEADER: Final = 8 * 1024
_MAX_PARAMS: Final = 32
_MAX_PARAM_VALUE: Final = 256
_PARAM_RE: Final = re.compile(
    r'[\s;]*+([!#$%&\'*+.^_`|~0-9A-Za-z-]++)\s*+=\s*+("(?:[^"\\]|\\.)*+"?|[^;]*+)'
)
_PLAIN_VALUE_RE: Final = re.compile(r'[^";\\\x00-\x1f\x7f]*')
_FOLD_RE: Final = re.compile(r"\r\n|\r|\n")


def _params(rest: str) -> list[tuple[str, str]]:
    pairs: list[tuple[str, str]] = []
    pos = 0
    while pos < len(rest) and len(pairs) < _MAX_PARAMS:
        match = _PARAM_RE.match(rest, pos)
        if match is None or match.end() == pos:
            following = rest.find(";", pos + 1)
            if following < 0:
                break
            pos = following
            continue
        pairs.append((match.group(1).lower(), match.group(2).strip()))
        pos = match.end()
    return pairs


@functools.lru_cache(maxsize=512)
def _canonical_params(value: str) -> str:
    main, _sep, rest = value.partition(";")
    out = [main.strip()[:200]]
    try:
        decoded = email.utils.decode_params([(main, ""), *_params(rest)])[1:]
    except Exception:  # a broken RFC 2231 continuation: keep the type alone
        decoded = []
    for name, raw_value in decoded:
        # As Message.get_param does: unquote, then decode an RFC 2231 value.
        if isinstance(raw_value, tuple):
            raw_value = (raw_value[0], raw_value[1], email.utils.unquote(raw_value[2]))
        try:
            text = email.utils.collapse_rfc2231_value(raw_value)
        except Exception:  # noqa: S112 - an undecodable parameter is dropped, like a missing one
            continue
        text = str(text)[:_MAX_PARAM_VALUE]
        if _PLAIN_VALUE_RE.fullmatch(text):
            out.append(f'{name}="{text}"')
        else:
            encoded = quote(text.encode("utf-8", "surrogateescape"), safe="")
            out.append(f"{name}*=utf-8''{encoded}")
    return "; ".join(out)


class _ReadPolicy(email.policy.EmailPolicy):
    """``email.policy.default`` that hands header values to the Message methods as plain text.

    Structured parsing of the headers the application reads is done by
    ``_Headers``, on a bounded amount of text.
    """

    def header_fetch_parse(self, name: str, value: str) -> Any:
        return _fetched(name.lower(), value)


def _fetched(name: str, value: str) -> str:
    if name in _PARAM_HEADERS:
        return _canonical_params(
            _FOLD_RE.sub("", value[: _MAX_PARAM_HEADER * 2])[:_MAX_PARAM_HEADER]
        )
    return _FOLD_RE.sub("", value)


_READ_POLICY: Final = _ReadPolicy()
# Re-serialises a parsed part without refolding its headers, so an attached
# message comes out as it went in (8-bit bytes included).
_RAW_POLICY: Final = _READ_POLICY.clone(refold_source="none", cte_type="8bit", linesep="\r\n")


# --------------------------------------------------------------------------- parsing


class PartNotFoundError(LookupError):
    """No attachment has the requested index in this message."""


@dataclass(slots=True)
class ParsedPart:
    """One attachment of a parsed message; ``index`` is stable for the same raw bytes."""

    index: int
    filename: str
    content_type: str
    size: int
    content_id: str = ""


def is_automatic(
    auto_submitted: str | None, list_id: str | None = None, precedence: str | None = None
) -> bool:
    """True for mail a program sent (RFC 3834 §2): ``Auto-Submitted`` other than ``no``,
    a mailing list (``List-Id``) or ``Precedence: bulk / list / junk``."""
    keyword = (auto_submitted or "").split(";", 1)[0].strip().lower()
    if keyword and keyword != "no":
        return True
    if list_id is not None and list_id.strip():
        return True
    return (precedence or "").strip().lower() in {"bulk", "list", "junk"}


@dataclass(slots=True)
class ParsedMessage:
    """What the application reads from a raw message. Strings are valid Unicode."""

    message_id: str = ""
    from_: Addr = ("", "")
    sender: Addr | None = None
    reply_to: list[Addr] = field(default_factory=list)
    to: list[Addr] = field(default_factory=list)
    cc: list[Addr] = field(default_factory=list)
    subject: str = ""
    date: datetime | None = None
    in_reply_to: str | None = None
    references: list[str] = field(default_factory=list)
    text: str | None = None
    html: str | None = None
    attachments: list[ParsedPart] = field(default_factory=list)
    headers: dict[str, str] = field(default_factory=dict)
    disposition_notification_to: str | None = None
    # Written by a program, not a person (RFC 3834: Auto-Submitted other than "no", a list,
    # bulk mail): never answered by an out-of-office reply.
    automatic: bool = False
    defects: list[str] = field(default_factory=list)
    # Set when the message is beyond LIMITS: nothing else was read from it.
    too_complex: MimeLimitError | None = None

    @property
    def thread_key(self) -> str:
        """Root Message-ID of this message's thread, normalised."""
        return thread_key(self.message_id, self.in_reply_to, self.references)


class _Defects:
    def __init__(self, target: list[str]) -> None:
        self._target = target
        self._seen: set[str] = set(target)

    def add(self, text: str) -> None:
        if text in self._seen or len(self._target) >= _MAX_DEFECTS:
            return
        self._seen.add(text)
        self._target.append(text)

    def add_from(self, defects: Any, where: str = "") -> None:
        try:
            for defect in defects:
                detail = _clean_text(str(defect))
                label = type(defect).__name__ + (f": {detail}" if detail else "")
                self.add(f"{where}{label}")
        except Exception as exc:
            self.add(f"{where}unreadable defect list ({type(exc).__name__})")


def _guess_decode(data: bytes) -> str:
    # French mail that skips MIME encoding is UTF-8 or Windows-1252 in practice.
    for charset in ("utf-8", "cp1252"):
        try:
            return data.decode(charset)
        except UnicodeDecodeError:
            continue
    return data.decode("latin-1")


def _clean_text(value: str) -> str:
    """Make ``value`` storable: no lone surrogates (from undecodable bytes), no NUL."""
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        try:
            value = value.encode("utf-8", "surrogateescape").decode("utf-8", "replace")
        except UnicodeEncodeError:
            value = value.encode("utf-8", "replace").decode("utf-8")
    # PostgreSQL text columns refuse NUL, and other controls only hide content.
    return _CONTROL_RE.sub("", value)


def _clean_header(value: str) -> str:
    return " ".join(_HEADER_CONTROL_RE.sub(" ", _clean_text(value)).split())


def _raw_value(value: str) -> str:
    """Decode raw 8-bit header bytes (kept as surrogates by the parser) by guessing."""
    if not _SURROGATE_RE.search(value):
        return value
    try:
        return _guess_decode(value.encode("utf-8", "surrogateescape"))
    except UnicodeEncodeError:
        return value


_SURROGATE_RE: Final = re.compile("[\udc80-\udcff]")
# The standard library's structured header parser costs about 2.5 µs per
# character and grows with the square of the length past a few tens of kB. It
# sees at most _MAX_STRUCTURED characters of one header and _STRUCTURED_BUDGET
# for the whole message; past that, addresses are split by the linear
# getaddresses and text is cut before its encoded words are decoded.
_MAX_STRUCTURED: Final = 8 * 1024
_STRUCTURED_BUDGET: Final = 64 * 1024
_MAX_DISPLAY_NAME: Final = 998
_MAX_ADDRESSES: Final = 1000


def _decode_words(value: str) -> str:
    if "=?" not in value:
        return value
    try:
        return str(email.header.make_header(email.header.decode_header(value)))
    except Exception:
        return value


class _Headers:
    """Top-level headers, read from their raw form so one bad header cannot spoil the rest."""

    def __init__(self, msg: Message, defects: _Defects) -> None:
        self._defects = defects
        self._values: dict[str, list[str]] = {}
        self._budget = _STRUCTURED_BUDGET
        self.names: list[str] = []
        try:
            items = list(msg.raw_items())
        except Exception as exc:
            defects.add(f"unreadable headers ({type(exc).__name__})")
            items = []
        for name, value in items:
            key = _clean_header(str(name)).lower()
            if key not in self._values:
                self._values[key] = []
                self.names.append(_clean_header(str(name)))
            self._values[key].append(_raw_value(str(value)))

    def first(self, name: str) -> str | None:
        values = self._values.get(name.lower())
        return values[0] if values else None

    def all(self, name: str) -> list[str]:
        return self._values.get(name.lower(), [])

    def _affordable(self, name: str, value: str) -> bool:
        """Whether ``value`` may go to the structured parser (and charge it to the budget)."""
        if len(value) > min(_MAX_STRUCTURED, self._budget):
            self._defects.add(f"{name}: header too long to be parsed in full")
            return False
        self._budget -= len(value)
        return True

    def _factory(self, name: str, value: str) -> Any:
        header = _PARSE_POLICY.header_factory(name, value)
        self._defects.add_from(getattr(header, "defects", ()), f"{name}: ")
        return header

    def parsed(self, name: str) -> Any:
        """The policy's structured header object for ``name``, or None when absent, broken or long."""
        value = self.first(name)
        if value is None:
            return None
        flat = "".join(value.splitlines())
        if not self._affordable(name, flat):
            return None
        try:
            return self._factory(name, flat)
        except Exception as exc:
            self._defects.add(f"{name}: unparsable header ({type(exc).__name__})")
            return None

    def text(self, name: str) -> str:
        value = self.first(name)
        if value is None:
            return ""
        flat = "".join(value.splitlines())
        if len(flat) > _MAX_STRUCTURED:
            # Cut at a space so that no encoded word is broken in two.
            cut = flat.rfind(" ", 0, _MAX_STRUCTURED)
            flat = flat[: cut if cut > 0 else _MAX_STRUCTURED]
            self._defects.add(f"{name}: header truncated")
        if self._affordable(name, flat):
            try:
                return _clean_header(str(self._factory(name, flat)))
            except Exception as exc:
                self._defects.add(f"{name}: undecodable header ({type(exc).__name__})")
        return _clean_header(flat)

    def addresses(self, name: str) -> list[Addr]:
        result: list[Addr] = []
        for value in self.all(name):
            flat = "".join(value.splitlines())
            pairs: list[Addr] = []
            try:
                if not self._affordable(name, flat):
                    raise OverflowError(name)
                header = self._factory(name, flat)
                if hasattr(header, "addresses"):
                    for address in header.addresses:
                        pairs.append((address.display_name, address.addr_spec))
                else:
                    pairs = list(getaddresses([str(header)]))
            except Exception as exc:
                if not isinstance(exc, OverflowError):
                    self._defects.add(f"{name}: unparsable address list ({type(exc).__name__})")
                try:
                    # Linear, and it leaves encoded words in display names to us.
                    pairs = [
                        (_decode_words(n[:_MAX_DISPLAY_NAME]), a)
                        for n, a in getaddresses([flat])[:_MAX_ADDRESSES]
                    ]
                except Exception:
                    pairs = []
            for display_name, addr_spec in pairs:
                addr = _clean_header(str(addr_spec))
                # Without a domain nothing can be delivered or replied to.
                if "@" in addr:
                    result.append((_clean_header(str(display_name)), addr))
            if len(result) >= _MAX_ADDRESSES:
                self._defects.add(f"{name}: more than {_MAX_ADDRESSES} addresses, the rest ignored")
                return result[:_MAX_ADDRESSES]
        return result


def message_ids(value: str | None) -> list[str]:
    """The msg-ids of a header value (In-Reply-To, References…), bounded and cleaned."""
    return _ids(value)


def _ids(value: str | None) -> list[str]:
    if not value:
        return []
    found = [f"<{m}>" for m in _MSG_ID_RE.findall(value) if len(m) <= _MAX_ID_LENGTH]
    if not found:
        bare = _bare_id(value)
        if bare and len(bare) <= _MAX_ID_LENGTH:
            found = [f"<{bare}>"]
    return [_clean_header(i) for i in found]


def _date(headers: _Headers) -> datetime | None:
    header = headers.parsed("Date")
    if header is None:
        return None
    try:
        value = header.datetime
    except Exception:
        return None
    if not isinstance(value, datetime):
        return None
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def _iter_parts(msg: Message, defects: _Defects) -> Iterator[tuple[int, Message]]:
    """Every part in depth-first order with its index; attached messages stay whole."""
    stack: list[Message] = [msg]
    index = 0
    while stack:
        part = stack.pop()
        if index >= _MAX_PARTS:
            defects.add(f"more than {_MAX_PARTS} MIME parts: the rest is ignored")
            return
        yield index, part
        index += 1
        try:
            maintype = part.get_content_maintype()
            children = part.get_payload() if part.is_multipart() else None
        except Exception as exc:
            defects.add(f"part {index - 1}: unreadable structure ({type(exc).__name__})")
            continue
        if maintype == "message" or not isinstance(children, list):
            continue
        stack.extend(reversed([c for c in children if isinstance(c, Message)]))


def _content_type(part: Message) -> str:
    try:
        return _clean_header(part.get_content_type()).lower()
    except Exception:
        return "application/octet-stream"


def _disposition(part: Message) -> str | None:
    try:
        return part.get_content_disposition()
    except Exception:
        return None


def _content_id(part: Message) -> str:
    try:
        value = part.get("Content-ID")
    except Exception:
        return ""
    return _bare_id(_clean_header(str(value))) if value is not None else ""


def _raw_filename(part: Message) -> str:
    try:
        name = part.get_filename()
    except Exception:
        name = None
    if not name:
        return ""
    if "=?" in name:
        # Some mailers put RFC 2047 words inside a quoted RFC 2231 parameter.
        with contextlib.suppress(Exception):  # else keep the name as it came
            name = str(email.header.make_header(email.header.decode_header(name)))
    return _raw_value(name)


def _safe_filename(name: str, index: int, content_type: str) -> str:
    name = _clean_header(name)
    # A filename is only a label: no directories, no hidden files.
    name = re.sub(r"[/\\]+", "_", name).lstrip(". ")
    if len(name) > _MAX_FILENAME:
        _, dot, ext = name.rpartition(".")
        ext = ext if dot and 0 < len(ext) <= 10 else ""
        name = name[: _MAX_FILENAME - len(ext) - 1].rstrip() + ("." + ext if ext else "")
    if name:
        return name
    if content_type.startswith("message/"):
        extension = ".eml"
    else:
        extension = mimetypes.guess_extension(content_type, strict=False) or ".bin"
    return f"piece-jointe-{index}{extension}"


def _is_body(part: Message, content_type: str, has_filename: bool) -> bool:
    if has_filename or _disposition(part) == "attachment":
        return False
    # A multipart whose boundary is missing arrives as one flat body: show it as text.
    return content_type in {"text/plain", "text/html"} or content_type.startswith("multipart/")


def _cte(part: Message) -> str:
    try:
        return str(part.get("Content-Transfer-Encoding", "")).strip().lower()
    except Exception:
        return ""


def _lenient_b64decode(data: bytes) -> bytes:
    # Same leniency as the email package for leaf parts: skip stray characters,
    # complete the last quantum.
    cleaned = re.sub(rb"[^A-Za-z0-9+/]", b"", data)
    if len(cleaned) % 4 == 1:
        cleaned = cleaned[:-1]
    return base64.b64decode(cleaned + b"=" * (-len(cleaned) % 4))


def _part_bytes(part: Message, defects: _Defects) -> bytes:
    try:
        if part.is_multipart():
            # An attached message was parsed into objects: write it back out and
            # drop the outer part's own headers.
            data = part.as_bytes(policy=_RAW_POLICY)
            data = data[2:] if data.startswith(b"\r\n") else data.partition(b"\r\n\r\n")[2]
            cte = _cte(part)
            # Encoding an attached message is forbidden but seen; undo it.
            if cte == "base64":
                return _lenient_b64decode(data)
            if cte == "quoted-printable":
                return quopri.decodestring(data)
            return data
        payload = part.get_payload(decode=True)
        return payload if isinstance(payload, bytes) else b""
    except Exception as exc:
        defects.add(f"unreadable part ({type(exc).__name__})")
    try:
        raw = part.get_payload()
        if isinstance(raw, str):
            return raw.encode("utf-8", "surrogateescape")
    except Exception:  # noqa: S110 - nothing more to salvage
        pass
    return b""


def _part_text(part: Message, defects: _Defects) -> str:
    data = _part_bytes(part, defects)
    try:
        charset = part.get_content_charset() or "us-ascii"
    except Exception:
        charset = "us-ascii"
    charset = _clean_header(charset)
    text: str | None = None
    try:
        text = data.decode(charset)
    except LookupError:
        defects.add(f"unknown charset {charset!r}")
    except Exception:
        if charset not in {"us-ascii", "ascii"}:
            defects.add(f"text not valid in its declared charset {charset!r}")
    if text is None:
        text = _guess_decode(data)
    return _clean_text(text.replace("\r\n", "\n").replace("\r", "\n"))


def _parse(raw: bytes, defects: _Defects) -> Message | MimeLimitError | None:
    try:
        return _bounded_parse(bytes(raw), LIMITS)
    except MimeLimitError as exc:
        defects.add(f"message beyond the parsing limits: {exc.rule}")
        return exc
    except Exception as exc:  # a parser bug: nothing else escapes the feed parser
        defects.add(f"unparsable message ({type(exc).__name__})")
        return None


def _leaf_parts(msg: Message, defects: _Defects) -> Iterator[tuple[int, Message, str, str | None]]:
    """Each leaf part as (index, part, content type, safe filename or None for a body part)."""
    for index, part in _iter_parts(msg, defects):
        try:
            if part.is_multipart() and part.get_content_maintype() != "message":
                continue
            content_type = _content_type(part)
            filename = _raw_filename(part)
            is_body = _is_body(part, content_type, bool(filename))
        except Exception as exc:
            defects.add(f"part {index}: unreadable ({type(exc).__name__})")
            continue
        yield (
            index,
            part,
            content_type,
            (None if is_body else _safe_filename(filename, index, content_type)),
        )


def _guarded(defects: _Defects, what: str, action: Callable[[], None]) -> None:
    try:
        action()
    except Exception as exc:
        defects.add(f"{what}: {type(exc).__name__}")


def parse_message(raw: bytes) -> ParsedMessage:
    """Parse a raw message; never raises, lists what was wrong in ``defects``."""
    result = ParsedMessage()
    defects = _Defects(result.defects)
    msg = _parse(raw, defects)
    if isinstance(msg, MimeLimitError):
        # Stored before the limits, or refused and kept as source: never parsed further.
        result.too_complex = msg
        return result
    if msg is None:
        return result
    headers = _Headers(msg, defects)

    def read_headers() -> None:
        result.message_id = next(iter(_ids(headers.first("Message-ID"))), "")
        senders = headers.addresses("From")
        if senders:
            result.from_ = senders[0]
        sender = headers.addresses("Sender")
        result.sender = sender[0] if sender else None
        result.reply_to = headers.addresses("Reply-To")
        result.to = headers.addresses("To")
        result.cc = headers.addresses("Cc")
        result.subject = headers.text("Subject")
        result.date = _date(headers)
        result.in_reply_to = next(iter(_ids(headers.first("In-Reply-To"))), None)
        result.references = _ids(" ".join(headers.all("References")))[-_MAX_REFERENCES:]
        dnt = headers.addresses("Disposition-Notification-To")
        result.disposition_notification_to = dnt[0][1] if dnt else None
        result.automatic = is_automatic(
            headers.first("Auto-Submitted"), headers.first("List-Id"), headers.first("Precedence")
        )
        for name in headers.names:
            if name.lower().startswith("x-mss-"):
                key = name.upper()
                if key not in result.headers:
                    result.headers[key] = headers.text(name)
                if len(headers.all(name)) > 1:
                    defects.add(f"{key}: header repeated, the first is kept")

    def read_parts() -> None:
        texts: list[str] = []
        htmls: list[str] = []
        for index, part, content_type, filename in _leaf_parts(msg, defects):
            if filename is None:
                (htmls if content_type == "text/html" else texts).append(_part_text(part, defects))
            else:
                size = len(_part_bytes(part, defects))
                result.attachments.append(
                    ParsedPart(
                        index=index,
                        filename=filename,
                        content_type=content_type,
                        size=size,
                        content_id=_content_id(part),
                    )
                )
            # After decoding: decoding is what finds bad base64 and the like.
            if part is not msg:
                defects.add_from(getattr(part, "defects", ()), f"part {index}: ")
        defects.add_from(msg.defects)
        result.text = "\n\n".join(texts) if texts else None
        result.html = "\n".join(htmls) if htmls else None

    _guarded(defects, "headers", read_headers)
    _guarded(defects, "body", read_parts)
    return result


def parse_tree(raw: bytes) -> Message | None:
    """The message's MIME tree, parsed within LIMITS; None when past them or unreadable.

    For protocol code that reads parts itself (delivery and read reports): header
    values come back as plain strings, MIME parameters through the linear reader.
    """
    msg = _parse(raw, _Defects([]))
    return msg if isinstance(msg, Message) else None


def get_part(raw: bytes, index: int) -> Attachment:
    """Return the attachment listed at ``index`` by ``parse_message`` for the same bytes."""
    defects = _Defects([])
    msg = _parse(raw, defects)
    if isinstance(msg, Message):
        try:
            for found, part, content_type, filename in _leaf_parts(msg, defects):
                if found == index and filename is not None:
                    return Attachment(filename, content_type, _part_bytes(part, defects))
                if found > index:
                    break
        except Exception as exc:
            raise PartNotFoundError(f"part {index} is unreadable ({type(exc).__name__})") from None
    raise PartNotFoundError(f"this message has no attachment at index {index}")


def get_parts(raw: bytes) -> list[tuple[int, Attachment]]:
    """Every attachment ``parse_message`` lists, with its index and bytes, in ONE parse.

    ``get_part`` parses the whole message for one attachment: calling it for each of
    n attachments costs n parses (a 160 kB message of 1,000 tiny parts took minutes).
    """
    defects = _Defects([])
    msg = _parse(raw, defects)
    found: list[tuple[int, Attachment]] = []
    if not isinstance(msg, Message):
        return found
    try:
        for index, part, content_type, filename in _leaf_parts(msg, defects):
            if filename is not None:
                found.append(
                    (index, Attachment(filename, content_type, _part_bytes(part, defects)))
                )
    except Exception:  # noqa: S110 - the parts read so far stand; the rest is unreadable
        pass
    return found


def thread_key(message_id: str, in_reply_to: str | None, references: list[str] | None) -> str:
    """Root Message-ID of a thread: first Reference, else In-Reply-To, else own id; normalised."""
    for candidate in (*(references or ()), in_reply_to or "", message_id):
        bare = _bare_id(candidate)
        if bare:
            return bare.lower()
    return ""
