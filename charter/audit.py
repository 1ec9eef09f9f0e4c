"""Writing, verifying and purging the hash-chained audit journal."""

from __future__ import annotations

import hashlib
import hmac
import json
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.db import connection, transaction
from django.http import HttpRequest
from django.utils import timezone

from charter.models import AuditCheckpoint, AuditEvent

GENESIS = "0" * 64


def _digest(prev_hash: str, event: AuditEvent) -> str:
    payload = json.dumps(
        [
            prev_hash,
            event.at.isoformat(),
            event.actor_id,
            event.actor_label,
            event.action,
            event.object_type,
            event.object_id,
            event.ip,
            event.data,
        ],
        sort_keys=True,
        ensure_ascii=False,
        separators=(",", ":"),
    )
    return hashlib.sha256(payload.encode()).hexdigest()


def client_ip(request: HttpRequest | None) -> str | None:
    if request is None:
        return None
    return request.META.get("REMOTE_ADDR") or None


def record(
    action: str,
    *,
    actor: Any = None,
    obj: Any = None,
    object_type: str = "",
    object_id: str | int = "",
    request: HttpRequest | None = None,
    **data: Any,
) -> AuditEvent:
    """Append one event to the journal (in the caller's transaction). ``data`` must hold no content."""
    if obj is not None:
        object_type = object_type or obj._meta.label_lower
        object_id = object_id or obj.pk
    actor_obj = actor if getattr(actor, "pk", None) else None
    with transaction.atomic():
        # Rows are chained in id order: serialise writers so two events never
        # claim the same predecessor.
        if connection.vendor == "postgresql":
            with connection.cursor() as cursor:
                cursor.execute("SELECT pg_advisory_xact_lock(727274)")
        last = AuditEvent.objects.order_by("-id").values_list("hash", flat=True).first()
        if last is None:
            # After a purge that left nothing, the chain goes on from the checkpoint.
            last = (
                AuditCheckpoint.objects.order_by("-last_event_id")
                .values_list("last_hash", flat=True)
                .first()
            )
        event = AuditEvent(
            at=timezone.now(),
            actor=actor_obj,
            actor_label=str(actor) if actor is not None else "",
            action=action,
            object_type=object_type,
            object_id=str(object_id),
            ip=client_ip(request),
            data=data,
            prev_hash=last or GENESIS,
        )
        event.hash = _digest(event.prev_hash, event)
        event.save(force_insert=True)
    return event


@dataclass(frozen=True)
class ChainBreak:
    event_id: int
    reason: str


# --- Checkpoints: proof of what a purge removed ----------------------------------------


def _checkpoint_key() -> bytes:
    # A dedicated key lets the operator rotate SECRET_KEY without invalidating
    # every checkpoint; by default one is derived from SECRET_KEY.
    key: str = settings.AUDIT_CHECKPOINT_KEY or settings.SECRET_KEY
    return hmac.new(key.encode(), b"mssante.charter.audit-checkpoint", hashlib.sha256).digest()


def _checkpoint_signature(checkpoint: AuditCheckpoint) -> str:
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
    return hmac.new(_checkpoint_key(), payload.encode(), hashlib.sha256).hexdigest()


def verify_chain(*, until: int | None = None) -> ChainBreak | None:
    """Walk the journal in order; return the first row whose hash or link is wrong.

    ``until`` stops after that event id (the purge checks only what it removes,
    so that record() callers do not wait for a walk of the whole journal).

    The walk starts from the latest checkpoint (if a purge happened); every
    checkpoint's signature is checked first, since a forged checkpoint could
    otherwise vouch for a rewritten chain.
    """
    checkpoints = list(AuditCheckpoint.objects.order_by("last_event_id"))
    for checkpoint in checkpoints:
        stored = checkpoint.signature
        if not hmac.compare_digest(stored, _checkpoint_signature(checkpoint)):
            return ChainBreak(
                checkpoint.last_event_id,
                f"point de contrôle n°{checkpoint.pk} à la signature invalide",
            )
    prev, floor = GENESIS, 0
    if checkpoints:
        prev, floor = checkpoints[-1].last_hash, checkpoints[-1].last_event_id
    prev_id: int | None = None
    events = AuditEvent.objects.order_by("id")
    if until is not None:
        events = events.filter(id__lte=until)
    for event in events.iterator(chunk_size=2000):
        if event.id <= floor:
            return ChainBreak(event.id, "ligne présente dans une partie déjà purgée (insérée)")
        if event.prev_hash != prev:
            after = f"la ligne {prev_id}" if prev_id is not None else "le début du journal"
            return ChainBreak(
                event.id,
                f"lien rompu avec {after} : ligne précédente modifiée, "
                "ou lignes insérées ou supprimées avant celle-ci",
            )
        if _digest(prev, event) != event.hash:
            return ChainBreak(event.id, "contenu modifié")
        prev, prev_id = event.hash, event.id
    return None


@dataclass(frozen=True)
class ChainHead:
    count: int
    last_id: int | None
    last_hash: str


def chain_head() -> ChainHead:
    """The newest hash: worth copying outside the database, since only an external
    copy can reveal that the newest rows were removed."""
    last = AuditEvent.objects.order_by("-id").values_list("id", "hash").first()
    count = AuditEvent.objects.count()
    if last is None:
        checkpoint = AuditCheckpoint.objects.order_by("-last_event_id").first()
        return ChainHead(0, None, checkpoint.last_hash if checkpoint else GENESIS)
    return ChainHead(count, last[0], last[1])


class AuditIntegrityError(Exception):
    """The journal is damaged: a purge would certify tampered rows, so it stops."""


def purge_expired(*, now: datetime | None = None) -> AuditCheckpoint | None:
    """Delete events older than AUDIT_RETENTION_DAYS, leaving a signed checkpoint."""
    now = now or timezone.now()
    cutoff = now - timedelta(days=settings.AUDIT_RETENTION_DAYS)
    with transaction.atomic():
        if connection.vendor == "postgresql":
            with connection.cursor() as cursor:
                # Same lock as record(): no event is chained while the prefix goes.
                cursor.execute("SELECT pg_advisory_xact_lock(727274)")
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
            created_at=now,
            last_event_id=last[0],
            last_hash=last[1],
            purged_count=count,
            cutoff=cutoff,
        )
        checkpoint.signature = _checkpoint_signature(checkpoint)
        checkpoint.save(force_insert=True)
        if connection.vendor == "postgresql":
            with connection.cursor() as cursor:
                # The append-only trigger lets a DELETE through only with this
                # flag, which lasts until the end of this transaction.
                cursor.execute("SET LOCAL mssante.audit_purge = 'on'")
        AuditEvent.objects.filter(id__lte=last[0]).delete()
        record(
            "audit.purged",
            object_type="charter.auditcheckpoint",
            object_id=checkpoint.pk,
            count=count,
            last_event_id=last[0],
        )
    return checkpoint
