"""Reports about a message (RFC 6522 ``multipart/report``): DSNs (RFC 3464), MDNs (RFC 8098).

Building: ``build_dsn`` and ``build_mdn`` take plain values (addresses, the reporting
host, dates, each recipient's status, the original's Message-ID, the human text already
in its reader's language) and return the report's bytes, made with the ``email``
package: ``multipart/report`` with a ``text/plain`` part, then the
``message/delivery-status`` or ``message/disposition-notification`` part, then for a
DSN the original's header (``text/rfc822-headers``).

Everything written into a report may come from outside (a peer's reply, a stored
subject, an address): each value is brought to one line of printable characters before
it reaches a header, so no value can add a header field or a part. Free text (the
subject, the names) goes through the ``email`` header classes, which fold and encode it.
The machine fields (Message-IDs, the report fields) are written as they are, checked
and folded here: the ``email`` package knows them as unstructured text and would turn
a long Message-ID into an encoded word no reader matches.

Reading: ``parse_report`` gives the machine-readable content of a report a peer sent
(which message, which recipients, what happened to each), parsed within the limits of
``mime.parse_tree``.
"""

from __future__ import annotations

import re
import unicodedata
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from email import errors, policy
from email.headerregistry import Address
from email.message import Message as HeaderBlock
from email.message import MIMEPart
from email.utils import format_datetime, make_msgid, parsedate_to_datetime
from typing import Final

from mssante.lib import mime

__all__ = [
    "DELIVERY_STATUS",
    "DISPOSITION_NOTIFICATION",
    "ParsedReport",
    "RecipientStatus",
    "ReportedRecipient",
    "build_dsn",
    "build_mdn",
    "is_report",
    "parse_report",
    "status_of",
]

DELIVERY_STATUS: Final = "delivery-status"
DISPOSITION_NOTIFICATION: Final = "disposition-notification"

# CRLF line ends and folding at 78; raw values (set_raw) are written as given, since
# every one of them is checked and folded below.
_POLICY: Final = policy.SMTP.clone(refold_source="none")
# RFC 5322 §2.1.1: at most 998 characters on a line; 78 is what a line should keep to.
_MAX_LINE: Final = 998
_FOLD_AT: Final = 78
# The original's header is copied into a DSN up to this size (a header section can be
# as large as a message): enough to recognise the message.
MAX_ORIGINAL_HEADERS: Final = 64 * 1024
# What is kept of one free-text value (a subject: RFC 5322's line; a reply: SMTP's).
_MAX_TEXT: Final = 900
_MAX_DIAGNOSTIC: Final = 400

_STATUS_RE: Final = re.compile(r"[245]\.\d{1,3}\.\d{1,3}")
_ENHANCED_RE: Final = re.compile(r"\b([245]\.\d{1,3}\.\d{1,3})\b")
_ACTIONS: Final = frozenset({"failed", "delayed", "delivered", "relayed", "expanded"})
_DISPOSITIONS: Final = frozenset({"displayed", "deleted", "dispatched", "processed"})
# A msg-id as it may be written back: printable ASCII between angle brackets.
_MSG_ID_RE: Final = re.compile(r"<[\x21-\x3b\x3d\x3f-\x7e]{1,250}>")
# An address we write into From/To: an ASCII addr-spec with no quoting needed.
_ADDR_RE: Final = re.compile(r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~.-]{1,64}@[A-Za-z0-9.-]{1,253}")
# RFC 6533 utf-8-addr-xtext keeps these as they are; anything else is \x{HEX}.
_XTEXT_SAFE: Final = re.compile(r"[\x21-\x2a\x2c-\x3c\x3e-\x5b\x5d-\x7e]")
_XTEXT_ESCAPE: Final = re.compile(r"\\x\{([0-9A-Fa-f]{1,6})\}")


@dataclass(frozen=True)
class RecipientStatus:
    """One recipient's block of a DSN (RFC 3464 §2.3)."""

    recipient: str
    status: str  # RFC 3463, e.g. "5.1.1"
    action: str = "failed"  # failed | delayed | delivered | relayed | expanded
    diagnostic: str = ""  # an SMTP reply ("550 5.1.1 …"), as the remote server gave it
    remote_mta: str = ""  # the host that gave it
    last_attempt: datetime | None = None


