"""Professionals and staff change a personal address the same way: fresh code, then link."""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Any
from urllib.parse import urlparse

import pytest
import time_machine
from django.core import mail
from django.test import Client
from django.utils import timezone

from audit.models import AuditEvent
from tests import factories as f
from tests.personas import logged_in

pytestmark = pytest.mark.django_db
URL = "/compte/adresse-e-mail/"


def link_in(body: str) -> str:
    found = re.search(r"https?://\S+/compte/adresse-e-mail/confirmer/\S+/", body)
    assert found, body
    return urlparse(found.group(0)).path


def test_a_professional_changes_the_address_with_a_fresh_code_and_the_link(
    django_capture_on_commit_callbacks: Any,
):
    doctor = f.professional()
    doctor.email = "camille@example.org"
    doctor.save()
    client = logged_in(doctor)
    assert client.get(URL).status_code == 200
    mail.outbox.clear()
    without = client.post(
        URL, {"email_action": "change", "new_email": "c.l@example.net", "code": ""}
    )
    assert without.status_code == 400 and mail.outbox == []
    # The code used at login is spent: the next one of the application.
    with (
        time_machine.travel(timezone.now() + timedelta(seconds=31), tick=False),
        django_capture_on_commit_callbacks(execute=True),
    ):
        client.post(
            URL,
            {"email_action": "change", "new_email": "c.l@example.net", "code": f.code_for(doctor)},
        )
    doctor.refresh_from_db()
    assert doctor.email == "camille@example.org"
    to_new = [m for m in mail.outbox if m.to == ["c.l@example.net"]]
    assert len(to_new) == 1
    assert [m.to for m in mail.outbox if m is not to_new[0]] == [["camille@example.org"]]
    with django_capture_on_commit_callbacks(execute=True):
        Client().post(link_in(to_new[0].body))
    doctor.refresh_from_db()
    assert doctor.email == "c.l@example.net"
    assert AuditEvent.objects.filter(action="account.email_changed", actor=doctor).exists()


def test_staff_change_an_address_only_through_the_confirmation_link(
    django_capture_on_commit_callbacks: Any,
):
    boss = f.staff()
    patient = f.patient()
    client = logged_in(boss)
    url = "/admin/accounts/user/"
    action = {"action": "change_email", "_selected_action": [patient.pk]}
    mail.outbox.clear()
    with django_capture_on_commit_callbacks(execute=True):
        client.post(url, {**action, "apply": "1", "new_email": "equipe@operateur.example"})
    patient.refresh_from_db()
    assert patient.email == "lucie@example.org"
    # The link goes to the new address, never to the staff member's screen.
    pages = client.get(url).content.decode()
    assert "/confirmer/" not in pages
    [to_new] = [m for m in mail.outbox if m.to == ["equipe@operateur.example"]]
    assert [m.to for m in mail.outbox if m is not to_new] == [["lucie@example.org"]]
    event = AuditEvent.objects.get(action="account.email_change_requested")
    assert event.actor == boss
