"""Build, parse and display RFC 5322 messages.

Everything goes through the standard library's ``email`` package: messages are
built with ``EmailMessage`` and written with ``email.policy.SMTP``; they are read
with ``email.policy.default``. Parsing is hostile-input code: mail from other
operators and software may be truncated, mislabelled or crafted, so
``parse_message`` and ``get_part`` never raise on bad input; they return what
they can and report the rest in ``defects``.
"""

from __future__ import annotations

import base64
import contextlib
import email
import email.header
import email.policy
import mimetypes
import quopri
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.headerregistry import Address
from email.message import EmailMessage, Message
from email.utils import format_datetime, getaddresses, make_msgid, parseaddr
from typing import Any, Final

from mssante.lib.html import SanitizedHtml, human_size, sanitize_html

__all__ = [
    "Attachment",
    "OutgoingMessage",
    "ParsedMessage",
    "ParsedPart",
    "PartNotFoundError",
    "SanitizedHtml",
    "build_message",
    "get_part",
    "get_parts",
    "human_size",
    "parse_message",
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
_PARSE_POLICY: Final = email.policy.default
# Re-serialises a parsed part without refolding its headers, so an attached
# message comes out as it went in (8-bit bytes included).
_RAW_POLICY: Final = email.policy.default.clone(
    refold_source="none", cte_type="8bit", linesep="\r\n"
)

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


def _make_address(value: str, display_name: str = "") -> Address:
    name, addr_spec = parseaddr(value) if "<" in value else ("", value.strip())
    try:
        return Address(display_name=display_name or name, addr_spec=addr_spec)
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
    defects: list[str] = field(default_factory=list)

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
    if not any("\udc80" <= c <= "\udcff" for c in value):
        return value
    try:
        return _guess_decode(value.encode("utf-8", "surrogateescape"))
    except UnicodeEncodeError:
        return value


class _Headers:
    """Top-level headers, read from their raw form so one bad header cannot spoil the rest."""

    def __init__(self, msg: Message, defects: _Defects) -> None:
        self._defects = defects
        self._values: dict[str, list[str]] = {}
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

    def parsed(self, name: str) -> Any:
        """The policy's structured header object for ``name``, or None when absent or broken."""
        value = self.first(name)
        if value is None:
            return None
        try:
            header = _PARSE_POLICY.header_factory(name, "".join(value.splitlines()))
        except Exception as exc:
            self._defects.add(f"{name}: unparsable header ({type(exc).__name__})")
            return None
        self._defects.add_from(getattr(header, "defects", ()), f"{name}: ")
        return header

    def text(self, name: str) -> str:
        header = self.parsed(name)
        if header is not None:
            try:
                return _clean_header(str(header))
            except Exception as exc:
                self._defects.add(f"{name}: undecodable header ({type(exc).__name__})")
        value = self.first(name)
        return _clean_header(value) if value is not None else ""

    def addresses(self, name: str) -> list[Addr]:
        result: list[Addr] = []
        for value in self.all(name):
            flat = "".join(value.splitlines())
            pairs: list[Addr] = []
            try:
                header = _PARSE_POLICY.header_factory(name, flat)
                self._defects.add_from(getattr(header, "defects", ()), f"{name}: ")
                if hasattr(header, "addresses"):
                    for address in header.addresses:
                        pairs.append((address.display_name, address.addr_spec))
                else:
                    pairs = list(getaddresses([str(header)]))
            except Exception as exc:
                self._defects.add(f"{name}: unparsable address list ({type(exc).__name__})")
                try:
                    pairs = list(getaddresses([flat]))
                except Exception:
                    pairs = []
            for display_name, addr_spec in pairs:
                addr = _clean_header(str(addr_spec))
                # Without a domain nothing can be delivered or replied to.
                if "@" in addr:
                    result.append((_clean_header(str(display_name)), addr))
        return result


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


def _parse(raw: bytes, defects: _Defects) -> Message | None:
    try:
        return email.message_from_bytes(bytes(raw), policy=_PARSE_POLICY)
    except Exception as exc:  # RecursionError on absurd nesting, or a parser bug
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


def get_part(raw: bytes, index: int) -> Attachment:
    """Return the attachment listed at ``index`` by ``parse_message`` for the same bytes."""
    defects = _Defects([])
    msg = _parse(raw, defects)
    if msg is not None:
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
    if msg is None:
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
