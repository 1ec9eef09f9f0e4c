"""What the builder, the limits and the parser share: names, sizes, policies."""

from __future__ import annotations

import email
import email.feedparser
import email.header
import email.policy
import email.utils
import re
from typing import Final

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
