"""LIST patterns (RFC 3501 6.3.8) matched without backtracking."""

from __future__ import annotations

from clients.imap.store import DELIMITER

MAX_PATTERN = 1000
MAX_WILDCARDS = 20


def glob_matches(pattern: str, name: str) -> bool:
    """LIST's wildcards (``*`` anything, ``%`` anything but the delimiter), in linear steps.

    Not pymap's regular expression: "*a*a*a…z" made it backtrack for minutes, the event
    loop with it (every client of the process waited).
    """
    # states: the pattern positions reachable after reading a prefix of ``name``.
    states = _closure({0}, pattern)
    for char in name:
        nxt: set[int] = set()
        for i in states:
            if i < len(pattern):
                p = pattern[i]
                if p == "*" or (p == "%" and char != DELIMITER):
                    nxt.add(i)
                elif p == char:
                    nxt.add(i + 1)
        states = _closure(nxt, pattern)
        if not states:
            return False
    return len(pattern) in states


def _closure(states: set[int], pattern: str) -> set[int]:
    # A wildcard may match nothing: its position reaches the next one.
    out: set[int] = set()
    for i in sorted(states):
        if i in out:
            continue
        out.add(i)
        while i < len(pattern) and pattern[i] in "*%":
            i += 1
            out.add(i)
    return out
