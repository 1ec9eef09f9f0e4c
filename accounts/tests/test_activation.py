"""Activation links: single use, 72 hours, all or nothing."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
import time_machine
from django.test import Client
from django.urls import reverse
from django.utils import timezone
from django_otp.oath import totp

from accounts import services
from accounts.views.activation import SESSION_SECRET
from tests import factories as f
from tests.personas import logged_in

pytestmark = pytest.mark.django_db
NEW_PASSWORD = "Ma-phrase-de-passe-2026"


def _activate(client: Client, path: str, *, code: str | None = None, password: str = NEW_PASSWORD):
    page = client.get(path)
    assert page.status_code == 200
    secret = next(iter(client.session[SESSION_SECRET].values()))
    return client.post(
        path,
        {
            "password1": password,
            "password2": password,
            "code": code or f"{totp(bytes.fromhex(secret)):06d}",
        },
    )


def test_an_activation_link_sets_the_password_and_enrols_a_device():
    nurse = f.professional(password=None, enrol=False)
    path = services.issue_activation_link(nurse, by=None)
    client = Client()
    response = _activate(client, path)
    assert response["Location"] == "/connexion/codes-de-secours/"
    nurse.refresh_from_db()
    assert nurse.check_password(NEW_PASSWORD)
    assert nurse.totpdevice_set.filter(confirmed=True).count() == 1
    assert nurse.backupcodedevice_set.get().codes.count() == 10


def test_an_activation_link_works_only_once():
    nurse = f.professional(password=None, enrol=False)
    path = services.issue_activation_link(nurse, by=None)
    _activate(Client(), path)
    again = Client().get(path)
    assert again.status_code == 410
    assert "déjà été utilisé" in again.content.decode()


def test_an_activation_link_expires_after_72_hours():
    nurse = f.professional(password=None, enrol=False)
    with time_machine.travel(timezone.now(), tick=False) as traveller:
        path = services.issue_activation_link(nurse, by=None)
        traveller.shift(timedelta(hours=73))
        response = Client().get(path)
    assert response.status_code == 410
    assert "expiré" in response.content.decode()


def test_a_wrong_code_at_activation_writes_nothing():
    nurse = f.professional(password=None, enrol=False)
    path = services.issue_activation_link(nurse, by=None)
    client = Client()
    response = _activate(client, path, code="000000")
    assert response.status_code == 200
    nurse.refresh_from_db()
    assert not nurse.has_usable_password()
    assert not nurse.totpdevice_set.exists()
    # The link is still usable after the mistake.
    assert _activate(client, path)["Location"] == "/connexion/codes-de-secours/"


def test_a_weak_password_is_refused_at_activation():
    nurse = f.professional(password=None, enrol=False)
    path = services.issue_activation_link(nurse, by=None)
    response = _activate(Client(), path, password="12345678")
    assert response.status_code == 200
    nurse.refresh_from_db()
    assert not nurse.has_usable_password()


def test_a_new_link_cancels_the_previous_one():
    nurse = f.professional(password=None, enrol=False)
    first = services.issue_activation_link(nurse, by=None)
    services.issue_activation_link(nurse, by=None)
    assert Client().get(first).status_code == 410


def test_an_unknown_token_is_refused():
    assert Client().get("/activation/pas-un-jeton/").status_code == 410


def shown_backup_codes(html: str) -> list[str]:
    """The codes listed on the backup-codes page, as the user reads them."""
    if 'id="backup-codes"' not in html:
        return []
    block = html.split('id="backup-codes"', 1)[1].split("</ul>", 1)[0]
    return re.findall(r"<li>\s*([a-z2-7]{8})\s*</li>", block)


def test_after_activation_the_holder_sees_ten_backup_codes_that_each_work_once():
    nurse = f.professional(password=None, enrol=False)
    path = services.issue_activation_link(nurse, by=None)
    client = Client()
    response = _activate(client, path)
    page = client.get(response["Location"])
    # The page itself, not a redirect to the login page (the session used to be dropped).
    assert page.status_code == 200, page.get("Location")
    codes = shown_backup_codes(page.content.decode())
    assert len(codes) == 10 and len(set(codes)) == 10
    assert client.get(reverse("webmail_home")).status_code == 200
    for code in codes[:2]:
        other = Client()
        other.post("/connexion/", {"identifier": nurse.username, "password": NEW_PASSWORD})
        done = other.post("/connexion/code/", {"code": code})
        assert done["Location"] == reverse("webmail_home")
    again = Client()
    again.post("/connexion/", {"identifier": nurse.username, "password": NEW_PASSWORD})
    refused = again.post("/connexion/code/", {"code": codes[0]})
    assert "Code incorrect" in refused.content.decode()


def test_a_password_change_ends_the_links_issued_before():
    doctor = f.professional()
    path = services.issue_activation_link(doctor, by=None)
    client = logged_in(doctor)
    client.post(
        "/compte/mot-de-passe/",
        {
            "old_password": f.PASSWORD,
            "new_password1": "Nouveau-secret-2026!",
            "new_password2": "Nouveau-secret-2026!",
        },
    )
    assert Client().get(path).status_code == 410
