"""The timeline of a sent message, per recipient: submitted → scanned → delivered → read."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from django.utils import timezone
from django.utils.translation import gettext as _

from mailboxes.models import Delivery, Message
from mailboxes.transport.outbound import SENDING


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


def read_visible(delivery: Delivery) -> bool:
    """Whether the sender may know this recipient opened the message.

    A reader who answers receipts "sur demande" and has not sent one (still deciding,
    or declined) is not reported as having read it.
    """
    return delivery.read_at is not None and delivery.receipt not in (
        Delivery.Receipt.ASKED,
        Delivery.Receipt.DECLINED,
    )


def _local(at: datetime) -> str:
    return _("le %(day)s à %(time)s") % {
        "day": timezone.localtime(at).strftime("%d/%m/%Y"),
        "time": timezone.localtime(at).strftime("%H:%M"),
    }


def timeline(message: Message) -> list[RecipientTimeline]:
    """One timeline per recipient, oldest step first (reads only the Delivery rows)."""
    scanned = message.scan_status not in (Message.ScanStatus.PENDING,)
    result = []
    for delivery in message.deliveries.order_by("pk"):
        line = RecipientTimeline(delivery.recipient, delivery.remote)
        line.steps.append(Step("submitted", _("Déposé"), message.created_at))
        if message.scan_status == Message.ScanStatus.INFECTED:
            line.steps.append(Step("quarantined", _("En quarantaine (virus détecté)")))
            result.append(line)
            continue
        if scanned:
            line.steps.append(
                Step("scanned", _("Analysé"), None, message.get_scan_status_display())
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
                        _("Différé : %(reason)s, prochain essai %(at)s")
                        % {
                            "reason": delivery.last_error or _("destinataire injoignable"),
                            "at": _local(delivery.next_attempt_at),
                        },
                        delivery.updated_at,
                        delivery.last_error,
                    )
                )
        elif status in (Delivery.Status.BOUNCED, Delivery.Status.REFUSED):
            line.steps.append(
                Step(
                    status,
                    _("Non distribué : %(reason)s")
                    % {"reason": delivery.last_error or delivery.get_status_display()},
                    delivery.updated_at,
                    delivery.last_error,
                )
            )
        elif status == Delivery.Status.QUARANTINED:
            line.steps.append(Step("quarantined", delivery.get_status_display()))
        if read_visible(delivery):
            line.steps.append(Step("read", _("Lu"), delivery.read_at))
        result.append(line)
    return result
