"""Monthly indicators: the figures, the admin page with its chart, the CSV export."""

from __future__ import annotations

import csv
import io
from typing import Any

import pytest
from django.test import Client
from django.utils import timezone

from charter import indicators, services
from mailboxes import services as mailbox_services
from mailboxes.models import HostedDomain, Mailbox
from tests import factories as f
from tests.personas import Person, send
from trust import submission

pytestmark = pytest.mark.django_db


@pytest.fixture
def activity(claire: Person, julien: Person) -> dict[str, Any]:
    (doctor, dbox), (nurse, nbox) = claire, julien
    f.mailbox()  # a box with no activity this month
    patient = f.patient(enrol=False)
    patients = HostedDomain.objects.create(
        name="patient.mssante.test", kind=HostedDomain.Kind.PATIENT
    )
    pbox = mailbox_services.create_mailbox(
        Mailbox.Kind.PATIENT, f"{patient.username}@patient.mssante.test", patients, owner=patient
    )
    send(dbox, [nbox.address])
    send(dbox, [nbox.address, pbox.address])
    reply = send(nbox, [dbox.address])
    submission.record_refusal("recipient_limit", mailbox=dbox, author=doctor)
    submission.record_refusal("trust_space", mailbox=dbox, author=doctor)
    submission.record_refusal("trust_space", mailbox=nbox, author=nurse)
    services.report_abuse(message=reply, mailbox=dbox, reporter=doctor, reason="Hors sujet")
    return {"dbox": dbox}


def test_the_current_month_counts_each_indicator(activity: dict[str, Any]) -> None:
    months = indicators.monthly(3)
    assert len(months) == 3
    now = months[-1]
    assert now.month == timezone.localdate().replace(day=1)
    assert now.sent == {"PER": 3}
    assert now.received == {"PER": 3, "PAT": 1}
    assert now.active_mailboxes == 3
    assert now.to_patients == 1
    assert now.refusals == {"recipient_limit": 1, "trust_space": 2}
    assert now.abuse_reports == 1
    assert months[0].sent_total == 0


def test_the_admin_page_shows_a_chart_and_a_table(
    activity: dict[str, Any], staff_client: Client
) -> None:
    index = staff_client.get("/admin/").content.decode()
    assert "/admin/charter/monthlyindicators/" in index
    page = staff_client.get("/admin/charter/monthlyindicators/")
    assert page.status_code == 200
    text = page.content.decode()
    assert "<svg" in text and 'role="img"' in text
    assert "Refus — règle trust_space" in text
    assert "Messages adressés à des patients" in text


def test_the_csv_export_has_one_line_per_month(
    activity: dict[str, Any], staff_client: Client
) -> None:
    response = staff_client.get("/admin/charter/monthlyindicators/?format=csv&mois=2")
    assert response["Content-Type"].startswith("text/csv")
    rows = list(csv.reader(io.StringIO(response.content.decode())))
    assert rows[0][0] == "mois" and "refus trust_space" in rows[0]
    assert len(rows) == 3
    last = dict(zip(rows[0], rows[2], strict=True))
    assert last["envoyés PER"] == "3" and last["messages aux patients"] == "1"
    assert last["refus trust_space"] == "2" and last["signalements"] == "1"


def test_the_page_is_for_staff_only(activity: dict[str, Any]) -> None:
    response = Client().get("/admin/charter/monthlyindicators/")
    assert response.status_code == 302
