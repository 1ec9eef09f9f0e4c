"""The chained audit journal's mechanism: writing, verifying, anchoring and purging.

Callers write through ``audit.journal.record``, which appends here and has the head
anchored soon after (``audit.tasks.anchor_journal``); this module never enqueues, so
the tasks can call it.

Three defences, so that tamper evidence does not rest on the database alone:

- each row is chained to the previous one by HMAC-SHA256 under a key of AUDIT_KEYS,
  kept outside the database: whoever holds only the database cannot rewrite a row
  and recompute the chain after it;
- the chain's head is anchored outside the database (audit.anchors: a signed line
  appended to a file, and optionally syslog) every few minutes, every
  AUDIT_ANCHOR_EVERY events and after each purge: removed newest rows or an emptied
  table no longer pass;
- on PostgreSQL the application runs under a role that may only INSERT and SELECT
  the journal (audit.dbroles); the purge goes through a function that deletes
  only a prefix vouched for by a checkpoint written in the same transaction.
"""

from __future__ import annotations

import base64
import functools
import hashlib
import hmac
import ipaddress
import json
import logging
import logging.handlers
import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.db import connection, transaction
from django.http import HttpRequest
from django.utils import timezone

from audit import anchors
from audit.models import AuditCheckpoint, AuditEvent
from mssante.lib import untrusted

GENESIS = "0" * 64
# Same number as before the keys: one lock orders every writer of the chain.
_LOCK_ID = 727274
_ROW_FIELDS = (
    "id",
    "at",
    "actor_id",
    "actor_label",
    "action",
    "object_type",
    "object_id",
    "ip",
    "data",
    "prev_hash",
    "hash",
    "key_id",
)
# Rows fetched per round trip while verifying: memory stays bounded whatever the journal's size.
VERIFY_CHUNK = 2000
logger = logging.getLogger("mssante.audit")
anchor_logger = logging.getLogger("mssante.audit.anchor")


# --- Keys ------------------------------------------------------------------------------


@functools.lru_cache(maxsize=8)
def _parse_keys(value: str) -> tuple[str, dict[str, bytes]]:
    keys: dict[str, bytes] = {}
    for part in value.split(","):
        key_id, _, b64 = part.strip().partition(":")
        keys[key_id] = base64.b64decode(b64)
    return next(iter(keys)), keys


def keyring() -> tuple[str, dict[str, bytes]]:
    """(current key id, every key by id) from AUDIT_KEYS."""
    return _parse_keys(settings.AUDIT_KEYS)


@functools.lru_cache(maxsize=64)
def _subkey(key: bytes, purpose: str) -> bytes:
    # One key per use, so that a row's MAC can never pass for an anchor's or a checkpoint's.
    return hmac.new(key, f"mssante.audit.{purpose}".encode(), hashlib.sha256).digest()


def _sign(key: bytes, purpose: str, payload: Any) -> str:
    text = json.dumps(payload, sort_keys=True, ensure_ascii=False, separators=(",", ":"))
    return hmac.digest(_subkey(key, purpose), text.encode(), "sha256").hex()


# --- Rows -------------------------------------------------------------------------------


def _content(
    at: datetime,
    actor_id: Any,
    actor_label: str,
    action: str,
    object_type: str,
    object_id: str,
    ip: str | None,
    data: Any,
) -> list[Any]:
    return [at.isoformat(), actor_id, actor_label, action, object_type, object_id, ip, data]


def _unkeyed_digest(prev_hash: str, content: list[Any]) -> str:
    # Rows written before AUDIT_KEYS: plain SHA-256, which anyone can recompute. They
    # are accepted only up to the signed seal (see verify).
    payload = json.dumps(
        [prev_hash, *content], sort_keys=True, ensure_ascii=False, separators=(",", ":")
    )
    return hashlib.sha256(payload.encode()).hexdigest()


def _row_mac(key: bytes, key_id: str, prev_hash: str, content: list[Any]) -> str:
    content = list(content)
    # The database may write an address differently (PostgreSQL's inet): sign its value.
    content[6] = _canonical_ip(content[6])
    return _sign(key, "event", [prev_hash, key_id, *content])


@functools.lru_cache(maxsize=4096)
def _canonical_ip(ip: str | None) -> str | None:
    if not ip:
        return None
    try:
        address = ipaddress.ip_address(ip)
    except ValueError:
        return ip
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped:
        return str(address.ipv4_mapped)
    return str(address)