@dataclass(frozen=True)
class ReportedRecipient:
    """What a report a peer sent says about one recipient."""

    recipient: str  # lower-case, without its address type
    action: str = ""  # DSN: failed, delayed, delivered, relayed, expanded
    status: str = ""  # DSN: RFC 3463 code
    diagnostic: str = ""  # DSN: the remote reply, without its type ("smtp;")
    disposition: str = ""  # MDN: displayed, processed, deleted, dispatched


@dataclass(frozen=True)
class ParsedReport:
    """The machine-readable content of a ``multipart/report``."""

    kind: str  # DELIVERY_STATUS or DISPOSITION_NOTIFICATION
    original_message_id: str  # "<…>", or "" when the report does not say
    date: datetime | None  # the report's Date:, when it has a readable one
    recipients: tuple[ReportedRecipient, ...]


# --------------------------------------------------------------------------- values


def _one_line(value: str, limit: int = _MAX_TEXT) -> str:
    """``value`` as one line of printable text: controls dropped, any line break a space."""
    printable = "".join(c if unicodedata.category(c)[0] != "C" else " " for c in value[: limit * 4])
    return " ".join(printable.split())[:limit]


def _ascii_line(value: str, limit: int = _MAX_DIAGNOSTIC) -> str:
    """One line of printable ASCII (report fields are ASCII): accents dropped."""
    flat = unicodedata.normalize("NFKD", value[: limit * 4]).encode("ascii", "ignore")
    text = flat.decode("ascii")
    return " ".join("".join(c if " " <= c <= "~" else " " for c in text).split())[:limit]


def _address(value: str, what: str) -> str:
    """An addr-spec we can write in From/To as it is; ValueError for anything else."""
    if not _ADDR_RE.fullmatch(value) or len(value) > 254:
        raise ValueError(f"{what}: not an ASCII address: {value!r}")
    try:
        parsed = Address(addr_spec=value)
    except (ValueError, errors.HeaderParseError, IndexError):
        raise ValueError(f"{what}: not an address: {value!r}") from None
    if parsed.addr_spec != value or not parsed.domain:
        raise ValueError(f"{what}: not an address: {value!r}")
    return value


def _msg_ids(values: Iterable[str]) -> list[str]:
    """The well-formed msg-ids among ``values``, each once (case-insensitively), in order."""
    seen: set[str] = set()
    found = []
    for value in values:
        value = value.strip()
        if _MSG_ID_RE.fullmatch(value) and value.lower() not in seen:
            seen.add(value.lower())
            found.append(value)
    return found


def _fold(name: str, words: Sequence[str]) -> str:
    """``words`` joined by spaces, folded before a word that would pass 78 characters."""
    lines: list[str] = []
    line = ""
    width = len(name) + 2
    for word in words:
        if line and width + len(line) + 1 + len(word) > _FOLD_AT:
            lines.append(line)
            line, width = word, 1
        else:
            line = f"{line} {word}" if line else word
    lines.append(line)
    return "\r\n ".join(lines)


def _field(block: MIMEPart | HeaderBlock, name: str, value: str) -> None:
    """Write a checked one-line machine value, folded at its spaces."""
    assert "\r" not in value and "\n" not in value, name  # checked by the caller
    if len(name) + 2 + len(value) > _MAX_LINE and " " not in value:
        raise ValueError(f"{name}: value too long for a header line")
    block.set_raw(name, _fold(name, value.split(" ")))


def _address_field(address: str) -> str:
    """A Final-Recipient value: ``rfc822;`` for an ASCII address, else RFC 6533 ``utf-8;``."""
    address = address.strip()
    if _ADDR_RE.fullmatch(address):
        return f"rfc822;{address}"
    encoded = "".join(c if _XTEXT_SAFE.fullmatch(c) else f"\\x{{{ord(c):X}}}" for c in address)
    if not address or len(encoded) > _MAX_LINE - 40:
        raise ValueError(f"not a recipient: {address!r}")
    return f"utf-8;{encoded}"


def status_of(diagnostic: str, default: str = "5.0.0") -> str:
    """The RFC 3463 code an SMTP reply carries (4.x.x or 5.x.x), else ``default``."""
    found = _ENHANCED_RE.search(diagnostic)
    if found and found.group(1)[0] in "45":
        return found.group(1)
    return default


def _status(value: str) -> str:
    if not _STATUS_RE.fullmatch(value):
        raise ValueError(f"not an RFC 3463 status: {value!r}")
    return value


