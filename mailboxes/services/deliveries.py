"""Staff acting on the delivery queue (the admin's "file de distribution").

Two actions on deliveries that wait (queued or deferred): try again now, or give up
and tell the sender with a delivery status notification, as the pipeline does when a
delivery expires. Both lock the rows they change (``SKIP LOCKED``: a row a worker holds
is that worker's) and leave alone a remote delivery an outbound task has claimed and
is sending (its lease has not run out): its outcome is being recorded, and writing
over it would tell the sender one thing and the recipient's server another.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from audit import journal
from mailboxes import reasons
from mailboxes.models import Delivery, Message
from mailboxes.reasons import Reason
from mailboxes.services import queue
from mailboxes.transport import dsn

# What staff may act on: the deliveries still waiting (never one delivered or given up).
WAITING = (Delivery.Status.QUEUED, Delivery.Status.DEFERRED)
# One admin action acts on this many deliveries at most (a page of the list is 100).
MAX_AT_ONCE = 500


@dataclass(frozen=True)
class QueueOutcome:
    """How many deliveries were acted on, and how many were left as they were."""

    done: int
    busy: int  # being sent right now, or locked by a worker
    finished: int  # no longer waiting (delivered, given up…) or unknown


def _lease() -> timedelta:
    # The outbound task's claim (transport.outbound._lease), read the same way.
    return max(queue.retry_delay(), timedelta(seconds=3 * settings.SMTP_TIMEOUT))


def _sending(delivery: Delivery, now: Any) -> bool:
    return (
        delivery.status == Delivery.Status.DEFERRED
        and delivery.reason == reasons.SENDING
        and delivery.updated_at > now - _lease()
    )


def _claim(delivery_ids: Iterable[int]) -> tuple[list[Delivery], int, int, Any]:
    """Lock the waiting deliveries among ``delivery_ids`` (caller's transaction)."""
    ids = sorted({int(pk) for pk in delivery_ids})[:MAX_AT_ONCE]
    now = timezone.now()
    rows = list(
        Delivery.objects.select_for_update(skip_locked=True, of=("self",))
        .select_related("message", "message__sender_mailbox")
        .filter(pk__in=ids, status__in=WAITING)
        .order_by("pk")
    )
    ready = [d for d in rows if not _sending(d, now)]
    waiting = Delivery.objects.filter(pk__in=ids, status__in=WAITING).count()
    busy = waiting - len(ready)
    return ready, busy, len(ids) - waiting, now


def _by_message(deliveries: list[Delivery]) -> dict[int, list[Delivery]]:
    grouped: dict[int, list[Delivery]] = {}
    for delivery in deliveries:
        grouped.setdefault(delivery.message_id, []).append(delivery)
    return grouped


@transaction.atomic
def retry_deliveries(delivery_ids: Iterable[int], *, by: Any) -> QueueOutcome:
    """Make waiting deliveries due now and hand them to the workers once committed."""
    ready, busy, finished, now = _claim(delivery_ids)
    if not ready:
        return QueueOutcome(0, busy, finished)
    ids = [d.pk for d in ready]
    Delivery.objects.filter(pk__in=ids).update(next_attempt_at=now, updated_at=now)
    # A message not scanned yet is delivered by its scan; the others by deliver_batch.
    pending_scan = sorted(
        {d.message_id for d in ready if d.message.scan_status == Message.ScanStatus.PENDING}
    )
    due = [d.pk for d in ready if d.message.scan_status != Message.ScanStatus.PENDING]
    journal.record_many(
        [
            (
                "delivery.retried",
                group[0].message,
                {"deliveries": [d.pk for d in group], "mailboxes": [d.recipient for d in group]},
            )
            for group in _by_message(ready).values()
        ],
        actor=by,
    )
    if pending_scan:
        transaction.on_commit(lambda: queue.enqueue_processing(pending_scan, force=True))
    if due:
        transaction.on_commit(lambda: queue.enqueue_batches(due))
    return QueueOutcome(len(ready), busy, finished)


@transaction.atomic
def abandon_deliveries(delivery_ids: Iterable[int], *, by: Any) -> QueueOutcome:
    """Give up waiting deliveries: bounced, and the sender told by a DSN (as an expiry is)."""
    ready, busy, finished, now = _claim(delivery_ids)
    for group in _by_message(ready).values():
        failures: list[dsn.Failure] = []
        for delivery in group:
            last = (
                Reason(delivery.reason, delivery.reason_params)
                if delivery.reason and delivery.reason != reasons.SENDING
                else None
            )
            reason = Reason(reasons.ABANDONED, {"last": last} if last is not None else {})
            delivery.set_reason(reason)
            Delivery.objects.filter(pk=delivery.pk).update(
                status=Delivery.Status.BOUNCED,
                reason=delivery.reason,
                reason_params=delivery.reason_params,
                updated_at=now,
            )
            # 5.0.0: "other or undefined permanent status" (RFC 3463): no code says
            # "cancelled by the operator".
            failures.append(dsn.Failure(delivery.recipient, reason, status="5.0.0"))
        message = group[0].message
        journal.record(
            "delivery.abandoned",
            actor=by,
            obj=message,
            deliveries=[d.pk for d in group],
            mailboxes=[d.recipient for d in group],
        )
        # In this transaction: the report exists exactly when the bounce does.
        dsn.report_failures(message, failures)
    return QueueOutcome(len(ready), busy, finished)


__all__ = ["MAX_AT_ONCE", "WAITING", "QueueOutcome", "abandon_deliveries", "retry_deliveries"]
