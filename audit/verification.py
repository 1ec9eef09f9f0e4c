"""Verification of the journal: the old chain, the seals and their rows, the unsealed rows, the anchors.

Read only, streaming (memory bounded whatever the journal's size), in one REPEATABLE
READ snapshot. The journal is, in id order of its parts:

1. the *old chain* (rows written before issue 13: ``prev_hash`` links each to the one
   before), from its newest purge (or the genesis) to its end, signed when the seals
   replaced it (checkpoint ``end``);
2. the *sealed* rows: each seal covers a range of positions (see audit.seals), links
   to the previous seal (the first one to the chain's end), and binds its rows'
   (id, MAC) in order; after a purge of seals, the first seal left is the one the
   purge checkpoint names (its rows are gone);
3. the *unsealed* rows, not sealed yet (their transactions were running at the last
   seal): each one's MAC is checked, and they are counted.

Every row's MAC is checked. Then the newest anchor line must name a seal (or, for a
line written before issue 13, a row of the old chain) that is there, unchanged.
"""

from __future__ import annotations

import hmac
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from django.conf import settings
from django.db import DatabaseError, connection, transaction

from audit import checkpoints, seals
from audit.anchorlines import Anchor, AnchorFile, read_anchor_file
from audit.checkpoints import Checkpoints
from audit.keys import keyring
from audit.models import AuditSeal
from audit.rows import content, row_mac, unkeyed_digest

