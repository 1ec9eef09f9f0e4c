"""Writing and verifying the hash-chained audit journal."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from typing import Any

from django.db import connection, transaction
from django.http import HttpRequest
from django.utils import timezone

from charter.models import AuditEvent

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


def verify_chain() -> ChainBreak | None:
    """Walk the journal in order; return the first row whose hash or link is wrong."""
    prev = GENESIS
    for event in AuditEvent.objects.order_by("id").iterator(chunk_size=2000):
        if event.prev_hash != prev:
            return ChainBreak(event.id, "maillon manquant ou inséré avant cette ligne")
        if _digest(prev, event) != event.hash:
            return ChainBreak(event.id, "contenu modifié")
        prev = event.hash
    return None
