"""Monthly activity indicators of the platform, for staff and the regulator's reporting.

Figures per calendar month (in the platform's time zone):

- messages sent, by the type of the sending mailbox (platform notices excluded);
- messages received, by the type of the receiving mailbox (delivered deliveries);
- active mailboxes: those that sent or received at least one message that month;
- messages to patients: messages with at least one patient box among their recipients;
- refusals by rule (from the audit journal, so limited to AUDIT_RETENTION_DAYS);
- quarantined messages (virus detected, or impossible to analyse);
- abuse reports.
"""

from __future__ import annotations

import csv
import io
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta

from django.db.models import Count
from django.db.models.functions import TruncMonth
from django.utils import timezone
from django.utils.translation import gettext as _

from audit.models import AuditEvent
from charter.models import AbuseReport
from mailboxes.models import Delivery, Mailbox, Message, Quarantine

KINDS = [kind.value for kind in Mailbox.Kind]


@dataclass
class Month:
    month: date
    sent: dict[str, int] = field(default_factory=dict)
    received: dict[str, int] = field(default_factory=dict)
    active_mailboxes: int = 0
    to_patients: int = 0
    refusals: dict[str, int] = field(default_factory=dict)
    infected: int = 0
    unscannable: int = 0
    abuse_reports: int = 0

    @property
    def sent_total(self) -> int:
        return sum(self.sent.values())

    @property
    def received_total(self) -> int:
        return sum(self.received.values())

    @property
    def refusals_total(self) -> int:
        return sum(self.refusals.values())

    def sent_by_kind(self) -> list[int]:
        return [self.sent.get(kind, 0) for kind in KINDS]

    def received_by_kind(self) -> list[int]:
        return [self.received.get(kind, 0) for kind in KINDS]


def _month_start(day: date) -> date:
    return day.replace(day=1)


def _months_back(count: int, today: date) -> list[date]:
    months = [_month_start(today)]
    while len(months) < count:
        months.append(_month_start(months[-1] - timedelta(days=1)))
    return list(reversed(months))


def _key(value: datetime | date | None) -> date | None:
    if value is None:
        return None
    return value.date() if isinstance(value, datetime) else value


def monthly(count: int = 12, *, today: date | None = None) -> list[Month]:
    """The last ``count`` months, oldest first, the current (incomplete) month last."""
    today = today or timezone.localdate()
    months = _months_back(count, today)
    rows = {m: Month(m) for m in months}
    tz = timezone.get_current_timezone()
    start = datetime(months[0].year, months[0].month, 1, tzinfo=tz)

    sent = (
        Message.objects.filter(created_at__gte=start, sender_mailbox__isnull=False)
        .exclude(origin=Message.Origin.SYSTEM)
        .annotate(month=TruncMonth("created_at"))
        .values("month", "sender_mailbox__kind")
        .annotate(n=Count("id"))
    )
    for row in sent:
        month = rows.get(_key(row["month"]))  # type: ignore[arg-type]
        if month is not None:
            month.sent[row["sender_mailbox__kind"]] = row["n"]

    delivered = Delivery.objects.filter(
        status=Delivery.Status.DELIVERED, delivered_at__gte=start, mailbox__isnull=False
    ).annotate(month=TruncMonth("delivered_at"))
    for row in delivered.values("month", "mailbox__kind").annotate(n=Count("id")):
        month = rows.get(_key(row["month"]))  # type: ignore[arg-type]
        if month is not None:
            month.received[row["mailbox__kind"]] = row["n"]

    active: dict[date, set[int]] = defaultdict(set)
    for month_value, box in (
        Message.objects.filter(created_at__gte=start, sender_mailbox__isnull=False)
        .exclude(origin=Message.Origin.SYSTEM)
        .annotate(month=TruncMonth("created_at"))
        .values_list("month", "sender_mailbox_id")
        .distinct()
    ):
        active[_key(month_value)].add(box)  # type: ignore[index]
    for month_value, box in delivered.values_list("month", "mailbox_id").distinct():
        active[_key(month_value)].add(box)  # type: ignore[index]
    for key, boxes in active.items():
        if key in rows:
            rows[key].active_mailboxes = len(boxes)

    to_patients = (
        Delivery.objects.filter(message__created_at__gte=start, mailbox__kind=Mailbox.Kind.PATIENT)
        .annotate(month=TruncMonth("message__created_at"))
        .values("month")
        .annotate(n=Count("message", distinct=True))
    )
    for row in to_patients:
        month = rows.get(_key(row["month"]))  # type: ignore[arg-type]
        if month is not None:
            month.to_patients = row["n"]

    refusals: dict[date, Counter[str]] = defaultdict(Counter)
    for at, data in AuditEvent.objects.filter(action="message.refused", at__gte=start).values_list(
        "at", "data"
    ):
        key = _month_start(timezone.localtime(at).date())
        refusals[key][str((data or {}).get("rule") or "policy")] += 1
    for key, counter in refusals.items():
        if key in rows:
            rows[key].refusals = dict(counter)

    quarantined = (
        Quarantine.objects.filter(quarantined_at__gte=start)
        .annotate(month=TruncMonth("quarantined_at"))
        .values("month", "verdict")
        .annotate(n=Count("id"))
    )
    for row in quarantined:
        month = rows.get(_key(row["month"]))  # type: ignore[arg-type]
        if month is None:
            continue
        if row["verdict"] == Quarantine.Verdict.INFECTED:
            month.infected = row["n"]
        else:
            month.unscannable = row["n"]

    reports = (
        AbuseReport.objects.filter(created_at__gte=start)
        .annotate(month=TruncMonth("created_at"))
        .values("month")
        .annotate(n=Count("id"))
    )
    for row in reports:
        month = rows.get(_key(row["month"]))  # type: ignore[arg-type]
        if month is not None:
            month.abuse_reports = row["n"]
    return [rows[m] for m in months]


