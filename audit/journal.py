"""The audit journal every app writes to: ``record()`` one event, in the caller's transaction.

The chain itself (keys, verification, anchors, purge) is in audit.chain; the names
callers use are re-exported here, so that one import serves them all.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from django.db import transaction
from django.http import HttpRequest

from audit import chain
from audit.chain import (
    GENESIS,
    AuditIntegrityError,
    ChainBreak,
    Verification,
    anchor,
    client_ip,
    keyring,
    purge_expired,
    restart_anchoring,
    verify,
    verify_chain,
)
from audit.models import AuditEvent
from audit.tasks import anchor_journal

__all__ = [
    "GENESIS",
    "AuditIntegrityError",
    "ChainBreak",
    "Event",
    "Verification",
    "anchor",
    "client_ip",
    "keyring",
    "purge_expired",
    "record",
    "record_many",
    "restart_anchoring",
    "verify",
    "verify_chain",
]


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
    event, anchor_due = chain.append(
        action,
        actor=actor,
        obj=obj,
        object_type=object_type,
        object_id=object_id,
        request=request,
        **data,
    )
    if anchor_due:
        # A batch's worth of events since the last anchor (or a chain starting): anchor
        # soon, after commit; a broker that is down only delays it (beat runs it too).
        transaction.on_commit(_anchor_soon, robust=True)
    return event


@dataclass(frozen=True)
class Event:
    """One event of ``record_many``: the arguments ``record`` takes, ``data`` as a mapping."""

    action: str
    obj: Any = None
    object_type: str = ""
    object_id: str | int = ""
    actor: Any = None
    data: Mapping[str, Any] = field(default_factory=dict)


def record_many(events: Sequence[Event]) -> None:
    """Append several events (in the caller's transaction), in order."""
    for event in events:
        record(
            event.action,
            actor=event.actor,
            obj=event.obj,
            object_type=event.object_type,
            object_id=event.object_id,
            **dict(event.data),
        )


def _anchor_soon() -> None:
    anchor_journal.delay()
