"""Building a message: ``build_message`` writes an ``OutgoingMessage`` with ``email``."""

from __future__ import annotations

import email
import email.feedparser
import email.header
import email.policy
import email.utils
import re
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.headerregistry import Address
from email.message import EmailMessage
from email.utils import format_datetime, make_msgid, parseaddr
from typing import Final

from mssante.lib.mime._common import (
    _BUILD_POLICY,
    _HEADER_CONTROL_RE,
    _HEADER_NAME_RE,
    _MIME_TYPE_RE,
    _MSG_ID_RE,
    _RESERVED_HEADERS,
)

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
