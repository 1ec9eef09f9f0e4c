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

The package: ``build`` (writing), ``limits`` (the bounds and the reading policy),
``parse`` (reading); this module names what callers use.
"""

from __future__ import annotations

from mssante.lib.html import SanitizedHtml, html_too_large, human_size, sanitize_html
from mssante.lib.mime.build import Attachment, OutgoingMessage, build_message, safe_display_name
from mssante.lib.mime.limits import LIMITS, MimeLimitError, MimeLimits, check_limits
from mssante.lib.mime.parse import (
    ParsedMessage,
    ParsedPart,
    PartNotFoundError,
    client_content,
    get_part,
    get_parts,
    guess_decode,
    is_automatic,
    message_ids,
    parse_message,
    parse_tree,
    thread_key,
)

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
    "guess_decode",
    "html_too_large",
    "human_size",
    "is_automatic",
    "message_ids",
    "parse_message",
    "parse_tree",
    "safe_display_name",
    "sanitize_html",
    "thread_key",
]