def _original_header(raw: bytes) -> str:
    """The header section of ``raw``, bounded, as text with LF line ends."""
    end = raw.find(b"\r\n\r\n")
    if end < 0:
        end = raw.find(b"\n\n")
    head = raw if end < 0 else raw[:end]
    if len(head) > MAX_ORIGINAL_HEADERS:
        head = head[: head.rfind(b"\n", 0, MAX_ORIGINAL_HEADERS) + 1]
    text = head.replace(b"\r\n", b"\n").replace(b"\r", b"\n").decode("utf-8", "replace")
    # Lines are the original's: a NUL or a stray control character goes, nothing else.
    text = "".join(c for c in text if c in "\t\n" or unicodedata.category(c) != "Cc")
    return text.rstrip("\n") + "\n"


def _envelope(
    *,
    report_type: str,
    boundary_tag: str,
    from_addr: str,
    from_name: str,
    to: str,
    subject: str,
    date: datetime,
    message_id: str | None,
    in_reply_to: str,
    references: Sequence[str],
) -> MIMEPart:
    # A MIMEPart, not an EmailMessage: MIME-Version is written once, here, not per part.
    report = MIMEPart(policy=_POLICY)
    report["From"] = Address(
        mime.safe_display_name(_one_line(from_name, 200)), addr_spec=_address(from_addr, "from")
    )
    report["To"] = Address(addr_spec=_address(to, "to"))
    report["Subject"] = _one_line(subject)
    report["Date"] = format_datetime(date)
    own_id = message_id or make_msgid(domain=from_addr.rpartition("@")[2])
    if not _msg_ids([own_id]):
        raise ValueError(f"not a Message-ID: {own_id!r}")
    _field(report, "Message-ID", own_id)
    replied = _msg_ids([in_reply_to])
    if replied:
        _field(report, "In-Reply-To", replied[0])
    thread = _msg_ids([*references, *replied])
    if thread:
        _field(report, "References", " ".join(thread))
    # RFC 3834: an automatic answer, which no automatic answer answers.
    report["Auto-Submitted"] = "auto-replied"
    report["MIME-Version"] = "1.0"
    # Written whole: the header class would quote report-type, which some readers miss.
    _field(
        report,
        "Content-Type",
        f"multipart/report; report-type={report_type}; "
        f'boundary="=_{boundary_tag}_{uuid.uuid4().hex}"',
    )
    return report


def _text_line(line: str) -> str:
    """A line of the human part: indentation kept, control characters dropped."""
    kept = "".join(c for c in line if c == "\t" or unicodedata.category(c)[0] != "C")
    return kept.rstrip()[:_MAX_LINE]


def _written(report: MIMEPart) -> bytes:
    """The report's bytes, once its header is seen to hold exactly the fields set.

    The values are checked before they are written; this is the last guard against a
    folding bug turning a value into a line break (ValueError: no report goes out).
    """
    raw = report.as_bytes()
    head = raw.split(b"\r\n\r\n", 1)[0]
    names = [
        line.split(b":", 1)[0].decode("ascii", "replace").lower()
        for line in head.split(b"\r\n")
        if line[:1] not in (b" ", b"\t")
    ]
    if names != [name.lower() for name in report]:
        raise ValueError("the report's header did not come out as written")
    return raw


def _human_part(text: str) -> MIMEPart:
    part = MIMEPart(policy=_POLICY)
    # Line breaks of any kind become CRLF (quoted-printable keeps every line short).
    lines = [_text_line(line) for line in text.splitlines()]
    part.set_content("\n".join(lines) + "\n", cte="quoted-printable")
    return part


# --------------------------------------------------------------------------- building