GENESIS = "0" * 64
_CONTENT_FIELDS = (
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


@dataclass(frozen=True)
class ChainBreak:
    """The first fault found: the row it was seen at, or the seal."""

    event_id: int | None
    reason: str
    seal_id: int | None = None


@dataclass
class Verification:
    """The outcome of a walk of the journal."""

    broken: ChainBreak | None = None
    count: int = 0  # rows checked
    chained: int = 0  # of which rows of the old chain
    unkeyed: int = 0  # of which rows from before the keys
    unsealed: int = 0  # of which rows not sealed yet
    last_seal: AuditSeal | None = None
    anchors: AnchorFile | None = None
    warnings: list[str] = field(default_factory=list)


@contextmanager
def snapshot() -> Iterator[None]:
    """One consistent view for a long read (a purge or a seal may commit meanwhile)."""
    if connection.vendor == "postgresql" and not connection.in_atomic_block:
        with transaction.atomic():
            with connection.cursor() as cursor:
                cursor.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ")
            yield
    else:
        yield


# --- The old chain ------------------------------------------------------------------------


@dataclass
class ChainWalk:
    broken: ChainBreak | None = None
    count: int = 0
    last_id: int | None = None
    last_hash: str = GENESIS
    unkeyed: int = 0
    seen: dict[int, str] = field(default_factory=dict)
    rows_up_to: int = 0


def _walk_chain(
    *,
    after_id: int,
    start_hash: str,
    keys: dict[str, bytes],
    unkeyed_until: int,
    until: int | None = None,
    watch: tuple[int, ...] = (),
    count_up_to: int | None = None,
) -> ChainWalk:
    """Check the old chain's rows after ``after_id`` (up to ``until``), in id order.

    ``watch``: ids whose hash is kept for the caller; ``count_up_to``: count the rows
    with an id at most this.
    """
    walk = ChainWalk(last_hash=start_hash)
    prev, prev_id = start_hash, None
    rows = seals.chain_rows().filter(id__gt=after_id).order_by("id")
    if until is not None:
        rows = rows.filter(id__lte=until)
    for event_id, *values in rows.values_list("id", *_CONTENT_FIELDS).iterator(
        chunk_size=seals.CHUNK
    ):
        *row, prev_hash, digest, kid = values
        if prev_hash != prev:
            after = f"la ligne {prev_id}" if prev_id is not None else "le début du journal"
            walk.broken = ChainBreak(
                event_id,
                f"lien rompu avec {after} : ligne précédente modifiée, "
                "ou lignes insérées ou supprimées avant celle-ci",
            )
            return walk
        if not kid:
            if event_id > unkeyed_until:
                walk.broken = ChainBreak(event_id, _UNKEYED)
                return walk
            expected = unkeyed_digest(prev, content(*row))
            walk.unkeyed += 1
        elif kid not in keys:
            walk.broken = ChainBreak(event_id, _unknown_key(kid))
            return walk
        else:
            expected = row_mac(keys[kid], kid, prev, content(*row))
        if not hmac.compare_digest(expected, digest):
            walk.broken = ChainBreak(event_id, _CHANGED)
            return walk
        if event_id in watch:
            walk.seen[event_id] = digest
        if count_up_to is not None and event_id <= count_up_to:
            walk.rows_up_to += 1
        prev, prev_id = digest, event_id
        walk.count += 1
    walk.last_id, walk.last_hash = prev_id, prev
    return walk


_UNKEYED = (
    "ligne sans clé après la mise en place des clés : réécrite par quelqu'un qui n'a pas la clé"
)
_CHANGED = "contenu modifié (ou empreinte recalculée sans la clé)"


def _unknown_key(kid: str) -> str:
    return f"signée par une clé inconnue « {kid} » (AUDIT_KEYS)"


def check_chain(
    cps: Checkpoints,
    keys: dict[str, bytes],
    *,
    until: int | None = None,
    anchored: int | None = None,
) -> ChainWalk:
    """The old chain, from its newest purge to its signed end (or to ``until``, a row id)."""
    if cps.sealed_floor is not None:
        # A purge of seals removes whatever was left of the old chain.
        leftover = seals.chain_rows().order_by("id").values_list("id", flat=True).first()
        if leftover is not None:
            return ChainWalk(broken=ChainBreak(leftover, _INSERTED_IN_PURGED))
        return ChainWalk()
    floor = cps.floor
    floor_id = floor.last_event_id if floor else 0
    # A row at or below the floor is one the purge removed: inserted afterwards.
    intruder = (
        seals.chain_rows().filter(id__lte=floor_id).order_by("id").values_list("id", flat=True)
    )
    if (found := intruder.first()) is not None:
        return ChainWalk(broken=ChainBreak(found, _INSERTED_IN_PURGED))
    unkeyed = cps.unkeyed_seal
    sealed = (
        unkeyed.last_event_id if unkeyed is not None and unkeyed.last_event_id > floor_id else None
    )
    watching = anchored if anchored is not None and anchored > floor_id else None
    walk = _walk_chain(
        after_id=floor_id,
        start_hash=floor.last_hash if floor else GENESIS,
        keys=keys,
        unkeyed_until=unkeyed.last_event_id if unkeyed is not None else 0,
        until=until,
        watch=tuple(i for i in (watching, sealed) if i is not None),
        count_up_to=watching,
    )
    if walk.broken or until is not None:
        return walk
    if unkeyed is not None and sealed is not None and walk.seen.get(sealed) != unkeyed.last_hash:
        walk.broken = ChainBreak(
            sealed, "ligne scellée lors de la mise en place des clés absente ou différente"
        )
        return walk
    last = (walk.last_id if walk.last_id is not None else floor_id, walk.last_hash)
    end = cps.chain_end
    if end is None:
        if walk.count or cps.purges:
            first = seals.chain_rows().order_by("id").values_list("id", flat=True).first()
            walk.broken = ChainBreak(
                first,
                "ligne chaînée (format d'avant les scellements) sans la fin de chaîne signée "
                "lors du passage aux scellements : insérée, ou point de contrôle supprimé",
            )
    elif last != (end.last_event_id, end.last_hash):
        walk.broken = ChainBreak(
            last[0] or None,
            f"l'ancienne chaîne devait finir à la ligne {end.last_event_id} (point de contrôle "
            "signé lors du passage aux scellements) : lignes supprimées ou ajoutées à sa fin",
        )
    return walk


_INSERTED_IN_PURGED = "ligne présente dans une partie déjà purgée (insérée)"


# --- The seals and their rows ------------------------------------------------------------


@dataclass
class SealWalk:
    broken: ChainBreak | None = None
    seals: int = 0
    sealed: int = 0
    unsealed: int = 0
    last: AuditSeal | None = None
    seen: dict[int, AuditSeal] = field(default_factory=dict)


def _row_problem(values: tuple[Any, ...], keys: dict[str, bytes]) -> str | None:
    *row, prev_hash, digest, kid = values
    if not kid:
        return _UNKEYED
    if kid not in keys:
        return _unknown_key(kid)
    if prev_hash:
        return "ligne chaînée (format d'avant les scellements) parmi les lignes scellées : insérée"
    if not hmac.compare_digest(row_mac(keys[kid], kid, "", content(*row)), digest):
        return _CHANGED
    return None


def walk_seals(
    keys: dict[str, bytes],
    cps: Checkpoints,
    *,
    after: AuditSeal | None = None,
    until: int | None = None,
    tail: bool = True,
    watch: tuple[int, ...] = (),
) -> SealWalk:
    """Check the seals (after ``after``, or all; up to the seal ``until``) and every row
    they cover; then, with ``tail``, the rows not sealed yet."""
    walk = SealWalk()
    seal_rows = AuditSeal.objects.order_by("id")
    rows = seals.in_order(seals.current_rows())
    tombstone = None
    if after is not None:
        seal_rows = seal_rows.filter(id__gt=after.pk)
        rows = seals.between(rows, after.hi)
        prev, lo, total = after.mac, after.hi, after.total
    else:
        end = cps.chain_end
        prev, lo, total = (end.signature if end is not None else ""), 0, 0
        tombstone = cps.sealed_floor
    if until is not None:
        seal_rows = seal_rows.filter(id__lte=until)
    stream = rows.values_list(seals.by_position(), "id", *_CONTENT_FIELDS).iterator(
        chunk_size=seals.CHUNK
    )
    row = next(stream, None)
    first = True
    for seal in seal_rows.iterator(chunk_size=seals.CHUNK):
        problem = seals.seal_problem(seal, keys)
        if problem:
            walk.broken = ChainBreak(None, problem, seal.pk)
            return walk
        if first and tombstone is not None:
            first = False
            if seal.pk != tombstone.last_event_id or seal.mac != tombstone.last_hash:
                walk.broken = ChainBreak(
                    None,
                    f"le premier scellement n'est pas celui que la purge du "
                    f"{tombstone.created_at:%d/%m/%Y} a gardé (n°{tombstone.last_event_id}) : "
                    "scellements supprimés, ajoutés ou modifiés",
                    seal.pk,
                )
                return walk
            # Its rows were purged with the seals before it: none may be left below its end.
            if row is not None and row[0] < seal.hi:
                walk.broken = ChainBreak(row[1], _INSERTED_IN_PURGED)
                return walk
            prev, lo, total = seal.mac, seal.hi, seal.total
            walk.last = walk.seen[seal.pk] = seal
            continue
        first = False
        if seal.prev != prev or seal.lo != lo:
            walk.broken = ChainBreak(
                None,
                f"scellement n°{seal.pk} : ne suit pas le précédent "
                "(scellements supprimés, insérés ou déplacés)",
                seal.pk,
            )
            return walk
        if seal.total != total + seal.count:
            walk.broken = ChainBreak(None, f"scellement n°{seal.pk} : total incohérent", seal.pk)
            return walk
        digest = seals.Digest()
        while row is not None and row[0] < seal.hi:
            position, event_id, *values = row
            if position < seal.lo:
                walk.broken = ChainBreak(
                    event_id, "ligne placée avant le premier scellement (insérée)"
                )
                return walk
            problem = _row_problem(tuple(values), keys)
            if problem:
                walk.broken = ChainBreak(event_id, problem)
                return walk
            digest.add(event_id, values[-2], values[0])
            row = next(stream, None)
        if digest.count != seal.count:
            walk.broken = ChainBreak(
                None,
                f"scellement n°{seal.pk} : {digest.count} ligne(s) dans sa plage, il en "
                f"compte {seal.count} : lignes supprimées ou insérées",
                seal.pk,
            )
            return walk
        if digest.hexdigest() != seal.digest or digest.newest_at != seal.newest_at:
            walk.broken = ChainBreak(
                None,
                f"scellement n°{seal.pk} : ses lignes ont été remplacées, déplacées ou "
                "renumérotées",
                seal.pk,
            )
            return walk
        walk.seals += 1
        walk.sealed += digest.count
        prev, lo, total = seal.mac, seal.hi, seal.total
        walk.last = seal
        if seal.pk in watch:
            walk.seen[seal.pk] = seal
    if first and tombstone is not None:
        walk.broken = ChainBreak(
            None,
            f"scellement n°{tombstone.last_event_id}, gardé par la purge du "
            f"{tombstone.created_at:%d/%m/%Y}, absent : scellements supprimés ou table vidée",
            tombstone.last_event_id,
        )
        return walk
    while tail and row is not None:
        position, event_id, *values = row
        if position < lo:
            walk.broken = ChainBreak(event_id, "ligne placée avant le premier scellement (insérée)")
            return walk
        problem = _row_problem(tuple(values), keys)
        if problem:
            walk.broken = ChainBreak(event_id, problem)
            return walk
        walk.unsealed += 1
        row = next(stream, None)
    return walk


# --- The whole journal --------------------------------------------------------------------


def _purges_match(found: AnchorFile, cps: Checkpoints) -> ChainBreak | None:
    by_key = {
        (checkpoint.kind, checkpoint.last_event_id): checkpoint
        for checkpoint in [*cps.purges, *cps.sealed_purges]
    }
    for key, (last_hash, count, at) in found.purges.items():
        checkpoint = by_key.get(key)
        if (
            checkpoint is None
            or checkpoint.last_hash != last_hash
            or checkpoint.purged_count != count
        ):
            return ChainBreak(
                key[1] if key[0] == "purge" else None,
                f"point de contrôle de la purge du {at} absent de la base ou différent "
                "de l'ancrage externe",
                key[1] if key[0] != "purge" else None,
            )
    return None


def _against_anchor(
    newest: Anchor, chain: ChainWalk, walk: SealWalk, cps: Checkpoints
) -> ChainBreak | None:
    """Does the newest anchor line still describe the journal?"""
    if newest.version == 1:
        floor = cps.floor.last_event_id if cps.floor else 0
        if cps.sealed_floor is not None or newest.last_id <= floor:
            return None  # purged since
        anchored = newest.last_id
        if anchored not in chain.seen:
            return ChainBreak(
                anchored,
                f"ligne attestée par l'ancrage externe du {newest.at} absente : "
                "les lignes les plus récentes ont été supprimées, ou la table vidée",
            )
        if chain.seen[anchored] != newest.head:
            return ChainBreak(anchored, f"différente de l'ancrage externe du {newest.at}")
        if chain.rows_up_to + cps.purged_total != newest.events:
            return ChainBreak(
                anchored,
                f"{chain.rows_up_to + cps.purged_total} événement(s) jusqu'à cette ligne, "
                f"{newest.events} selon l'ancrage externe du {newest.at}",
            )
        return None
    anchored = newest.last_id
    tombstone = cps.sealed_floor
    if anchored == 0 or (tombstone is not None and anchored < tombstone.last_event_id):
        return None  # nothing sealed then, or purged since
    seal = walk.seen.get(anchored)
    if seal is None:
        return ChainBreak(
            None,
            f"scellement n°{anchored} attesté par l'ancrage externe du {newest.at} absent : "
            "les lignes les plus récentes ont été supprimées, ou la table vidée",
            anchored,
        )
    if seal.mac != newest.head:
        return ChainBreak(
            None, f"scellement n°{anchored} différent de l'ancrage externe du {newest.at}", anchored
        )
    if seal.total != newest.events:
        return ChainBreak(
            None,
            f"scellement n°{anchored} : {seal.total} événement(s) scellé(s) jusque-là, "
            f"{newest.events} selon l'ancrage externe du {newest.at}",
            anchored,
        )
    return None


def check(
    keys: dict[str, bytes],
    *,
    until: int | None = None,
    tail: bool = True,
    anchors: bool = True,
) -> Verification:
    """The walk itself, in the caller's snapshot (see verify)."""
    result = Verification()
    cps = checkpoints.load(keys)
    if cps.problem:
        result.broken = ChainBreak(*cps.problem)
        return result
    newest: Anchor | None = None
    path = settings.AUDIT_ANCHOR_FILE
    if anchors and path:
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
            result.broken = _purges_match(found, cps)
            if result.broken:
                return result
    elif anchors:
        result.warnings.append(
            "AUDIT_ANCHOR_FILE est vide : la fin du journal n'est attestée nulle part"
        )
    chain = check_chain(
        cps, keys, anchored=newest.last_id if newest is not None and newest.version == 1 else None
    )
    result.chained, result.unkeyed = chain.count, chain.unkeyed
    if chain.broken:
        result.broken = chain.broken
        return result
    watch = (newest.last_id,) if newest is not None and newest.version == 2 else ()
    walk = walk_seals(keys, cps, until=until, tail=tail, watch=watch)
    result.count = chain.count + walk.sealed + walk.unsealed
    result.unsealed, result.last_seal = walk.unsealed, walk.last
    if walk.broken:
        result.broken = walk.broken
        return result
    if newest is not None:
        result.broken = _against_anchor(newest, chain, walk, cps)
    return result


def verify(*, until: int | None = None) -> Verification:
    """Seal what can be, then walk the whole journal and compare it with the newest anchor.

    ``until`` (a seal's id) stops after that seal and skips the unsealed rows and the
    anchors (the purge checks only what it removes). Signed checkpoints are checked
    first, since a forged one could otherwise vouch for a rewritten journal.
    """
    _key_id, keys = keyring()
    warnings = []
    if until is None:
        try:
            seals.seal()
        except seals.PositionsWentBack as exc:
            warnings.append(
                f"les numéros de transaction de PostgreSQL ({exc.args[0]}) sont inférieurs "
                f"à ceux du dernier scellement ({exc.args[1]}) : base restaurée par pg_dump ? "
                "Lancez « manage.py migrate » avec le rôle propriétaire du schéma"
            )
        except DatabaseError as exc:
            # A role that may only read (an auditor's): verify what is there.
            warnings.append(f"scellement impossible avant la vérification ({exc})")
    with snapshot():
        result = check(keys, until=until, tail=until is None, anchors=until is None)
    result.warnings[:0] = warnings
    return result


def verify_chain(*, until: int | None = None) -> ChainBreak | None:
    """The first fault of the journal (rows, seals, checkpoints, anchors), or None."""
    return verify(until=until).broken
