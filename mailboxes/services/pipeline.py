"""The delivery pipeline: scan, deliver, and the sweeper that recovers lost work.

``Delivery`` rows are the outbox; Celery only carries their ids. Every function
here is safe to run twice.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from datetime import datetime

from django.conf import settings
from django.db import transaction
from django.db.models import BooleanField, Exists, ExpressionWrapper, F, OuterRef, Q
from django.utils import timezone

from audit import journal
from mailboxes import blobs, hooks, reasons, search
from mailboxes.models import (
    AutoReply,
    Delivery,
    Entry,
    Folder,
    MailAlert,
    Mailbox,
    Message,
    Rule,
)
from mailboxes.reasons import Reason
from mailboxes.services import automation, quarantine, queue
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


def process(message_ids: Sequence[int]) -> int:
    """Scan the messages still pending, then deliver their local recipients: one transaction.

    The hot path of the pipeline (``drain`` calls it on each batch it takes): the
    messages are locked ``FOR NO KEY UPDATE SKIP LOCKED`` (one another worker holds is
    that worker's; rows that merely reference them, a resend's deliveries, are not
    blocked), each pending one is scanned once, the verdicts applied, the messages'
    pending local deliveries claimed, their entries written with one INSERT, marked with
    one UPDATE, and one event per message and outcome journaled. Other operators'
    recipients are handed to the outbound task once committed.

    Safe to run twice. ``ClamdUnavailable`` propagates once the messages that could be
    judged are delivered: those left pending are never delivered unscanned (the task
    retries, the sweeper re-enqueues them). Returns how many deliveries were done.
    """
    ids = sorted(set(message_ids))
    postponed: scanning.ClamdUnavailable | None = None
    with transaction.atomic():
        mine = list(
            Message.objects.select_for_update(skip_locked=True, no_key=True)
            .filter(pk__in=ids)
            .only("pk", "scan_status", "blob_name", "key_id", "wrapped_key")
            .annotate(
                has_remote=Exists(
                    Delivery.objects.filter(
                        message_id=OuterRef("pk"), remote=True, status__in=PENDING
                    )
                )
            )
            .order_by("pk")
        )
        if not mine:
            return 0
        verdicts, terms, previews, postponed = _scan_pending(
            [m for m in mine if m.scan_status == Message.ScanStatus.PENDING]
        )
        scanned = _apply_verdicts(verdicts)
        search.store_previews(previews)
        search.index_sent_copies(terms)
        held = [m.pk for m in mine]
        deliveries = _claim_local(Q(message_id__in=held))
        done = _deliver_claimed(deliveries, scanned, terms)
        # Other operators' recipients of the messages judged (the annotation spares a
        # query per batch when there are none, the common case).
        with_remote = [m.pk for m in mine if getattr(m, "has_remote", False)]
        remote = (
            list(
                Delivery.objects.filter(message_id__in=with_remote, remote=True, status__in=PENDING)
                .exclude(message__scan_status=Message.ScanStatus.PENDING)
                .values_list("pk", flat=True)
            )
            if with_remote
            else []
        )
        if remote:
            transaction.on_commit(lambda: queue.enqueue_batches(remote))
        # A verdict no delivery event carries (every recipient remote, or none left).
        carried = {d.message_id for d in deliveries}
        for message_id, (status, verdict) in scanned.items():
            if message_id not in carried and status != Message.ScanStatus.INFECTED:
                journal.record(
                    "message.scanned",
                    object_type=Message._meta.label_lower,
                    object_id=message_id,
                    verdict=verdict.status.value,
                    parts=verdict.parts_scanned,
                )
    if postponed is not None:
        raise postponed
    return done


# Rounds of DELIVERY_BATCH messages one drain takes before handing over to a new task.
DRAIN_ROUNDS = 200


def drain() -> int:
    """Process every message waiting, a batch of ``DELIVERY_BATCH`` at a time; how many deliveries.

    The stored messages' commit wakes one drain (``queue.wake``), not a task each: under
    load a worker takes the messages in batches, each batch one transaction. Before each
    batch the wake is re-armed, so a message committed after it wakes another drain (two
    drains share the work through ``SKIP LOCKED``); it first waits PIPELINE_GATHER_MS so
    that the messages committing meanwhile share its batch. Waiting means: still to be scanned,
    or judged with local deliveries queued (a release, a platform notice). Stops at the
    first ``ClamdUnavailable``: what is left waits for the sweeper and the retries.
    """
    after_pending = after_queued = 0
    done = 0
    size = settings.DELIVERY_BATCH
    # Group commit on the worker's side: while this waits, the wake is still set, so the
    # messages committed meanwhile wake nothing more and come in this drain's batch.
    time.sleep(settings.PIPELINE_GATHER_MS / 1000)
    for _round in range(DRAIN_ROUNDS):
        queue.rearm()
        pending = list(
            Message.objects.filter(scan_status=Message.ScanStatus.PENDING, pk__gt=after_pending)
            .order_by("pk")
            .values_list("pk", flat=True)[:size]
        )
        queued = list(
            Delivery.objects.filter(
                status=Delivery.Status.QUEUED, remote=False, message_id__gt=after_queued
            )
            .exclude(message__scan_status=Message.ScanStatus.PENDING)
            .order_by("message_id")
            .values_list("message_id", flat=True)
            .distinct()[:size]
        )
        if not pending and not queued:
            return done
        after_pending = max(pending, default=after_pending)
        after_queued = max(queued, default=after_queued)
        try:
            done += process(pending + queued)
        except scanning.ClamdUnavailable as exc:
            log.warning("drain stopped, clamd unavailable: %s", exc)
            return done
        if len(pending) < size and len(queued) < size:
            # Everything waiting at the re-arm was in this batch; whatever was committed
            # since has woken another drain.
            return done
    # Still more: a fresh task goes on, so that one task never runs without end.
    queue.wake(force=True)
    return done


def scan(message_id: int) -> None:
    """Scan one message and deliver its local recipients (``process`` of one message)."""
    process([message_id])


def _scan_pending(
    pending: Sequence[Message],
) -> tuple[
    dict[int, scanning.ScanVerdict],
    dict[int, bytes],
    dict[int, str],
    scanning.ClamdUnavailable | None,
]:
    """The verdict on each message (read, decrypted, scanned once), and the search terms
    (digested) and preview line of those not infected, while their plaintext is in hand
    (``mailboxes.search``).

    Stops at the first ``ClamdUnavailable`` (clamd is down for all of them): the
    messages judged so far are returned with it, the others stay pending.
    """
    verdicts: dict[int, scanning.ScanVerdict] = {}
    terms: dict[int, bytes] = {}
    previews: dict[int, str] = {}
    for message in pending:
        raw = blobs.read(message.blob_name, message.key_id, message.wrapped_key)
        try:
            verdicts[message.pk] = verdict = scanning.scan_raw_message(raw)
        except scanning.ClamdUnavailable as exc:
            return verdicts, terms, previews, exc
        if _SCAN_STATUS[verdict.status] != Message.ScanStatus.INFECTED:
            doc = search.document(raw)
            terms[message.pk] = search.prepare(doc.terms())
            previews[message.pk] = search.preview(doc)
    return verdicts, terms, previews, None


def _apply_verdicts(
    verdicts: dict[int, scanning.ScanVerdict],
) -> dict[int, tuple[str, scanning.ScanVerdict]]:
    """Record the verdicts of locked pending messages (caller's transaction): one UPDATE per
    verdict, the infected quarantined. Returns what was applied, by message."""
    applied: dict[int, tuple[str, scanning.ScanVerdict]] = {
        pk: (str(_SCAN_STATUS[v.status]), v) for pk, v in verdicts.items()
    }
    by_status: dict[str, list[int]] = {}
    for pk, (status, _verdict) in applied.items():
        by_status.setdefault(status, []).append(pk)
    for status, pks in by_status.items():
        Message.objects.filter(pk__in=pks).update(scan_status=status)
    for pk in by_status.get(Message.ScanStatus.INFECTED, []):
        message = Message.objects.select_related("sender_mailbox").get(pk=pk)
        verdict = applied[pk][1]
        journal.record(
            "message.scanned",
            obj=message,
            verdict=verdict.status.value,
            parts=verdict.parts_scanned,
        )
        quarantine.quarantine_message(message, verdict)
    return applied


def _claim_local(which: Q) -> list[Delivery]:
    """Lock the pending local deliveries ``which`` designates, of messages already judged.

    ``SKIP LOCKED``: rows another worker holds are left to it (it delivers them, or its
    transaction rolls back and the sweeper brings them again). Rows are taken in id
    order so that two overlapping claims cannot deadlock.
    """
    return list(
        # of=self: PostgreSQL cannot lock the nullable side of the mailbox join.
        Delivery.objects.select_for_update(skip_locked=True, of=("self",))
        .select_related("message", "mailbox")
        .annotate(
            inbox_id=system_folder_id(OuterRef("mailbox_id"), Folder.Role.INBOX),
            # The box has a rule or an out-of-office reply on, or its owner a new-mail
            # alert: only then does the delivery ask anything more of the database
            # (automation.place, per batch).
            automated=ExpressionWrapper(
                Q(Exists(Rule.objects.filter(mailbox_id=OuterRef("mailbox_id"))))
                | Q(
                    Exists(
                        AutoReply.objects.filter(mailbox_id=OuterRef("mailbox_id"), enabled=True)
                    )
                )
                | Q(
                    Exists(
                        MailAlert.objects.filter(
                            user_id=OuterRef("mailbox__owner_id"), enabled=True
                        )
                    )
                ),
                output_field=BooleanField(),
            ),
        )
        .filter(which, remote=False, status__in=PENDING)
        # A message not scanned yet: its scan delivers these.
        .exclude(message__scan_status=Message.ScanStatus.PENDING)
        .order_by("pk")
    )


def _receipts_filed(delivered: list[tuple[Delivery, Mailbox]]) -> dict[int, int]:
    """Deliveries of a peer's read receipt to the box that sent the original: their folder.

    The original's timeline already says "Lu" (transport.mdn.apply_report): the receipt
    is kept, read, in the box's archive rather than as one more unread inbox message.
    """
    originals = {d.message.receipt_of_id for d, _box in delivered if d.message.receipt_of_id}
    if not originals:
        return {}
    senders = dict(Message.objects.filter(pk__in=originals).values_list("pk", "sender_mailbox_id"))
    archives = dict(
        Folder.objects.filter(
            mailbox_id__in={box.pk for _d, box in delivered}, role=Folder.Role.ARCHIVE
        ).values_list("mailbox_id", "pk")
    )
    return {
        d.pk: archives[box.pk]
        for d, box in delivered
        if d.message.receipt_of_id
        and senders.get(d.message.receipt_of_id) == box.pk
        and box.pk in archives
    }


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
        done += _deliver_claimed(_claim_local(Q(pk__in=delivery_ids)), {}, {})
    return done


def _deliver_claimed(
    deliveries: list[Delivery],
    scanned: dict[int, tuple[str, scanning.ScanVerdict]],
    terms: dict[int, bytes],
) -> int:
    """Deliver claimed local deliveries (caller's transaction), set-based; return how many.

    ``scanned``: the verdicts applied in this transaction, carried by the delivery events;
    ``terms``: the search terms (digested, ``search.prepare``) of the messages scanned in
    it; the others (released, platform notices) are read again for theirs.
    """
    if not deliveries:
        return 0
    now = timezone.now()
    # Staff may release a quarantined message: it keeps its "infected" status.
    released = quarantine.released_ids(
        d.message_id for d in deliveries if d.message.scan_status == Message.ScanStatus.INFECTED
    )
    delivered: list[tuple[Delivery, Mailbox]] = []
    held: list[Delivery] = []
    # Recipients who will not get their message, by message: the sender is owed a DSN.
    failures: dict[int, list[dsn.Failure]] = {}
    for delivery in deliveries:
        box = delivery.mailbox
        if (
            delivery.message.scan_status == Message.ScanStatus.INFECTED
            and delivery.message_id not in released
        ):
            delivery.status = Delivery.Status.QUARANTINED
            reason = Reason(reasons.QUARANTINED)
            delivery.set_reason(reason)
            held.append(delivery)
            failures.setdefault(delivery.message_id, []).append(
                dsn.Failure(delivery.recipient, reason, status="5.7.1")
            )
        elif box is None or not box.is_active:
            delivery.status = Delivery.Status.BOUNCED
            reason = Reason(reasons.MAILBOX_UNAVAILABLE)
            delivery.set_reason(reason)
            held.append(delivery)
            failures.setdefault(delivery.message_id, []).append(
                dsn.Failure(delivery.recipient, reason, status="5.1.1" if box is None else "5.2.1")
            )
        else:
            delivery.status = Delivery.Status.DELIVERED
            delivered.append((delivery, box))
    if delivered:
        for d, _box in delivered:
            if d.message_id not in terms:
                terms[d.message_id] = search.prepare(search.read_terms(d.message))
        # The boxes' rules (folder, flags) and out-of-office replies, for the boxes that
        # have any (annotated by _claim_local): nothing asked of the others.
        placements = automation.place(
            [
                (box, d.message, getattr(d, "inbox_id"))  # noqa: B009
                for d, box in delivered
                if getattr(d, "automated", False)
            ]
        )
        receipts = _receipts_filed(delivered)
        # The unique (mailbox, message) constraint makes a second run a no-op, even
        # when two workers race on the same delivery (ON CONFLICT DO NOTHING).
        entries = []
        for d, box in delivered:
            # The box's inbox, annotated by _claim_local, unless a rule files it elsewhere.
            placement = placements.get((box.pk, d.message_id)) or automation.Placement(
                getattr(d, "inbox_id")  # noqa: B009
            )
            entries.append(
                Entry(
                    mailbox=box,
                    message_id=d.message_id,
                    # The box's inbox, annotated by _claim_local, unless a rule files it
                    # elsewhere; a peer's read receipt about a message this box sent: its
                    # archive, already read.
                    folder_id=receipts.get(d.pk, placement.folder_id),
                    seen=d.pk in receipts or placement.seen,
                    flagged=placement.flagged,
                    received_at=now,
                    search_tokens=search.entry_tokens(box.pk, terms[d.message_id]),
                )
            )
        Entry.objects.bulk_create(entries, ignore_conflicts=True)
        # One UPDATE for them all (not bulk_update's CASE per row).
        Delivery.objects.filter(pk__in=[d.pk for d, _box in delivered]).update(
            status=Delivery.Status.DELIVERED,
            attempts=F("attempts") + 1,
            delivered_at=now,
            reason="",
            reason_params={},
            updated_at=now,
        )
        # The apps above learn who received a message (patients: a content-free e-mail).
        hooks.delivered.send(
            sender=Mailbox,
            mailboxes=[box for _d, box in delivered],
            received=[(box, d.message) for d, box in delivered],
        )
    for delivery in held:
        # Rare: each keeps its own reason.
        Delivery.objects.filter(pk=delivery.pk).update(
            status=delivery.status,
            attempts=F("attempts") + 1,
            reason=delivery.reason,
            reason_params=delivery.reason_params,
            updated_at=now,
        )
    # One journal event per message and outcome rather than per recipient; the scan's
    # verdict rides on it when it was given in this transaction.
    outcomes: dict[tuple[int, str], list[Delivery]] = {}
    for delivery in deliveries:
        outcomes.setdefault((delivery.message_id, delivery.status), []).append(delivery)
    events: list[tuple[str, Message, dict[str, object]]] = []
    for (message_id, status), group in outcomes.items():
        data: dict[str, object] = {
            "deliveries": [d.pk for d in group],
            "mailboxes": [d.recipient for d in group],
        }
        if message_id in scanned:
            verdict = scanned[message_id][1]
            data.update(verdict=verdict.status.value, parts=verdict.parts_scanned)
        events.append((f"message.{status}", group[0].message, data))
    journal.record_many(events)
    messages = {d.message_id: d.message for d in deliveries}
    for message_id, failed in failures.items():
        # In this transaction: the report exists exactly when the bounce does.
        dsn.report_failures(messages[message_id], failed)
    return len(deliveries)


def resume_after_restart(worker: str) -> int:
    """A worker has started: take back at once what its previous run held; how many.

    Its remote deliveries caught mid-send (``outbound.release_leases``) and the messages
    of a drain it held (any drain takes every message waiting: a forced wake) would
    otherwise wait for the lease to expire or for the sweeper.
    """
    ids = outbound.release_leases(worker)
    queue.enqueue_batches(ids)
    queue.wake(force=True)  # other brokers: the sweeper re-enqueues pending scans
    if ids:
        log.info(
            "worker %s started: %d deliveries of its previous run taken back", worker, len(ids)
        )
    return len(ids)


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
        transaction.on_commit(lambda: queue.enqueue_processing(stuck, force=True))
        transaction.on_commit(lambda: queue.enqueue_batches(due))
        count = len(stuck) + len(due)
    if count:
        log.info("sweep: %d scans and %d deliveries re-enqueued", len(stuck), len(due))
    return count