def build_dsn(
    *,
    from_addr: str,
    from_name: str,
    to: str,
    subject: str,
    text: str,
    reporting_mta: str,
    recipients: Sequence[RecipientStatus],
    date: datetime,
    arrival_date: datetime | None = None,
    original_message_id: str = "",
    references: Sequence[str] = (),
    original_headers: bytes = b"",
    message_id: str | None = None,
) -> bytes:
    """The bytes of an RFC 3464 delivery status notification.

    ``from_addr`` (``mailer-daemon@…``) and ``to`` (the original's sender) are ASCII
    addresses; ``text`` is the human part, already in its reader's language;
    ``reporting_mta`` the host name that writes the report; ``original_headers`` the
    original's bytes (only its header is copied, bounded). ``references``: the
    conversation the report joins (the original's Message-ID is added). Raises
    ValueError for an address, a status or a host that cannot be written.
    """
    if not recipients:
        raise ValueError("a DSN reports on at least one recipient")
    report = _envelope(
        report_type=DELIVERY_STATUS,
        boundary_tag="dsn",
        from_addr=from_addr,
        from_name=from_name,
        to=to,
        subject=subject,
        date=date,
        message_id=message_id,
        in_reply_to=original_message_id,
        references=references,
    )
    report.attach(_human_part(text))

    per_message = HeaderBlock(policy=_POLICY)
    host = _ascii_line(reporting_mta, 253)
    if not host or " " in host:
        raise ValueError(f"not a host name: {reporting_mta!r}")
    _field(per_message, "Reporting-MTA", f"dns; {host}")
    if arrival_date is not None:
        _field(per_message, "Arrival-Date", format_datetime(arrival_date))
    blocks: list[HeaderBlock | str] = [per_message]
    for recipient in recipients:
        if recipient.action not in _ACTIONS:
            raise ValueError(f"not a DSN action: {recipient.action!r}")
        block = HeaderBlock(policy=_POLICY)
        final = _address_field(recipient.recipient)
        _field(block, "Original-Recipient", final)
        _field(block, "Final-Recipient", final)
        _field(block, "Action", recipient.action)
        _field(block, "Status", _status(recipient.status))
        remote = _ascii_line(recipient.remote_mta, 253).replace(" ", "")
        if remote:
            _field(block, "Remote-MTA", f"dns; {remote}")
        diagnostic = _ascii_line(recipient.diagnostic)
        if diagnostic:
            _field(block, "Diagnostic-Code", f"smtp; {diagnostic}")
        if recipient.last_attempt is not None:
            _field(block, "Last-Attempt-Date", format_datetime(recipient.last_attempt))
        blocks.append(block)
    status = MIMEPart(policy=_POLICY)
    status["Content-Type"] = "message/delivery-status"
    status.set_payload(blocks)
    report.attach(status)

    headers = MIMEPart(policy=_POLICY)
    headers.set_content(_original_header(original_headers), subtype="rfc822-headers")
    report.attach(headers)
    return _written(report)


def build_mdn(
    *,
    from_addr: str,
    to: str,
    subject: str,
    text: str,
    reporting_ua: str,
    final_recipient: str,
    original_message_id: str,
    date: datetime,
    disposition: str = "displayed",
    sent_manually: bool = False,
    from_name: str = "",
    message_id: str | None = None,
) -> bytes:
    """The bytes of an RFC 8098 message disposition notification.

    ``from_addr`` is the mailbox that read the message (it sends the MDN), ``to`` the
    address the original asked the notification for (``Disposition-Notification-To``);
    ``text`` the human part, already in its reader's language; ``reporting_ua`` the
    user agent, ``host; product``. ``sent_manually``: the reader chose to send it,
    else it left on its own (RFC 8098 §3.2.6.2). Raises ValueError for an address or
    an original Message-ID that cannot be written.
    """
    if disposition not in _DISPOSITIONS:
        raise ValueError(f"not an MDN disposition: {disposition!r}")
    original = _msg_ids([original_message_id])
    if not original:
        raise ValueError(f"not a Message-ID: {original_message_id!r}")
    report = _envelope(
        report_type=DISPOSITION_NOTIFICATION,
        boundary_tag="mdn",
        from_addr=from_addr,
        from_name=from_name,
        to=to,
        subject=subject,
        date=date,
        message_id=message_id,
        in_reply_to=original[0],
        references=(),
    )
    report.attach(_human_part(text))

    fields = HeaderBlock(policy=_POLICY)
    _field(fields, "Reporting-UA", _ascii_line(reporting_ua, 200) or "unknown")
    _field(fields, "Final-Recipient", _address_field(final_recipient))
    _field(fields, "Original-Message-ID", original[0])
    mode = "MDN-sent-manually" if sent_manually else "MDN-sent-automatically"
    # The reader opened the message: a manual action, whoever sent the notification.
    _field(fields, "Disposition", f"manual-action/{mode}; {disposition}")
    notification = MIMEPart(policy=_POLICY)
    notification["Content-Type"] = "message/disposition-notification"
    notification.set_payload([fields])
    report.attach(notification)
    return _written(report)