def refusal_rules(months: list[Month]) -> list[str]:
    return sorted({rule for month in months for rule in month.refusals})


def to_csv(months: list[Month]) -> str:
    """The figures as CSV (one line per month), headers in French."""
    rules = refusal_rules(months)
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(
        [
            _("mois"),
            *[_("envoyés %(type)s") % {"type": kind} for kind in KINDS],
            *[_("reçus %(type)s") % {"type": kind} for kind in KINDS],
            _("boîtes actives"),
            _("messages aux patients"),
            *[_("refus %(rule)s") % {"rule": rule} for rule in rules],
            _("infectés"),
            _("non analysables"),
            _("signalements"),
        ]
    )
    for month in months:
        writer.writerow(
            [
                month.month.strftime("%Y-%m"),
                *month.sent_by_kind(),
                *month.received_by_kind(),
                month.active_mailboxes,
                month.to_patients,
                *[month.refusals.get(rule, 0) for rule in rules],
                month.infected,
                month.unscannable,
                month.abuse_reports,
            ]
        )
    return out.getvalue()


@dataclass(frozen=True)
class Bar:
    label: str
    sent: int
    received: int
    x: int
    sent_y: int
    sent_height: int
    received_y: int
    received_height: int


CHART_HEIGHT = 160
BAR_WIDTH = 14
SLOT = 44


def chart(months: list[Month]) -> list[Bar]:
    """Bars (sent and received per month) laid out for a server-rendered SVG."""
    top = max([m.sent_total for m in months] + [m.received_total for m in months] + [1])
    bars = []
    for i, month in enumerate(months):
        sent_h = round(month.sent_total * CHART_HEIGHT / top)
        received_h = round(month.received_total * CHART_HEIGHT / top)
        bars.append(
            Bar(
                label=month.month.strftime("%m/%y"),
                sent=month.sent_total,
                received=month.received_total,
                x=i * SLOT + 6,
                sent_y=CHART_HEIGHT - sent_h,
                sent_height=sent_h,
                received_y=CHART_HEIGHT - received_h,
                received_height=received_h,
            )
        )
    return bars


def table(months: list[Month]) -> list[tuple[str, list[int]]]:
    """One (label, value per month) line per indicator, as the admin page shows them."""
    lines: list[tuple[str, list[int]]] = []
    for i, kind in enumerate(Mailbox.Kind):
        lines.append(
            (_("Envoyés — %(type)s") % {"type": kind.label}, [m.sent_by_kind()[i] for m in months])
        )
    for i, kind in enumerate(Mailbox.Kind):
        lines.append(
            (
                _("Reçus — %(type)s") % {"type": kind.label},
                [m.received_by_kind()[i] for m in months],
            )
        )
    lines.append(
        (
            _("Boîtes actives (au moins un message envoyé ou reçu)"),
            [m.active_mailboxes for m in months],
        )
    )
    lines.append((_("Messages adressés à des patients"), [m.to_patients for m in months]))
    lines.append((_("Refus (toutes règles)"), [m.refusals_total for m in months]))
    for rule in refusal_rules(months):
        lines.append(
            (
                _("Refus — règle %(rule)s") % {"rule": rule},
                [m.refusals.get(rule, 0) for m in months],
            )
        )
    lines.append((_("Messages infectés (quarantaine)"), [m.infected for m in months]))
    lines.append(
        (_("Messages impossibles à analyser (quarantaine)"), [m.unscannable for m in months])
    )
    lines.append((_("Signalements de courrier indésirable"), [m.abuse_reports for m in months]))
    return lines
