"""The delivery pipeline: scan, deliver, and the sweeper that recovers lost work.

``Delivery`` rows are the outbox; Celery only carries their ids. Every function
here is safe to run twice.
"""

from __future__ import annotations

import logging
from datetime import datetime

from django.db import transaction
from django.db.models import OuterRef
from django.utils import timezone

from audit import journal
from mailboxes import blobs, hooks, reasons
from mailboxes.models import Delivery, Entry, Folder, Mailbox, Message
from mailboxes.reasons import Reason
from mailboxes.services import quarantine, queue
from mailboxes.services.mailbox import system_folder_id
from mailboxes.transport import dsn, outbound
from trust import scanning

log = logging.getLogger(__name__)

PENDING = (Delivery.Status.QUEUED, Delivery.Status.SCANNING, Delivery.Status.DEFERRED)


def requeue_deliveries(message_id: int, status: str) -> int:
    """Put a message's deliveries in ``status`` back in the queue, due now; return how many.

    Staff releasing a quarantined message call it (in their transaction): the
    deliveries are enqueued once that commits.
    """
    held = Delivery.objects.filter(message_id=message_id, status=status)
    ids = list(held.values_list("pk", flat=True))
    held.update(
        status=Delivery.Status.QUEUED,
        reason="",
        reason_params={},
        next_attempt_at=timezone.now(),
        updated_at=timezone.now(),
    )
    transaction.on_commit(lambda: queue.enqueue_batches(ids))
    return len(ids)


# The charter's verdicts as the message's scan status. "Unscannable" (clamd refused the
# data) is held like a virus: never delivered as if it were clean.
_SCAN_STATUS = {
    scanning.ScanStatus.CLEAN: Message.ScanStatus.CLEAN,
    scanning.ScanStatus.NOT_SCANNED: Message.ScanStatus.NOT_SCANNED,
    scanning.ScanStatus.INFECTED: Message.ScanStatus.INFECTED,
    scanning.ScanStatus.UNSCANNABLE: Message.ScanStatus.INFECTED,
}


def scan(message_id: int) -> None:
    """Scan a message with clamd, then enqueue its deliveries, or quarantine it.

    ``ClamdUnavailable`` propagates: the message stays pending (the task retries, the
    sweeper re-enqueues it), so it is never delivered unscanned and never lost.
    """
    found = Message.objects.filter(pk=message_id).first()
    if found is None:
        return
    verdict = None
    if found.scan_status == Message.ScanStatus.PENDING:
        # Outside the transaction: clamd may take a while on a large message.
        verdict = scanning.scan_raw_message(
            blobs.read(found.blob_name, found.key_id, found.wrapped_key)
        )
    with transaction.atomic():
        message = Message.objects.select_for_update().filter(pk=message_id).first()
        if message is None:
            return
        if message.scan_status == Message.ScanStatus.PENDING and verdict is not None:
            message.scan_status = _SCAN_STATUS[verdict.status]
            message.save(update_fields=["scan_status"])
            journal.record(
                "message.scanned",
                obj=message,
                verdict=verdict.status.value,
                parts=verdict.parts_scanned,
            )
            if message.scan_status == Message.ScanStatus.INFECTED:
                quarantine.quarantine_message(message, verdict)
                return
        # Deliveries still pending of a message already judged (a resend added some, or
        # a duplicate task): the delivery step holds them if the message is held.
        ids = list(
            Delivery.objects.filter(message_id=message_id, status__in=PENDING).values_list(
                "pk", flat=True
            )
        )
        transaction.on_commit(lambda: queue.enqueue_batches(ids))


def deliver(delivery_id: int) -> None:
    """Deliver one recipient of a scanned message; running it twice delivers once."""
    deliver_many([delivery_id])


