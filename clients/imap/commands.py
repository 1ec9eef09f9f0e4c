"""Two commands pymap 0.36.7 does not know, registered in its own parser.

- NAMESPACE (RFC 2342): the box's folders at the top, the other boxes the password opens
  under "Partagés/" (a shared namespace);
- ENABLE (RFC 5161): clients send it before using an extension; nothing here needs
  enabling (no CONDSTORE yet, no UTF8=ACCEPT), so the answer is an empty ENABLED.

Parsed with pymap's primitives (tag, atoms, end of line), like its own commands.
"""

from __future__ import annotations

from pymap.parsing import EndLine, Params, Space
from pymap.parsing.command import CommandAuth, CommandNoArgs
from pymap.parsing.commands import Commands
from pymap.parsing.exceptions import NotParseable
from pymap.parsing.modutf7 import modutf7_encode
from pymap.parsing.primitives import Atom

from clients.imap.store import DELIMITER, SHARED_PREFIX

MAX_ENABLE = 20


class NamespaceCommand(CommandNoArgs, CommandAuth):
    command = b"NAMESPACE"


class EnableCommand(CommandAuth):
    command = b"ENABLE"

    def __init__(self, tag: bytes, capabilities: list[bytes]) -> None:
        super().__init__(tag)
        self.capabilities = capabilities

    @classmethod
    def parse(cls, buf: memoryview, params: Params) -> tuple[EnableCommand, memoryview]:
        capabilities: list[bytes] = []
        while True:
            try:
                _, buf = EndLine.parse(buf, params)
                break
            except NotParseable:
                if len(capabilities) >= MAX_ENABLE:
                    raise
                _, buf = Space.parse(buf, params)
                atom, buf = Atom.parse(buf, params)
                capabilities.append(atom.value.upper())
        if not capabilities:
            raise NotParseable(buf)
        return cls(params.tag, capabilities), buf


def namespace_response() -> bytes:
    """The untagged NAMESPACE answer (personal, other users: none, shared)."""
    shared = modutf7_encode(SHARED_PREFIX + DELIMITER)
    delimiter = DELIMITER.encode()
    return b'NAMESPACE (("" "%b")) NIL (("%b" "%b"))' % (delimiter, shared, delimiter)


def commands() -> Commands:
    """pymap's commands and ours."""
    found = Commands()
    found.register(NamespaceCommand)
    found.register(EnableCommand)
    return found
