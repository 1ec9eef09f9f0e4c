"""Checks on text and JSON from outside before anything else reads them.

Two kinds of string break the layers behind a request even though Python accepts
them: a NUL character (PostgreSQL refuses it in text, C libraries cut the string
there) and a lone UTF-16 surrogate (``"\\ud800"`` in JSON decodes to a ``str`` that
cannot be encoded to UTF-8, so the first write or log of it raises). JSON nested
very deep exhausts the parser's recursion. Every door (the API, the web forms, the
query strings) checks with these functions and refuses with the message given.

The messages are plain French strings: the Django layer translates them.
"""

from __future__ import annotations

import ipaddress
import json
import re
from typing import Any, Final

__all__ = [
    "JSON_MAX_DEPTH",
    "TEXT_HAS_NUL",
    "TEXT_HAS_SURROGATE",
    "UntrustedInputError",
    "client_address",
    "load_json",
    "text_fault",
]


def gettext_noop(message: str) -> str:
    """Marks a message for the translation catalogue without importing Django."""
    return message


# Our largest legitimate body (a message with attachments) nests 3 levels; 32 leaves
# room for any client's quirks while keeping every later recursive walk shallow.
JSON_MAX_DEPTH: Final = 32

TEXT_HAS_NUL: Final = gettext_noop("caractère nul (U+0000) interdit")
TEXT_HAS_SURROGATE: Final = gettext_noop(
    "caractère invalide (demi-paire UTF-16 isolée) : le texte doit être de l'Unicode valide"
)
JSON_TOO_DEEP: Final = gettext_noop("JSON trop imbriqué : au plus %(depth)d niveaux")
JSON_NOT_UTF8: Final = gettext_noop("le corps n'est pas encodé en UTF-8 (octet %(position)d)")
JSON_SYNTAX: Final = gettext_noop("JSON mal formé (ligne %(line)d, colonne %(column)d)")
JSON_BAD_TEXT: Final = gettext_noop("texte invalide à l'emplacement « %(where)s » : %(reason)s")

_SURROGATE: Final = re.compile("[\ud800-\udfff]")


class UntrustedInputError(ValueError):
    """Input refused; ``message`` is French (a gettext_noop template) and ``params`` fill it."""

    def __init__(self, message: str, **params: Any) -> None:
        super().__init__(message % params if params else message)
        self.template = message
        self.params = params


def text_fault(value: str) -> str | None:
    """Why this text cannot be stored or shown (TEXT_HAS_NUL, TEXT_HAS_SURROGATE), or None."""
    if "\x00" in value:
        return TEXT_HAS_NUL
    if _SURROGATE.search(value):
        return TEXT_HAS_SURROGATE
    return None


def load_json(raw: bytes, *, max_depth: int = JSON_MAX_DEPTH) -> Any:
    """Decode a JSON body, refusing invalid UTF-8, deep nesting, NUL and lone surrogates.

    Every string (keys too) is checked, so what comes out can be stored and encoded.
    """
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise UntrustedInputError(JSON_NOT_UTF8, position=exc.start) from None
    try:
        data = json.loads(text)
    except RecursionError:
        # The C decoder recurses once per level and stops cleanly at the interpreter's limit.
        raise UntrustedInputError(JSON_TOO_DEEP, depth=max_depth) from None
    except json.JSONDecodeError as exc:
        raise UntrustedInputError(JSON_SYNTAX, line=exc.lineno, column=exc.colno) from None
    _check_tree(data, max_depth)
    return data


def _check_tree(data: Any, max_depth: int) -> None:
    # Iterative: a walk must not recurse on what we are checking for depth.
    stack: list[tuple[Any, int, str]] = [(data, 1, "")]
    while stack:
        node, depth, where = stack.pop()
        if isinstance(node, dict | list):
            if depth > max_depth:
                raise UntrustedInputError(JSON_TOO_DEEP, depth=max_depth)
            items = node.items() if isinstance(node, dict) else enumerate(node)
            for key, value in items:
                path = f"{where}.{key}" if where else str(key)
                if isinstance(key, str) and (fault := text_fault(key)):
                    raise UntrustedInputError(JSON_BAD_TEXT, where=_printable(path), reason=fault)
                stack.append((value, depth + 1, path))
        elif isinstance(node, str) and (fault := text_fault(node)):
            raise UntrustedInputError(JSON_BAD_TEXT, where=_printable(where) or "/", reason=fault)


def _printable(path: str) -> str:
    # The path names keys the client sent: show them without the faulty characters.
    return _SURROGATE.sub("\ufffd", path.replace("\x00", "\\0"))[:100]


def client_address(remote_addr: str, forwarded_for: str, trusted_hops: int) -> str | None:
    """The client's address in canonical form, or None when there is none to trust.

    ``remote_addr`` is the peer of the TCP connection. Behind ``trusted_hops`` proxies of
    our own, each proxy appended the address it received from to ``X-Forwarded-For``:
    the entry ``trusted_hops`` from the right is the one our outermost proxy saw; those
    further left were written by the client and prove nothing.
    """
    address = remote_addr
    if trusted_hops > 0:
        forwarded = [part.strip() for part in forwarded_for.split(",") if part.strip()]
        if len(forwarded) >= trusted_hops:
            address = forwarded[-trusted_hops]
    try:
        return str(ipaddress.ip_address(address.strip()))
    except ValueError:
        return None