def deliver_many(delivery_ids: list[int]) -> int:
    """Deliver several recipients in one transaction (idempotent); return how many were done."""
    remote = set(
        Delivery.objects.filter(pk__in=delivery_ids, remote=True).values_list("pk", flat=True)
    )
    done = 0
    if remote:
        # Other operators' recipients go over SMTP, outside any transaction here.
        done = outbound.deliver_remote(sorted(remote))
        delivery_ids = [pk for pk in delivery_ids if pk not in remote]
        if not delivery_ids:
            return done
    with transaction.atomic():
        deliveries = list(
            # of=self: PostgreSQL cannot lock the nullable side of the mailbox join. Rows
            # are locked in id order so that two overlapping batches cannot deadlock.
            Delivery.objects.select_for_update(of=("self",))
            .select_related("message", "mailbox")
            .annotate(inbox_id=system_folder_id(OuterRef("mailbox_id"), Folder.Role.INBOX))
            .filter(pk__in=delivery_ids, remote=False)
            .exclude(status__in=Delivery.DONE)
            # A message not scanned yet: its scan enqueues these deliveries again.
            .exclude(message__scan_status=Message.ScanStatus.PENDING)
            .order_by("pk")
        )
        if not deliveries:
            return done
        now = timezone.now()
        entries = []
        # Staff may release a quarantined message: it keeps its "infected" status.
        released = quarantine.released_ids(
            d.message_id for d in deliveries if d.message.scan_status == Message.ScanStatus.INFECTED
        )
        # Recipients who will not get their message, by message: the sender is owed a DSN.
        failures: dict[int, list[dsn.Failure]] = {}
        for delivery in deliveries:
            delivery.attempts += 1
            delivery.updated_at = now
            box = delivery.mailbox
            if (
                delivery.message.scan_status == Message.ScanStatus.INFECTED
                and delivery.message_id not in released
            ):
                delivery.status = Delivery.Status.QUARANTINED
                held = Reason(reasons.QUARANTINED)
                delivery.set_reason(held)
                failures.setdefault(delivery.message_id, []).append(
                    dsn.Failure(delivery.recipient, held, status="5.7.1")
                )
            elif box is None or not box.is_active:
                delivery.status = Delivery.Status.BOUNCED
                gone = Reason(reasons.MAILBOX_UNAVAILABLE)
                delivery.set_reason(gone)
                failures.setdefault(delivery.message_id, []).append(
                    dsn.Failure(
                        delivery.recipient,
                        gone,
                        status="5.1.1" if box is None else "5.2.1",
                    )
                )
            else:
                entries.append(
                    Entry(
                        mailbox=box,
                        message=delivery.message,
                        folder_id=delivery.inbox_id,
                        received_at=now,
                    )
                )
                delivery.status = Delivery.Status.DELIVERED
                delivery.delivered_at = now
                delivery.set_reason(None)
        # The unique (mailbox, message) constraint makes a second run a no-op, even
        # when two workers race on the same delivery (ON CONFLICT DO NOTHING).
        Entry.objects.bulk_create(entries, ignore_conflicts=True)
        # The apps above learn who received a message (patients: a content-free e-mail).
        hooks.delivered.send(sender=Mailbox, mailboxes=[e.mailbox for e in entries])
        Delivery.objects.bulk_update(
            deliveries,
            ["status", "attempts", "delivered_at", "reason", "reason_params", "updated_at"],
        )
        # One journal event per message and outcome rather than per recipient: the
        # journal is serialised, and a message to 40 people must not take 40 turns.
        outcomes: dict[tuple[int, str], list[Delivery]] = {}
        for delivery in deliveries:
            outcomes.setdefault((delivery.message_id, delivery.status), []).append(delivery)
        for (_message_id, status), group in outcomes.items():
            journal.record(
                f"message.{status}",
                obj=group[0].message,
                deliveries=[d.pk for d in group],
                mailboxes=[d.recipient for d in group],
            )
        messages = {d.message_id: d.message for d in deliveries}
        for message_id, failed in failures.items():
            # In this transaction: the report exists exactly when the bounce does.
            dsn.report_failures(messages[message_id], failed)
    return done + len(deliveries)


def sweep(now: datetime | None = None) -> int:
    """Re-enqueue every delivery due and not done, and every scan stuck; return how many."""
    now = now or timezone.now()
    stuck_before = now - queue.retry_delay()
    count = 0
    with transaction.atomic():
        stuck = list(
            Message.objects.filter(
                scan_status=Message.ScanStatus.PENDING, created_at__lte=stuck_before
            ).values_list("pk", flat=True)[:5000]
        )
        due = list(
            Delivery.objects.select_for_update(skip_locked=True, of=("self",))
            .filter(status__in=PENDING, next_attempt_at__lte=now)
            .exclude(message__scan_status=Message.ScanStatus.PENDING)
            .values_list("pk", flat=True)[:5000]
        )
        # Pushing the next attempt forward keeps the next sweep from enqueueing the
        # same delivery again while this one is still in the broker.
        Delivery.objects.filter(pk__in=due).update(next_attempt_at=now + queue.retry_delay())
        transaction.on_commit(lambda: queue.enqueue_scans(stuck))
        transaction.on_commit(lambda: queue.enqueue_batches(due))
        count = len(stuck) + len(due)
    if count:
        log.info("sweep: %d scans and %d deliveries re-enqueued", len(stuck), len(due))
    return count
