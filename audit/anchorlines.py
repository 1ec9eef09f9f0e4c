"""The lines of the anchor file: what each one attests, signed, and linked to the previous one.

Version 2 (issue 13) attests the newest *seal*: its id (``seal``), its MAC (``head``)
and the running total of sealed events (``events``); a purge line also names the purge
(``purge``: kind, id, hash, count). Version 1 lines (written before) attested the
newest *row* of the old chain (``last_id``, ``head``, ``events`` since the origin,
``purge``: id, hash, count); they stay readable, and the file's own chain (``n``,
``prev``) runs across both.
"""

from __future__ import annotations

import hmac
import json
import os
from dataclasses import dataclass, field
from typing import Any

from audit import anchors
from audit.keys import sign

VERSION = 2


@dataclass(frozen=True)
class Anchor:
    """One checked line of the anchor file."""

    version: int
    number: int
    at: str
    last_id: int  # version 2: the seal's id; version 1: the row's id
    head: str  # its MAC
    events: int
    prev: str
    mac: str
    purge: tuple[str, int, str, int] | None  # (kind, id, hash, count)
    restart: str  # the operator's reason, on a line that starts the comparison afresh


def _fields(line: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in line.items() if k != "mac"}


def signed_line(key_id: str, key: bytes, **values: Any) -> tuple[dict[str, Any], str]:
    """A new line (version 2), signed: the line and its text."""
    line: dict[str, Any] = {"v": VERSION, **values, "key": key_id}
    line["mac"] = sign(key, "anchor", line)
    return line, json.dumps(line, sort_keys=True, separators=(",", ":"))


def parse(text: str, keys: dict[str, bytes]) -> Anchor | str:
    """The anchor on this line, or why it is not one."""
    try:
        line = json.loads(text)
    except ValueError:
        return "illisible"
    if not isinstance(line, dict) or line.get("v") not in (1, VERSION):
        return "illisible"
    key = keys.get(str(line.get("key", "")))
    if key is None:
        return f"signée par une clé inconnue « {line.get('key')} »"
    if not hmac.compare_digest(str(line.get("mac", "")), sign(key, "anchor", _fields(line))):
        return "signature invalide"
    try:
        purge = line.get("purge")
        version = int(line["v"])
        if version == 1:
            last_id = int(line["last_id"])
            purged = ("purge", int(purge[0]), str(purge[1]), int(purge[2])) if purge else None
        else:
            last_id = int(line["seal"])
            purged = (str(purge[0]), int(purge[1]), str(purge[2]), int(purge[3])) if purge else None
        return Anchor(
            version=version,
            number=int(line["n"]),
            at=str(line["at"]),
            last_id=last_id,
            head=str(line["head"]),
            events=int(line["events"]),
            prev=str(line["prev"]),
            mac=str(line["mac"]),
            purge=purged,
            restart=str(line.get("restart", "")),
        )
    except (KeyError, TypeError, ValueError, IndexError):
        return "champs invalides"


@dataclass
class AnchorFile:
    """What verify learnt from the anchor file: its newest line, every purge it recorded."""

    path: str
    lines: int = 0
    newest: Anchor | None = None
    # (kind, id) → (hash, count, date of the line)
    purges: dict[tuple[str, int], tuple[str, int, str]] = field(default_factory=dict)
    problem: str | None = None
    skipped: list[int] = field(default_factory=list)
    restarts: list[tuple[str, str]] = field(default_factory=list)


def read_anchor_file(path: str, keys: dict[str, bytes]) -> AnchorFile | None:
    """Stream the anchor file, checking each line's signature and its link to the previous one."""
    if not os.path.exists(path):
        return None
    result = AnchorFile(path)
    previous: Anchor | None = None
    for number, text, _terminated in anchors.read_lines(path):
        parsed = parse(text, keys) if text else "illisible"
        if parsed == "illisible":
            # A torn write (crash) leaves an unreadable line; the next line still
            # names the last good one, so nothing is lost by skipping it.
            result.skipped.append(number)
            continue
        if isinstance(parsed, str):
            result.problem = f"ligne {number} du fichier d'ancrage {parsed}"
            return result
        expected_number = previous.number + 1 if previous else 1
        expected_prev = previous.mac if previous else ""
        if parsed.number != expected_number or parsed.prev != expected_prev:
            result.problem = (
                f"ligne {number} du fichier d'ancrage : ne suit pas la précédente "
                "(lignes d'ancrage supprimées ou déplacées)"
            )
            return result
        # A restart may name an older seal: the restored database's ids start again lower.
        if (
            previous
            and not parsed.restart
            and (
                parsed.version < previous.version
                or (parsed.version == previous.version and parsed.last_id < previous.last_id)
            )
        ):
            result.problem = f"ligne {number} du fichier d'ancrage : la chaîne y recule"
            return result
        if parsed.restart:
            # The operator restarted the anchoring (a backup restored): earlier lines,
            # purges included, describe a journal that is no longer the one compared.
            result.purges.clear()
            result.restarts.append((parsed.at, parsed.restart))
        if parsed.purge:
            kind, last_id, last_hash, count = parsed.purge
            result.purges[(kind, last_id)] = (last_hash, count, parsed.at)
        previous = parsed
        result.lines += 1
    result.newest = previous
    return result


def newest_in(store: anchors.AnchorStore, keys: dict[str, bytes]) -> Anchor | str | None:
    """The newest valid line at the end of the open file, None for an empty file, or why not."""
    for text in store.newest_lines():
        parsed = parse(text, keys)
        if isinstance(parsed, Anchor):
            return parsed
        if parsed != "illisible":
            return f"dernière ligne {parsed}"
    if not store.is_empty():
        return "aucune ligne valide à la fin du fichier"
    return None
