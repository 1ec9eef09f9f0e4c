"""The audit journal every app writes to: ``record()`` one event, or ``record_many()`` a
batch, in the caller's transaction.

Writing is one INSERT: no lock, no read of another row. The rows are bound in order
afterwards by the sealer (audit.seals), which ``record()`` has run soon after commit
(at most every AUDIT_SEAL_SECONDS per process; beat runs it too). The mechanism (keys,
seals, verification, anchors, purge) is in audit.chain and the modules it uses; the
names callers use are re-exported here, so that one import serves them all.
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from typing import Any

from django.conf import settings
from django.db import transaction
from django.http import HttpRequest

from audit import chain
from audit.chain import AuditIntegrityError, anchor, purge_expired, restart_anchoring
from audit.keys import keyring
from audit.models import AuditEvent
from audit.rows import Target, client_ip
from audit.tasks import seal_journal
from audit.verification import GENESIS, ChainBreak, Verification, verify, verify_chain

__all__ = [
    "GENESIS",
    "AuditIntegrityError",
    "ChainBreak",
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
    event = chain.append(
        action,
        actor=actor,
        obj=obj,
        object_type=object_type,
        object_id=object_id,
        request=request,
        **data,
    )
    _seal_soon()
    return event


def record_many(
    events: Iterable[tuple[str, Target, dict[str, Any]]],
    *,
    actor: Any = None,
    request: HttpRequest | None = None,
) -> list[AuditEvent]:
    """Append a batch of events in one multi-row INSERT (in the caller's transaction).

    Each entry is ``(action, target, data)``: ``target`` is the model instance the event
    is about, an ``(object_type, object_id)`` pair, or None; ``data`` a dict of details
    that must hold no content (the same rules as ``record``'s keyword arguments). Every
    event of the batch has the same ``actor``, client address and time. Returns the
    saved events, in order. For example, a worker that delivered a batch::

        journal.record_many(
            [("message.delivered", delivery.message, {"delivery": delivery.pk})
             for delivery in done]
        )
    """
    written = chain.append_many(events, actor=actor, request=request)
    if written:
        _seal_soon()
    return written


# When this process may next ask for a seal (time.monotonic()).
_next_seal = 0.0


def _seal_soon() -> None:
    """Have the rows sealed after commit, at most every AUDIT_SEAL_SECONDS per process."""
    global _next_seal
    now = time.monotonic()
    if now < _next_seal:
        return
    _next_seal = now + settings.AUDIT_SEAL_SECONDS
    # A broker that is down only delays it: beat runs the sealer too.
    transaction.on_commit(_enqueue_seal, robust=True)


def _enqueue_seal() -> None:
    seal_journal.delay()
