"""The sealer: binds the journal rows of finished transactions, in order, under signed seals.

``record()`` writes a row alone (one INSERT, its own MAC, no lock, no read). What
proves that no row was deleted, inserted or moved is the seal chain written here,
in the background (``audit.tasks.seal_journal``: Celery beat every AUDIT_SEAL_SECONDS,
triggered after commit by the writers, and run by the anchoring, the verification and
the purge before they look):

- each row has a *position*: on PostgreSQL the id of the transaction that inserted it
  (``xid``, filled in by the database: ``audit_xid()``); on SQLite, which has one
  writer at a time, its id;
- the *horizon* is the oldest transaction still running (``pg_snapshot_xmin`` of the
  current snapshot, ``audit_xid_horizon()``): every transaction below it has committed
  or rolled back, so no row can ever appear below it;
- seal k covers exactly the positions [horizon of seal k-1, horizon now), holding the
  number of rows there, a digest of their (id, MAC) in (position, id) order, the newest
  ``at``, the running total, the previous seal's MAC and its own HMAC.

Only the sealer takes a lock (one sealer at a time, never a writer). This module never
enqueues; the task does.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import datetime

from django.conf import settings
from django.db import connection, transaction
from django.db.models import Max, QuerySet
from django.utils import timezone

from audit.keys import keyring, sign
from audit.models import AuditCheckpoint, AuditEvent, AuditSeal

# The number the chain's lock had (issue 11): now only the sealer and the purge take it.
SEAL_LOCK_ID = 727274
# Rows fetched per round trip while sealing or verifying: memory stays bounded.
CHUNK = 2000
logger = logging.getLogger("mssante.audit")


@dataclass(frozen=True)
class Sealed:
    """What one run of the sealer did."""

    seal: AuditSeal | None  # None: nothing new to seal (or another sealer is at work)
    rows: int
    anchor_due: bool  # the total crossed a multiple of AUDIT_ANCHOR_EVERY


class PositionsWentBack(Exception):
    """PostgreSQL's transaction ids are below the last seal (a logical restore)."""


def by_position() -> str:
    return "xid" if connection.vendor == "postgresql" else "id"


def current_rows() -> QuerySet[AuditEvent]:
    """The rows written since the seals replaced the chain (the old chain's are apart)."""
    if connection.vendor == "postgresql":
        return AuditEvent.objects.filter(xid__isnull=False)
    return AuditEvent.objects.filter(id__gt=_chain_end_id())


def chain_rows() -> QuerySet[AuditEvent]:
    """The rows of the old chain: no transaction id (PostgreSQL), or up to its signed end."""
    if connection.vendor == "postgresql":
        return AuditEvent.objects.filter(xid__isnull=True)
    return AuditEvent.objects.filter(id__lte=_chain_end_id())


def _chain_end_id() -> int:
    # SQLite has no transaction id to tell the two apart: the old chain's signed end does.
    end = chain_end()
    return end.last_event_id if end is not None else 0


def in_order(rows: QuerySet[AuditEvent]) -> QuerySet[AuditEvent]:
    return rows.order_by(by_position(), "id")


def between(
    rows: QuerySet[AuditEvent], lo: int | None = None, hi: int | None = None
) -> QuerySet[AuditEvent]:
    """The rows whose position is in [lo, hi) (either bound may be left open)."""
    field = by_position()
    if lo is not None:
        rows = rows.filter(**{f"{field}__gte": lo})
    return rows.filter(**{f"{field}__lt": hi}) if hi is not None else rows


def horizon() -> int:
    """Below this position, no row can appear any more."""
    if connection.vendor != "postgresql":
        # One writer at a time: what is visible now is all there will be below.
        newest = AuditEvent.objects.aggregate(newest=Max("id"))["newest"]
        return (newest or 0) + 1
    with connection.cursor() as cursor:
        cursor.execute("SELECT audit_xid_horizon()")
        value: int = cursor.fetchone()[0]
    return value


class Digest:
    """The digest of a seal's rows: SHA-256 over "id:mac\\n" in (position, id) order."""

    def __init__(self) -> None:
        self._hash = hashlib.sha256()
        self.count = 0
        self.newest_at: datetime | None = None

    def add(self, event_id: int, mac: str, at: datetime) -> None:
        self._hash.update(f"{event_id}:{mac}\n".encode())
        self.count += 1
        if self.newest_at is None or at > self.newest_at:
            self.newest_at = at

    def hexdigest(self) -> str:
        return self._hash.hexdigest()


def seal_mac(key: bytes, seal: AuditSeal) -> str:
    return sign(
        key,
        "seal",
        [
            seal.key_id,
            seal.created_at.isoformat(),
            seal.lo,
            seal.hi,
            seal.count,
            seal.total,
            seal.newest_at.isoformat(),
            seal.digest,
            seal.prev,
        ],
    )


