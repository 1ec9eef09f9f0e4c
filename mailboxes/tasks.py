"""Celery tasks of the delivery pipeline: ids in, one service call, safe to run twice."""

from __future__ import annotations

from celery import shared_task

from mailboxes import services


@shared_task(acks_late=True, ignore_result=True)
def scan_message(message_id: int) -> None:
    """Scan a submitted message, then enqueue its deliveries."""
    services.scan(message_id)


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