# --------------------------------------------------------------------------- reading


def is_report(raw: bytes) -> bool:
    """Whether the message's own header says ``multipart/report`` (cheap, before parsing)."""
    head = raw.split(b"\r\n\r\n", 1)[0].split(b"\n\n", 1)[0].lower()
    return b"multipart/report" in head


def _blocks(msg: HeaderBlock, content_type: str) -> list[HeaderBlock]:
    for part in msg.walk():
        if part.get_content_type() == content_type:
            payload = part.get_payload()
            if isinstance(payload, list):
                return [p for p in payload if isinstance(p, HeaderBlock)]
    return []


def _text(block: HeaderBlock, name: str) -> str:
    value = block.get(name)
    return _one_line(str(value)) if value is not None else ""


def _recipient(value: str) -> str:
    """The address of a ``type;address`` field, lower-case (RFC 6533 xtext decoded)."""
    kind, _sep, address = value.partition(";") if ";" in value else ("rfc822", "", value)
    address = address.strip()
    # Brackets around the address are dropped; a lone one is part of what was written
    # (an odd recipient still names one recipient, not none).
    if len(address) >= 2 and address[0] == "<" and address[-1] == ">":
        address = address[1:-1].strip()
    if kind.strip().lower() == "utf-8":
        address = _XTEXT_ESCAPE.sub(_unescape, address)
    return address.lower()


def _unescape(match: re.Match[str]) -> str:
    code = int(match.group(1), 16)
    return chr(code) if code <= 0x10FFFF and not 0xD800 <= code <= 0xDFFF else ""


def _original_id(msg: HeaderBlock, per_message: HeaderBlock | None) -> str:
    candidates = [
        per_message.get("Original-Message-ID") if per_message is not None else None,
        per_message.get("Original-Envelope-Id") if per_message is not None else None,
        msg.get("In-Reply-To"),
    ]
    for candidate in candidates:
        ids = mime.message_ids(str(candidate)) if candidate else []
        if ids:
            return ids[0]
    for part in msg.walk():
        if part.get_content_type() in ("text/rfc822-headers", "message/rfc822"):
            payload = part.get_payload(decode=False)
            if isinstance(payload, list):
                text = str(payload[0]) if payload else ""
            else:
                text = str(payload)
            # The returned header is the peer's: parsed within bounds, and only its start.
            headers = mime.parse_tree(
                text[:MAX_ORIGINAL_HEADERS].encode("utf-8", "surrogateescape")
            )
            ids = mime.message_ids(str(headers.get("Message-ID") or "")) if headers else []
            if ids:
                return ids[0]
    return ""


def _disposition(value: str) -> str:
    """``displayed`` from ``manual-action/MDN-sent-manually; displayed/error``."""
    kind = value.rpartition(";")[2].split("/", 1)[0].strip().lower()
    return kind if kind in _DISPOSITIONS else ""


def _diagnostic(value: str) -> str:
    return value.partition(";")[2].strip() if ";" in value else value.strip()


def parse_report(raw: bytes) -> ParsedReport | None:
    """What an MDN or a DSN says, or None for anything else (read within mime's limits)."""
    if not is_report(raw):
        return None
    msg = mime.parse_tree(raw)
    if msg is None:
        return None
    mdn = _blocks(msg, "message/disposition-notification")
    dsn = _blocks(msg, "message/delivery-status")
    if mdn:
        fields = mdn[0]
        kind = DISPOSITION_NOTIFICATION
        found = [
            ReportedRecipient(
                recipient=_recipient(_text(fields, "Final-Recipient")),
                disposition=_disposition(_text(fields, "Disposition")),
            )
        ]
        original = _original_id(msg, fields)
    elif dsn:
        kind = DELIVERY_STATUS
        found = [
            ReportedRecipient(
                recipient=_recipient(_text(block, "Final-Recipient")),
                action=_text(block, "Action").lower(),
                status=_text(block, "Status"),
                diagnostic=_diagnostic(_text(block, "Diagnostic-Code")),
            )
            for block in dsn[1:]
        ]
        original = _original_id(msg, dsn[0])
    else:
        return None
    try:
        date: datetime | None = parsedate_to_datetime(str(msg.get("Date")))
    except (TypeError, ValueError):
        date = None
    if date is not None and date.tzinfo is None:
        date = None
    return ParsedReport(kind, original, date, tuple(r for r in found if r.recipient))
