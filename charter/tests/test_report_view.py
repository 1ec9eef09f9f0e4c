"""The "Signaler un courrier indésirable" button of the webmail's reading view."""

from __future__ import annotations

from typing import Any

import pytest
from django.urls import reverse

from charter.models import AbuseReport
from mailboxes.models import Entry
from tests import factories as f
from tests.personas import login, send

pytestmark = pytest.mark.django_db


@pytest.fixture
def setup() -> dict[str, Any]:
    spammer = f.professional(first_name="Paul", last_name="Pourriel")
    victim = f.professional(first_name="Inès", last_name="Destinataire")
    sender_box, victim_box = f.mailbox(spammer), f.mailbox(victim)
    message = send(sender_box, [victim_box.address])
    entry = Entry.objects.get(mailbox=victim_box, message=message)
    sent = Entry.objects.get(mailbox=sender_box, message=message)
    return {"victim": victim, "entry": entry, "sent": sent, "spammer": spammer}


def test_a_recipient_reports_a_received_message(setup: dict[str, Any]) -> None:
    client = login(setup["victim"])
    url = reverse("charter:report", args=[setup["entry"].pk])
    response = client.post(url, {"reason": "Publicité pour des compléments"}, follow=True)
    assert response.status_code == 200
    assert "votre signalement a été transmis" in response.content.decode()
    report = AbuseReport.objects.get()
    assert report.sender == setup["spammer"] and report.reporter == setup["victim"]
    assert report.reason == "Publicité pour des compléments"


def test_a_report_without_a_reason_is_refused_with_a_message(setup: dict[str, Any]) -> None:
    client = login(setup["victim"])
    url = reverse("charter:report", args=[setup["entry"].pk])
    response = client.post(url, {"reason": ""}, follow=True)
    assert "pourquoi ce message est indésirable" in response.content.decode()
    assert not AbuseReport.objects.exists()


def test_nobody_reports_through_someone_elses_entry(setup: dict[str, Any]) -> None:
    outsider = f.professional(first_name="Oscar", last_name="Dehors")
    f.mailbox(outsider)
    url = reverse("charter:report", args=[setup["entry"].pk])
    assert login(outsider).post(url, {"reason": "x"}).status_code == 404
    assert not AbuseReport.objects.exists()


def test_the_button_is_on_received_messages_only(setup: dict[str, Any]) -> None:
    client = login(setup["victim"])
    page = client.get(reverse("webmail_read", args=[setup["entry"].pk])).content.decode()
    assert "Signaler un courrier indésirable" in page
    assert reverse("charter:report", args=[setup["entry"].pk]) in page
    # The sender's own copy has no button.
    own = login(setup["spammer"]).get(reverse("webmail_read", args=[setup["sent"].pk]))
    assert "Signaler un courrier indésirable" not in own.content.decode()