# Names a caller must never put in ``data``: the journal holds ids and counts, never a
# secret nor a message's content (its rows are kept for a year and shown to staff).
FORBIDDEN_KEYS = frozenset(
    {
        "password",
        "passwd",
        "secret",
        "token",
        "otp",
        "api_key",
        "private_key",
        "subject",
        "body",
        "html",
        "text",
        "content",
        "filename",
    }
)
# A longer string in ``data`` is cut: the journal's rows stay small whatever a peer sent.
MAX_DATA_STRING = 1000


def _clean(value: Any) -> Any:
    """``value`` as the database will give it back (JSON), safe to store whatever its origin."""
    if isinstance(value, str):
        # NUL is refused by PostgreSQL's JSON, lone surrogates by UTF-8.
        text = value[:MAX_DATA_STRING].encode("utf-8", "replace").decode("utf-8")
        return text.replace("\x00", "\ufffd")
    if isinstance(value, dict):
        return {str(_clean(key)): _clean(item) for key, item in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [_clean(item) for item in value]
    if value is None or isinstance(value, bool | int | float):
        return value
    return _clean(str(value))


def _clean_data(data: dict[str, Any]) -> dict[str, Any]:
    forbidden = {key for key in data if key.lower() in FORBIDDEN_KEYS}
    if forbidden:
        raise ValueError(
            f"audit.record : « {', '.join(sorted(forbidden))} » n'a pas sa place au journal"
        )
    cleaned: dict[str, Any] = json.loads(json.dumps(_clean(data), allow_nan=False))
    return cleaned


def _clip(value: Any, length: int) -> str:
    text: str = _clean(str(value))
    return text[:length]


def _digest(prev_hash: str, event: AuditEvent) -> str:
    """The unkeyed digest of an event (the scheme of rows written before AUDIT_KEYS)."""
    return _unkeyed_digest(prev_hash, _event_content(event))


def _event_content(event: AuditEvent) -> list[Any]:
    return _content(
        event.at,
        event.actor_id,
        event.actor_label,
        event.action,
        event.object_type,
        event.object_id,
        event.ip,
        event.data,
    )


def client_ip(request: HttpRequest | None) -> str | None:
    """The client's address as our own proxies saw it (TRUSTED_PROXY_HOPS), or None."""
    if request is None:
        return None
    # None for what is not an address (a misconfigured proxy): the column would refuse it.
    return untrusted.client_address(
        str(request.META.get("REMOTE_ADDR") or ""),
        str(request.META.get("HTTP_X_FORWARDED_FOR") or ""),
        int(getattr(settings, "TRUSTED_PROXY_HOPS", 0)),
    )


def _lock() -> None:
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_xact_lock(%s)", [_LOCK_ID])


def _restart_hash() -> str:
    """What the first row links to: the newest purge's last hash, or the genesis."""
    last = (
        AuditCheckpoint.objects.filter(kind=AuditCheckpoint.Kind.PURGE)
        .order_by("-last_event_id")
        .values_list("last_hash", flat=True)
        .first()
    )
    return last or GENESIS


def append(
    action: str,
    *,
    actor: Any = None,
    obj: Any = None,
    object_type: str = "",
    object_id: str | int = "",
    request: HttpRequest | None = None,
    **data: Any,
) -> tuple[AuditEvent, bool]:
    """Chain one event (in the caller's transaction): the event, and whether to anchor soon.

    ``data`` must hold no content. Anchoring is due at the first event of a chain and
    whenever the ids cross a multiple of AUDIT_ANCHOR_EVERY: audit.journal.record has
    it done after commit, never an fsync on this path.
    """
    if obj is not None:
        object_type = object_type or obj._meta.label_lower
        object_id = object_id or obj.pk
    key_id, keys = keyring()
    event = AuditEvent(
        actor=actor if getattr(actor, "pk", None) else None,
        actor_label=_clip(actor, 200) if actor is not None else "",
        action=_clip(action, 64),
        object_type=_clip(object_type, 64),
        object_id=_clip(object_id, 64),
        ip=client_ip(request),
        data=_clean_data(data),
        key_id=key_id,
    )
    with transaction.atomic():
        # Rows are chained in id order: serialise writers so two events never
        # claim the same predecessor.
        _lock()
        last = AuditEvent.objects.order_by("-id").values_list("id", "hash").first()
        prev_id, prev_hash = last if last is not None else (None, _restart_hash())
        event.at, event.prev_hash = timezone.now(), prev_hash
        event.hash = _row_mac(keys[key_id], key_id, prev_hash, _event_content(event))
        event.save(force_insert=True)
    every = settings.AUDIT_ANCHOR_EVERY
    return event, prev_id is None or event.id // every != prev_id // every


# --- Checkpoints (purges, and the seal of the unkeyed rows) ----------------------------------


def _legacy_checkpoint_key() -> bytes:
    # Checkpoints written before AUDIT_KEYS: HMAC under AUDIT_CHECKPOINT_KEY, by
    # default derived from SECRET_KEY. The label is part of the key: it keeps its old
    # name, or those checkpoints would no longer verify.
    key: str = settings.AUDIT_CHECKPOINT_KEY or settings.SECRET_KEY
    return hmac.new(key.encode(), b"mssante.charter.audit-checkpoint", hashlib.sha256).digest()


def _checkpoint_signature(checkpoint: AuditCheckpoint, key: bytes | None = None) -> str:
    if not checkpoint.key_id:
        payload = json.dumps(
            [
                checkpoint.created_at.isoformat(),
                checkpoint.last_event_id,
                checkpoint.last_hash,
                checkpoint.purged_count,
                checkpoint.cutoff.isoformat(),
            ],
            separators=(",", ":"),
        )
        return hmac.new(_legacy_checkpoint_key(), payload.encode(), hashlib.sha256).hexdigest()
    assert key is not None
    # charter/migrations/0008 repeats this payload to seal the unkeyed rows.
    return _sign(
        key,
        "checkpoint",
        [
            checkpoint.kind,
            checkpoint.key_id,
            checkpoint.created_at.isoformat(),
            checkpoint.last_event_id,
            checkpoint.last_hash,
            checkpoint.purged_count,
            checkpoint.cutoff.isoformat(),
        ],
    )


def _checkpoint_problem(checkpoint: AuditCheckpoint, keys: dict[str, bytes]) -> str | None:
    if checkpoint.key_id and checkpoint.key_id not in keys:
        return f"point de contrôle n°{checkpoint.pk} signé par une clé inconnue « {checkpoint.key_id} »"
    if checkpoint.kind == AuditCheckpoint.Kind.SEAL and not checkpoint.key_id:
        return f"point de contrôle n°{checkpoint.pk} : scellement sans clé"
    expected = _checkpoint_signature(checkpoint, keys.get(checkpoint.key_id))
    if not hmac.compare_digest(checkpoint.signature, expected):
        return f"point de contrôle n°{checkpoint.pk} à la signature invalide"
    return None


# --- Anchors (outside the database) ------------------------------------------------------


@dataclass(frozen=True)
class Anchor:
    """One checked line of the anchor file."""

    number: int
    at: str
    last_id: int
    head: str
    events: int
    prev: str
    mac: str
    purge: tuple[int, str, int] | None  # (last purged id, its hash, count)
    restart: str  # the operator's reason, on a line that starts the comparison afresh


def _anchor_fields(line: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in line.items() if k != "mac"}


def _parse_anchor(text: str, keys: dict[str, bytes]) -> Anchor | str:
    """The anchor on this line, or why it is not one."""
    try:
        line = json.loads(text)
    except ValueError:
        return "illisible"
    if not isinstance(line, dict) or line.get("v") != 1:
        return "illisible"
    key = keys.get(str(line.get("key", "")))
    if key is None:
        return f"signée par une clé inconnue « {line.get('key')} »"
    if not hmac.compare_digest(
        str(line.get("mac", "")), _sign(key, "anchor", _anchor_fields(line))
    ):
        return "signature invalide"
    try:
        purge = line.get("purge")
        return Anchor(
            number=int(line["n"]),
            at=str(line["at"]),
            last_id=int(line["last_id"]),
            head=str(line["head"]),
            events=int(line["events"]),
            prev=str(line["prev"]),
            mac=str(line["mac"]),
            purge=(int(purge[0]), str(purge[1]), int(purge[2])) if purge else None,
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
    purges: dict[int, tuple[str, int, str]] = field(default_factory=dict)
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
        parsed = _parse_anchor(text, keys) if text else "illisible"
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
        if previous and parsed.last_id < previous.last_id:
            result.problem = f"ligne {number} du fichier d'ancrage : la chaîne y recule"
            return result
        if parsed.restart:
            # The operator restarted the anchoring (a backup restored): earlier lines,
            # purges included, describe a journal that is no longer the one compared.
            result.purges.clear()
            result.restarts.append((parsed.at, parsed.restart))
        if parsed.purge:
            result.purges[parsed.purge[0]] = (parsed.purge[1], parsed.purge[2], parsed.at)
        previous = parsed
        result.lines += 1
    result.newest = previous
    return result


# --- Verification -----------------------------------------------------------------------


@dataclass(frozen=True)
class ChainBreak:
    event_id: int | None
    reason: str


@dataclass
class Verification:
    """The outcome of a walk of the journal."""

    broken: ChainBreak | None = None
    count: int = 0
    last_id: int | None = None
    last_hash: str = GENESIS
    unkeyed: int = 0
    anchors: AnchorFile | None = None
    warnings: list[str] = field(default_factory=list)


@dataclass
class _Walk:
    broken: ChainBreak | None = None
    count: int = 0
    last_id: int | None = None
    last_hash: str = GENESIS
    unkeyed: int = 0
    seen: dict[int, str] = field(default_factory=dict)
    rows_up_to: int = 0


def _walk(
    *,
    after_id: int,
    start_hash: str,
    keys: dict[str, bytes],
    seal: AuditCheckpoint | None,
    until: int | None = None,
    watch: tuple[int, ...] = (),
    count_up_to: int | None = None,
) -> _Walk:
    """Check every row after ``after_id`` (up to ``until``), in id order, streaming.

    ``watch``: ids whose hash is kept for the caller; ``count_up_to``: count the rows
    with an id at most this.
    """
    walk = _Walk(last_hash=start_hash)
    prev, prev_id = start_hash, None
    unkeyed_until = seal.last_event_id if seal is not None else 0
    rows = AuditEvent.objects.filter(id__gt=after_id).order_by("id")
    if until is not None:
        rows = rows.filter(id__lte=until)
    for row in rows.values_list(*_ROW_FIELDS).iterator(chunk_size=VERIFY_CHUNK):
        event_id, at, actor_id, label, action, otype, oid, ip, data, prev_hash, digest, kid = row
        if prev_hash != prev:
            after = f"la ligne {prev_id}" if prev_id is not None else "le début du journal"
            walk.broken = ChainBreak(
                event_id,
                f"lien rompu avec {after} : ligne précédente modifiée, "
                "ou lignes insérées ou supprimées avant celle-ci",
            )
            return walk
        content = _content(at, actor_id, label, action, otype, oid, ip, data)
        if not kid:
            if event_id > unkeyed_until:
                walk.broken = ChainBreak(
                    event_id,
                    "ligne sans clé après la mise en place des clés : "
                    "réécrite par quelqu'un qui n'a pas la clé",
                )
                return walk
            expected = _unkeyed_digest(prev, content)
            walk.unkeyed += 1
        elif kid not in keys:
            walk.broken = ChainBreak(
                event_id, f"signée par une clé inconnue « {kid} » (AUDIT_KEYS)"
            )
            return walk
        else:
            expected = _row_mac(keys[kid], kid, prev, content)
        if not hmac.compare_digest(expected, digest):
            walk.broken = ChainBreak(
                event_id, "contenu modifié (ou empreinte recalculée sans la clé)"
            )
            return walk
        if event_id in watch:
            walk.seen[event_id] = digest
        if count_up_to is not None and event_id <= count_up_to:
            walk.rows_up_to += 1
        prev, prev_id = digest, event_id
        walk.count += 1
    walk.last_id, walk.last_hash = prev_id, prev
    return walk


@contextmanager
def _snapshot() -> Iterator[None]:
    """One consistent view for a long read (a purge may commit meanwhile)."""
    if connection.vendor == "postgresql" and not connection.in_atomic_block:
        with transaction.atomic():
            with connection.cursor() as cursor:
                cursor.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ")
            yield
    else:
        yield


def _checkpoints(
    keys: dict[str, bytes],
) -> tuple[list[AuditCheckpoint], AuditCheckpoint | None, ChainBreak | None]:
    """(purge checkpoints in order, the seal, a bad signature)."""
    purges: list[AuditCheckpoint] = []
    seal: AuditCheckpoint | None = None
    for checkpoint in AuditCheckpoint.objects.order_by("last_event_id", "kind"):
        problem = _checkpoint_problem(checkpoint, keys)
        if problem:
            return [], None, ChainBreak(checkpoint.last_event_id, problem)
        if checkpoint.kind == AuditCheckpoint.Kind.SEAL:
            seal = checkpoint
        else:
            purges.append(checkpoint)
    return purges, seal, None


def verify(*, until: int | None = None) -> Verification:
    """Walk the journal from the newest purge (or the genesis), and check it against the anchors.

    ``until`` stops after that event id and skips the anchor checks (the purge checks
    only what it removes, so that record() callers do not wait for a walk of the
    whole journal). Signed checkpoints are checked first, since a forged one could
    otherwise vouch for a rewritten chain.
    """
    _key_id, keys = keyring()
    result = Verification()
    with _snapshot():
        purges, seal, broken = _checkpoints(keys)
        if broken:
            result.broken = broken
            return result
        floor = purges[-1] if purges else None
        floor_id = floor.last_event_id if floor else 0
        purged_total = sum(checkpoint.purged_count for checkpoint in purges)

        newest: Anchor | None = None
        path = settings.AUDIT_ANCHOR_FILE
        if until is None and path:
            found = read_anchor_file(path, keys)
            result.anchors = found
            if found is None:
                result.warnings.append(
                    f"aucun ancrage externe dans {path} : la fin du journal n'est pas attestée"
                )
            elif found.problem:
                result.broken = ChainBreak(None, found.problem)
                return result
            else:
                newest = found.newest
                broken = _purges_match(found, purges)
                if broken:
                    result.broken = broken
                    return result
        elif until is None:
            result.warnings.append(
                "AUDIT_ANCHOR_FILE est vide : la fin du journal n'est attestée nulle part"
            )

        # Rows older than the rows' first anchor may be gone legitimately (purged).
        anchored = newest.last_id if newest is not None and newest.last_id > floor_id else None
        sealed = seal.last_event_id if seal is not None and seal.last_event_id > floor_id else None
        # A row at or below the floor is one the purge removed: inserted afterwards.
        intruder = AuditEvent.objects.filter(id__lte=floor_id).order_by("id").first()
        if intruder is not None:
            result.broken = ChainBreak(
                intruder.id, "ligne présente dans une partie déjà purgée (insérée)"
            )
            return result
        walk = _walk(
            after_id=floor_id,
            start_hash=floor.last_hash if floor else GENESIS,
            keys=keys,
            seal=seal,
            until=until,
            watch=tuple(i for i in (anchored, sealed) if i is not None),
            count_up_to=anchored,
        )
    result.count, result.last_id, result.last_hash = walk.count, walk.last_id, walk.last_hash
    result.unkeyed = walk.unkeyed
    if walk.broken or until is not None:
        result.broken = walk.broken
        return result
    if seal is not None and sealed is not None and walk.seen.get(sealed) != seal.last_hash:
        result.broken = ChainBreak(
            sealed, "ligne scellée lors de la mise en place des clés absente ou différente"
        )
    elif anchored is not None and newest is not None:
        if anchored not in walk.seen:
            result.broken = ChainBreak(
                anchored,
                f"ligne attestée par l'ancrage externe du {newest.at} absente : "
                "les lignes les plus récentes ont été supprimées, ou la table vidée",
            )
        elif walk.seen[anchored] != newest.head:
            result.broken = ChainBreak(anchored, f"différente de l'ancrage externe du {newest.at}")
        elif walk.rows_up_to + purged_total != newest.events:
            result.broken = ChainBreak(
                anchored,
                f"{walk.rows_up_to + purged_total} événement(s) jusqu'à cette ligne, "
                f"{newest.events} selon l'ancrage externe du {newest.at}",
            )
    return result


def _purges_match(found: AnchorFile, purges: list[AuditCheckpoint]) -> ChainBreak | None:
    by_id = {checkpoint.last_event_id: checkpoint for checkpoint in purges}
    for last_id, (last_hash, count, at) in found.purges.items():
        checkpoint = by_id.get(last_id)
        if (
            checkpoint is None
            or checkpoint.last_hash != last_hash
            or checkpoint.purged_count != count
        ):
            return ChainBreak(
                last_id,
                f"point de contrôle de la purge du {at} absent de la base ou différent "
                "de l'ancrage externe",
            )
    return None


def verify_chain(*, until: int | None = None) -> ChainBreak | None:
    """The first fault of the journal (rows, checkpoints, anchors), or None."""
    return verify(until=until).broken


# --- Anchoring ---------------------------------------------------------------------------


class AuditIntegrityError(Exception):
    """The journal is damaged: a purge or an anchor would certify tampered rows, so it stops."""


def _head() -> tuple[int, str]:
    """The newest row (id, hash), once every writer before us has committed."""
    with transaction.atomic():
        _lock()
        last = AuditEvent.objects.order_by("-id").values_list("id", "hash").first()
        return last if last is not None else (0, _restart_hash())


def anchor(*, purge: AuditCheckpoint | None = None, restart: str = "") -> dict[str, Any] | None:
    """Append the chain's head to the anchor file (and syslog), after checking the rows
    added since the previous anchor. None when anchoring is off (AUDIT_ANCHOR_FILE empty).

    ``restart`` (a reason): compare with nothing before, only check the whole chain is
    consistent (see restart_anchoring).
    """
    path = settings.AUDIT_ANCHOR_FILE
    if not path:
        return None
    key_id, keys = keyring()
    with anchors.AnchorStore(path) as store:
        previous: Anchor | None = None
        for text in store.newest_lines():
            parsed = _parse_anchor(text, keys)
            if isinstance(parsed, Anchor):
                previous = parsed
                break
            if parsed != "illisible":
                raise _alarm(f"fichier d'ancrage {path} : dernière ligne {parsed}")
        if previous is None and not store.is_empty():
            raise _alarm(f"fichier d'ancrage {path} : aucune ligne valide à la fin du fichier")
        head_id, head_hash = _head()
        with _snapshot():
            events = _check_since(None if restart else previous, head_id, head_hash, keys)
        line: dict[str, Any] = {
            "v": 1,
            "n": previous.number + 1 if previous else 1,
            "at": timezone.now().isoformat(),
            "last_id": head_id,
            "head": head_hash,
            "events": events,
            "prev": previous.mac if previous else "",
            "key": key_id,
        }
        if purge is not None:
            line["purge"] = [purge.last_event_id, purge.last_hash, purge.purged_count]
        if restart:
            line["restart"] = restart
        line["mac"] = _sign(keys[key_id], "anchor", line)
        text = json.dumps(line, sort_keys=True, separators=(",", ":"))
        store.append(text)
    _ship(text)
    return line


def restart_anchoring(reason: str, *, by: Any = None) -> dict[str, Any] | None:
    """After a legitimate break of the anchors (the database restored from a backup older
    than the last anchor): journal it, then anchor afresh, stating the reason.

    The chain itself must still be whole: a restart never covers a row changed or
    removed in the middle, only a journal that ends earlier than the anchors said.
    """
    reason = " ".join(reason.split())[:300]
    if not reason:
        raise ValueError("restart_anchoring : un motif est obligatoire")
    # Anchored right below: append, no anchoring of its own to enqueue.
    append("audit.anchor_restarted", actor=by, reason=reason)
    return anchor(restart=reason)


def _check_since(
    previous: Anchor | None, head_id: int, head_hash: str, keys: dict[str, bytes]
) -> int:
    """Verify the rows since the previous anchor; the events count for the new one."""
    purges, seal, broken = _checkpoints(keys)
    if broken:
        raise _alarm(f"ligne {broken.event_id} : {broken.reason}")
    floor = purges[-1] if purges else None
    floor_id = floor.last_event_id if floor else 0
    purged_total = sum(checkpoint.purged_count for checkpoint in purges)
    if previous is not None and previous.last_id > floor_id:
        if head_id < previous.last_id:
            raise _alarm(
                f"la dernière ligne est {head_id}, l'ancrage du {previous.at} attestait la "
                f"ligne {previous.last_id} : lignes récentes supprimées ou table vidée"
            )
        kept = AuditEvent.objects.filter(id=previous.last_id).values_list("hash", flat=True).first()
        if kept != previous.head:
            raise _alarm(
                f"ligne {previous.last_id} absente ou différente de l'ancrage du {previous.at}"
            )
        walk = _walk(
            after_id=previous.last_id, start_hash=previous.head, keys=keys, seal=seal, until=head_id
        )
        base = previous.events
    else:
        # First anchor, or the previous one is older than the newest purge: from the floor.
        walk = _walk(
            after_id=floor_id,
            start_hash=floor.last_hash if floor else GENESIS,
            keys=keys,
            seal=seal,
            until=head_id,
        )
        base = purged_total
    if walk.broken:
        raise _alarm(f"ligne {walk.broken.event_id} : {walk.broken.reason}")
    if walk.count and walk.last_hash != head_hash:
        raise _alarm(f"la ligne {head_id} a changé pendant l'ancrage")
    return base + walk.count


def _alarm(reason: str) -> AuditIntegrityError:
    logger.critical("Journal d'audit altéré, ancrage refusé : %s", reason)
    return AuditIntegrityError(reason)


@functools.lru_cache(maxsize=4)
def _syslog_handler(address: str) -> logging.Handler:
    target: str | tuple[str, int] = address
    if not address.startswith("/"):
        host, _, port = address.rpartition(":")
        target = (host.strip("[]"), int(port))
    return logging.handlers.SysLogHandler(
        address=target, facility=logging.handlers.SysLogHandler.LOG_AUTHPRIV
    )


def _ship(text: str) -> None:
    """A copy of the anchor line in the logs, and in syslog when AUDIT_ANCHOR_SYSLOG is set."""
    anchor_logger.info("audit-anchor %s", text)
    address = settings.AUDIT_ANCHOR_SYSLOG
    if address:
        handler = _syslog_handler(address)
        handler.handle(
            logging.LogRecord(
                "mssante.audit.anchor",
                logging.INFO,
                __file__,
                0,
                "mssante-audit-anchor %s",
                (text,),
                None,
            )
        )


# --- Retention ---------------------------------------------------------------------------


def purge_expired(*, now: datetime | None = None) -> AuditCheckpoint | None:
    """Delete events older than AUDIT_RETENTION_DAYS, leaving a signed checkpoint (and an anchor)."""
    now = now or timezone.now()
    cutoff = now - timedelta(days=settings.AUDIT_RETENTION_DAYS)
    key_id, keys = keyring()
    with transaction.atomic():
        # Same lock as record(): no event is chained while the prefix goes.
        _lock()
        # Purge a prefix in chain order: an event is kept if any earlier one is
        # kept, so a clock that went backwards never punches a hole in the chain.
        first_kept = (
            AuditEvent.objects.filter(at__gte=cutoff)
            .order_by("id")
            .values_list("id", flat=True)
            .first()
        )
        doomed = AuditEvent.objects.all()
        if first_kept is not None:
            doomed = doomed.filter(id__lt=first_kept)
        last = doomed.order_by("-id").values_list("id", "hash").first()
        if last is None:
            return None
        # Include the first kept event: its link proves the last purged hash.
        broken = verify_chain(until=first_kept or last[0])
        if broken is not None:
            raise AuditIntegrityError(f"ligne {broken.event_id} : {broken.reason}")
        count = doomed.count()
        checkpoint = AuditCheckpoint(
            kind=AuditCheckpoint.Kind.PURGE,
            created_at=now,
            last_event_id=last[0],
            last_hash=last[1],
            purged_count=count,
            cutoff=cutoff,
            key_id=key_id,
        )
        checkpoint.signature = _checkpoint_signature(checkpoint, keys[key_id])
        checkpoint.save(force_insert=True)
        if connection.vendor == "postgresql":
            with connection.cursor() as cursor:
                # The application's role may not DELETE from the journal: this function
                # (its owner's) removes only a prefix that a checkpoint of this very
                # transaction describes (charter/migrations/0008: the journal's tables,
                # trigger and function kept their charter_ names when it moved here).
                cursor.execute("SELECT charter_audit_purge(%s)", [last[0]])
        else:
            AuditEvent.objects.filter(id__lte=last[0]).delete()
        # Anchored on commit below: append, no anchoring of its own to enqueue.
        append(
            "audit.purged",
            obj=checkpoint,
            count=count,
            last_event_id=last[0],
        )
        transaction.on_commit(functools.partial(anchor, purge=checkpoint), robust=True)
    return checkpoint
