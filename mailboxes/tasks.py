"""Celery tasks of the delivery pipeline: ids in, one service call, safe to run twice."""

from __future__ import annotations

import logging

from celery import Task, shared_task
from django.conf import settings

from mailboxes import services
from trust.scanning import ClamdUnavailable

log = logging.getLogger(__name__)


@shared_task(bind=True, acks_late=True, ignore_result=True)
def process_messages(self: Task, message_ids: list[int]) -> None:
    """Scan stored messages and deliver their local recipients (the pipeline's one hop)."""
    try:
        services.process(message_ids)
    except ClamdUnavailable as exc:
        # The messages not judged stay "pending": never delivered unscanned. Retried
        # here a few times, then by the sweeper, which re-enqueues every scan left pending.
        log.warning("scan of messages %s postponed: %s", message_ids, exc)
        if self.request.is_eager or self.request.retries >= settings.SCAN_RETRY_MAX:
            return
        raise self.retry(countdown=settings.SCAN_RETRY_SECONDS) from None


@shared_task(acks_late=True, ignore_result=True)
def drain() -> None:
    """Process every message waiting, in batches (woken by the commits, see queue.wake)."""
    services.drain()


@shared_task(acks_late=True, ignore_result=True)
def deliver(delivery_id: int) -> None:
    """Deliver one recipient of a message (idempotent)."""
    services.deliver(delivery_id)


@shared_task(acks_late=True, ignore_result=True)
def deliver_batch(delivery_ids: list[int]) -> None:
    """Deliver several recipients in one transaction (idempotent)."""
    services.deliver_many(delivery_ids)


@shared_task(acks_late=True, ignore_result=True)
def sweep() -> int:
    """Re-enqueue every delivery due and not done (Celery beat runs this periodically)."""
    return services.sweep()


@shared_task(ignore_result=True)
def purge_idempotency_keys() -> int:
    """Forget API idempotency keys past their retention (beat, hourly)."""
    return services.purge_idempotency_keys()


@shared_task(ignore_result=True)
def collect_orphan_blobs() -> dict[str, int]:
    """Remove blob files no row names, past their grace period (beat, BLOB_ORPHAN_SCAN_SECONDS)."""
    return services.collect_orphan_blobs()


@shared_task(acks_late=True, ignore_result=True)
def send_auto_reply(mailbox_id: int, message_id: int) -> None:
    """Answer a message with its box's out-of-office reply, once per correspondent (idempotent)."""
    services.send_auto_reply(mailbox_id, message_id)


@shared_task(acks_late=True, ignore_result=True)
def send_new_mail_alert(user_id: int) -> None:
    """E-mail a professional how many messages are new (content-free, at most once an hour)."""
    services.send_new_mail_alert(user_id)


@shared_task(ignore_result=True)
def purge_empty_drafts() -> int:
    """Remove drafts with nothing typed and no file, untouched for a day (beat, hourly)."""
    return services.purge_empty_drafts()
