"""The timeline of a sent message, per recipient: submitted → scanned → delivered → read."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from django.utils.translation import gettext as _

from mailboxes.models import Delivery, Message


@dataclass(frozen=True)
class Step:
    state: (
        str  # submitted, scanned, quarantined, sending, deferred, delivered, bounced, refused, read
    )
    label: str
    at: datetime | None = None
    detail: str = ""


@dataclass
class RecipientTimeline:
    recipient: str
    remote: bool
    steps: list[Step] = field(default_factory=list)

    @property
    def current(self) -> Step:
        return self.steps[-1]


def timeline(message: Message) -> list[RecipientTimeline]:
    """One timeline per recipient, oldest step first (reads only the Delivery rows)."""
    from mailboxes.transport.outbound import SENDING

    scanned = message.scan_status not in (Message.ScanStatus.PENDING,)
    result = []
    for delivery in message.deliveries.order_by("pk"):
        line = RecipientTimeline(delivery.recipient, delivery.remote)
        line.steps.append(Step("submitted", _("Envoyé"), message.created_at))
        if message.scan_status == Message.ScanStatus.INFECTED:
            line.steps.append(Step("quarantined", _("En quarantaine (virus détecté)")))
            result.append(line)
            continue
        if scanned:
            line.steps.append(
                Step("scanned", _("Analysé (%(s)s)") % {"s": message.get_scan_status_display()})
            )
        status = delivery.status
        if status == Delivery.Status.DELIVERED or delivery.delivered_at:
            line.steps.append(Step("delivered", _("Distribué"), delivery.delivered_at))
        if status == Delivery.Status.DEFERRED:
            if delivery.last_error == SENDING:
                line.steps.append(Step("sending", _("Envoi en cours"), delivery.updated_at))
            else:
                line.steps.append(
                    Step(
                        "deferred",
                        _("Différé : nouvel essai le %(at)s")
                        % {"at": delivery.next_attempt_at.strftime("%d/%m/%Y %H:%M")},
                        delivery.updated_at,
                        delivery.last_error,
                    )
                )
        elif status in (Delivery.Status.BOUNCED, Delivery.Status.REFUSED):
            line.steps.append(
                Step(
                    status, delivery.get_status_display(), delivery.updated_at, delivery.last_error
                )
            )
        elif status == Delivery.Status.QUARANTINED:
            line.steps.append(Step("quarantined", delivery.get_status_display()))
        if delivery.read_at:
            line.steps.append(Step("read", _("Lu"), delivery.read_at))
        result.append(line)
    return result
