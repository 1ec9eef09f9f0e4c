"""Reads for the staff: the state of the pipeline (dashboard, delivery queue page).

Counts on indexed columns only: ``delivery_due`` (status, next attempt) for the queue,
``message_pending_scan`` (partial) for the messages waiting for their scan, the status
index of the quarantine. The deferred deliveries are few (a peer that does not answer):
grouping them by domain reads that index's range, never the delivered millions.
"""

from __future__ import annotations

from dataclasses import dataclass

from django.db.models import Count, IntegerField, QuerySet, Value
from django.db.models.functions import Lower, StrIndex, Substr

from mailboxes.models import Delivery, Message, Quarantine

WAITING = (Delivery.Status.QUEUED, Delivery.Status.SCANNING, Delivery.Status.DEFERRED)


@dataclass(frozen=True)
class DomainCount:
    domain: str
    count: int


def with_domain(rows: QuerySet[Delivery]) -> QuerySet[Delivery]:
    """The rows annotated with ``domain``: the recipient's domain, in lower case."""
    at = StrIndex("recipient", Value("@"))
    return rows.annotate(
        domain=Lower(Substr("recipient", at + Value(1, output_field=IntegerField())))
    )


def waiting_deliveries() -> QuerySet[Delivery]:
    return Delivery.objects.filter(status__in=WAITING)


def deferred_by_domain(limit: int = 10) -> list[DomainCount]:
    """The domains with the most deferred deliveries (the peers that do not take our mail)."""
    rows = (
        with_domain(Delivery.objects.filter(status=Delivery.Status.DEFERRED))
        .values("domain")  # type: ignore[misc]  # an annotation, unknown to the stubs
        .annotate(count=Count("id"))
        .order_by("-count", "domain")[:limit]
    )
    return [DomainCount(str(r["domain"]), int(r["count"])) for r in rows]


def count(status: str) -> int:
    return Delivery.objects.filter(status=status).count()


def pending_scans() -> int:
    """Messages stored and not scanned yet (the partial index ``message_pending_scan``)."""
    return Message.objects.filter(scan_status=Message.ScanStatus.PENDING).count()


def held_in_quarantine() -> int:
    return Quarantine.objects.filter(status=Quarantine.Status.HELD).count()


__all__ = [
    "WAITING",
    "DomainCount",
    "count",
    "deferred_by_domain",
    "held_in_quarantine",
    "pending_scans",
    "waiting_deliveries",
    "with_domain",
]
