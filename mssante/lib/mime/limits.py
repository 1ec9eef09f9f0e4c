"""The bounds of one parse (docs/decisions.md, "Parsing limits") and the reading policy."""

from __future__ import annotations

import email
import email.feedparser
import email.header
import email.policy
import email.utils
import functools
import re
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from email.message import Message
from typing import TYPE_CHECKING, Any, Final
from urllib.parse import quote

from mssante.lib.html import human_size
from mssante.lib.mime._common import _clean_header

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