def seal_problem(seal: AuditSeal, keys: dict[str, bytes]) -> str | None:
    key = keys.get(seal.key_id)
    if key is None:
        return f"scellement n°{seal.pk} signé par une clé inconnue « {seal.key_id} » (AUDIT_KEYS)"
    if seal.hi <= seal.lo or seal.count <= 0:
        return f"scellement n°{seal.pk} incohérent"
    if seal.mac != seal_mac(key, seal):
        return f"scellement n°{seal.pk} à la signature invalide (modifié ou forgé)"
    return None


def chain_end() -> AuditCheckpoint | None:
    """Where the old chain ended when the seals replaced it (None on a journal born sealed)."""
    return (
        AuditCheckpoint.objects.filter(kind=AuditCheckpoint.Kind.CHAIN_END)
        .order_by("-last_event_id")
        .first()
    )


def _start() -> tuple[int, str, int]:
    """(lo, prev, total) of the next seal."""
    last = AuditSeal.objects.order_by("-id").first()
    if last is not None:
        return last.hi, last.mac, last.total
    # The first seal links to the old chain's signed end, if there was a chain.
    end = chain_end()
    return 0, end.signature if end is not None else "", 0


@dataclass(frozen=True)
class SealStatus:
    """Where the sealer stands, for the staff's dashboard."""

    newest: AuditSeal | None
    unsealed: int  # rows written since the newest seal (counted on the position index)
    late: bool  # the oldest row waiting was written more than a few sealing periods ago


def status(now: datetime | None = None) -> SealStatus:
    """The newest seal and the number of rows not sealed yet (two indexed reads)."""
    newest = AuditSeal.objects.order_by("-id").first()
    lo = newest.hi if newest is not None else _start()[0]
    waiting = between(current_rows(), lo)
    unsealed = waiting.count()
    oldest = in_order(waiting).values_list("at", flat=True).first() if unsealed else None
    now = now or timezone.now()
    late = oldest is not None and (now - oldest).total_seconds() > 3 * settings.AUDIT_SEAL_SECONDS
    return SealStatus(newest, unsealed, late)


def lock(*, wait: bool = True) -> bool:
    """Take the sealer's lock for the current transaction (PostgreSQL; SQLite has one writer)."""
    if connection.vendor != "postgresql":
        return True
    with connection.cursor() as cursor:
        function = "pg_advisory_xact_lock" if wait else "pg_try_advisory_xact_lock"
        cursor.execute(f"SELECT {function}(%s)", [SEAL_LOCK_ID])
        taken = cursor.fetchone()[0]
    return bool(taken) if not wait else True


def digest_rows(rows: Iterable[tuple[int, str, datetime]]) -> Digest:
    digest = Digest()
    for event_id, mac, at in rows:
        digest.add(event_id, mac, at)
    return digest


def _rows(lo: int, hi: int) -> Iterator[tuple[int, str, datetime]]:
    rows = in_order(between(current_rows(), lo, hi)).values_list("id", "hash", "at")
    return rows.iterator(chunk_size=CHUNK)


def seal(*, wait: bool = True) -> Sealed:
    """Seal the rows of every transaction finished since the last seal; what was done.

    ``wait=False`` (the scheduled task): return at once when another sealer is at work,
    it will seal them. The rows' MACs are not checked here (the digest binds their
    MACs; verification and anchoring check them), so sealing reads two short columns.
    """
    with transaction.atomic():
        if not lock(wait=wait):
            return Sealed(None, 0, False)
        lo, prev, total = _start()
        hi = horizon()
        if hi < lo and connection.vendor == "postgresql":
            logger.critical(
                "Journal d'audit : les numéros de transaction de PostgreSQL (%s) sont "
                "inférieurs à ceux du dernier scellement (%s) : base restaurée par pg_dump ? "
                "Lancez « manage.py migrate » avec le rôle propriétaire du schéma.",
                hi,
                lo,
            )
            raise PositionsWentBack(hi, lo)
        if hi <= lo:
            return Sealed(None, 0, False)
        digest = digest_rows(_rows(lo, hi))
        if not digest.count or digest.newest_at is None:
            # No row there: the next seal starts from the same place.
            return Sealed(None, 0, False)
        key_id, keys = keyring()
        new = AuditSeal(
            created_at=timezone.now(),
            lo=lo,
            hi=hi,
            count=digest.count,
            total=total + digest.count,
            newest_at=digest.newest_at,
            digest=digest.hexdigest(),
            prev=prev,
            key_id=key_id,
        )
        new.mac = seal_mac(keys[key_id], new)
        new.save(force_insert=True)
    every = settings.AUDIT_ANCHOR_EVERY
    return Sealed(new, digest.count, total // every != new.total // every)
