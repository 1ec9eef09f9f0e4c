"""A patient's personal address (where login codes go) changes only by fresh code and link."""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Any
from urllib.parse import urlparse

import time_machine
from django.core import mail
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from accounts import services as account_services
from patients.tests.conftest import Space
from tests import factories
from tests.personas import login

OLD = "lucie@example.org"
NEW = "lucie.nouvelle@example.org"
URL = reverse("patients:preferences")


def wrong(code: str) -> str:
    return "000000" if code != "000000" else "111111"


def ask(client: Client, code: str, new: str = NEW) -> Any:
    return client.post(URL, {"email_action": "change", "new_email": new, "code": code})


def link_in(message: Any) -> str:
    found = re.search(r"https?://\S+/compte/adresse-e-mail/confirmer/\S+/", message.body)
    assert found, message.body
    return urlparse(found.group(0)).path


def sent_to(address: str) -> list[Any]:
    return [m for m in mail.outbox if m.to == [address]]


def test_the_notifications_form_does_not_change_the_address(space: Space) -> None:
    client = login(space.patient)
    client.post(URL, {"email": "attaquant@example.net", "frequency": "daily"})
    space.patient.refresh_from_db()
    assert space.patient.email == OLD


def test_the_address_changes_only_with_a_fresh_code_and_the_link_sent_to_it(
    space: Space, django_capture_on_commit_callbacks: Any
) -> None:
    patient = space.patient
    client = login(patient)
    mail.outbox.clear()
    assert ask(client, "").status_code == 400
    refused = ask(client, wrong(factories.code_for(patient)))
    assert refused.status_code == 400 and "Code incorrect" in refused.content.decode()
    patient.refresh_from_db()
    assert patient.email == OLD and mail.outbox == []

    with django_capture_on_commit_callbacks(execute=True):
        response = ask(client, factories.code_for(patient))
    assert response.status_code == 302
    patient.refresh_from_db()
    assert patient.email == OLD  # nothing changes until the link is followed
    assert "Un lien de confirmation a été envoyé" in client.get(URL).content.decode()
    [to_new] = sent_to(NEW)
    [to_old] = sent_to(OLD)
    path = link_in(to_new)
    # The old address is told, with no link, no message content, no new address.
    assert "changement" in to_old.body and "/confirmer/" not in to_old.body
    assert NEW not in to_old.body and "Résultats" not in to_old.body

    # A mail scanner opening the link changes nothing; the button does, once.
    anonymous = Client()
    assert anonymous.get(path).status_code == 200
    patient.refresh_from_db()
    assert patient.email == OLD
    with django_capture_on_commit_callbacks(execute=True):
        done = anonymous.post(path)
    assert done.status_code == 200 and "Adresse confirmée" in done.content.decode()
    patient.refresh_from_db()
    assert patient.email == NEW
    assert len(sent_to(OLD)) == 2 and "remplacée" in sent_to(OLD)[1].body
    assert anonymous.post(path).status_code == 410
    assert anonymous.get(path).status_code == 410


def test_the_link_expires(space: Space, django_capture_on_commit_callbacks: Any) -> None:
    patient = space.patient
    client = login(patient)
    mail.outbox.clear()
    with time_machine.travel(timezone.now(), tick=False) as traveller:
        with django_capture_on_commit_callbacks(execute=True):
            ask(client, factories.code_for(patient))
        path = link_in(sent_to(NEW)[0])
        traveller.shift(timedelta(hours=25))
        assert Client().post(path).status_code == 410
    patient.refresh_from_db()
    assert patient.email == OLD


def test_a_newer_request_cancels_the_older_link(
    space: Space, django_capture_on_commit_callbacks: Any
) -> None:
    patient = space.patient
    client = login(patient)
    mail.outbox.clear()
    with time_machine.travel(timezone.now(), tick=False) as traveller:
        with django_capture_on_commit_callbacks(execute=True):
            ask(client, factories.code_for(patient))
        traveller.shift(timedelta(seconds=31))  # the next code of the application
        with django_capture_on_commit_callbacks(execute=True):
            ask(client, factories.code_for(patient), new="autre@example.org")
        first = link_in(sent_to(NEW)[0])
        assert Client().post(first).status_code == 410
    patient.refresh_from_db()
    assert patient.email == OLD


def test_login_codes_go_to_the_new_address_only_once_it_is_confirmed(
    space: Space, django_capture_on_commit_callbacks: Any
) -> None:
    patient = factories.patient(enrol=False)
    account_services.use_email_codes(patient)
    client = Client()
    mail.outbox.clear()
    client.post("/connexion/", {"identifier": patient.username, "password": factories.PASSWORD})
    client.get("/connexion/code/")
    code = re.search(r"\b(\d{6})\b", sent_to(OLD)[-1].body).group(1)
    client.post("/connexion/code/", {"code": code})
    assert client.get(reverse("patient_home")).status_code == 200

    # The patient asks for a code at the current address to prove it is them.
    page = client.get(URL).content.decode()
    assert "M'envoyer un code" in page
    with time_machine.travel(timezone.now() + timedelta(seconds=40), tick=False):
        client.post(URL, {"email_action": "send_code"})
    fresh = re.search(r"\b(\d{6})\b", sent_to(OLD)[-1].body).group(1)
    with django_capture_on_commit_callbacks(execute=True):
        assert ask(client, fresh).status_code == 302
    path = link_in(sent_to(NEW)[0])

    def login_code_goes_to() -> list[str]:
        mail.outbox.clear()
        other = Client()
        other.post("/connexion/", {"identifier": patient.username, "password": factories.PASSWORD})
        other.get("/connexion/code/")
        return [m.to[0] for m in mail.outbox]

    with time_machine.travel(timezone.now() + timedelta(minutes=2), tick=False):
        assert login_code_goes_to() == [OLD]
    with django_capture_on_commit_callbacks(execute=True):
        Client().post(path)
    with time_machine.travel(timezone.now() + timedelta(minutes=4), tick=False):
        assert login_code_goes_to() == [NEW]


def test_guessing_the_code_of_this_form_locks_like_the_login(space: Space) -> None:
    patient = space.patient
    client = login(patient)
    for _ in range(5):
        ask(client, wrong(factories.code_for(patient)))
    locked = ask(client, factories.code_for(patient))
    assert "bloqué" in locked.content.decode()
    patient.refresh_from_db()
    assert patient.email == OLD
