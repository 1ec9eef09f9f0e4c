"""The "Logiciels et appareils" page: create (second factor again), see once, list, revoke."""

from __future__ import annotations

from typing import Any

import pytest
from django.test import Client
from django.urls import reverse

from accounts.models import User
from audit.models import AuditEvent
from clients import services
from clients.models import AppPassword
from tests import factories
from tests.personas import Person, login

pytestmark = pytest.mark.django_db
PAGE = reverse("clients:app_passwords")


def create(client: Client, user: User, **fields: Any) -> Any:
    data = {"label": "Logiciel du cabinet", "scope": "both", "mailbox": "all"}
    data.update(fields)
    data.setdefault("code", factories.code_for(user))
    return client.post(PAGE, data)


def test_a_professional_creates_a_password_sees_it_once_and_it_opens_a_client_session(
    claire: Person,
) -> None:
    client = login(claire.user)
    response = create(client, claire.user, mailbox=str(claire.box.pk), scope="smtp")
    assert response.status_code == 200
    assert "no-store" in response["Cache-Control"]
    secret = response.context["created"][1]
    assert secret in response.content.decode()
    stored = AppPassword.objects.get()
    assert stored.token_hash != secret and secret not in stored.token_hash
    assert (stored.mailbox, stored.scope) == (claire.box, "smtp")
    assert AuditEvent.objects.filter(action="app_password.created").count() == 1
    # Shown once: the list shows the label, never the secret again.
    page = client.get(PAGE).content.decode()
    assert "Logiciel du cabinet" in page and secret not in page
    found = services.authenticate(claire.box.address, secret, protocol="smtp", ip="192.0.2.7")
    assert found.user == claire.user
    page = client.get(PAGE).content.decode()
    assert "192.0.2.7" in page  # last use shown to its holder


def test_a_wrong_second_factor_creates_nothing(claire: Person) -> None:
    client = login(claire.user)
    response = create(client, claire.user, code="000000")
    assert response.status_code == 400
    assert "Ce code n" in response.content.decode()
    assert not AppPassword.objects.exists()


def test_a_box_the_user_cannot_open_is_not_a_choice(claire: Person, paul: Person) -> None:
    client = login(claire.user)
    response = create(client, claire.user, mailbox=str(paul.box.pk))
    assert response.status_code == 400
    assert not AppPassword.objects.exists()


@pytest.mark.parametrize(
    "fields",
    [
        {"label": ""},
        {"label": "x" * 101},
        {"scope": "root"},
        {"mailbox": "'; drop table"},
        {"label": "\x00\x01"},
    ],
)
def test_hostile_forms_get_a_french_400_and_create_nothing(claire: Person, fields: dict) -> None:
    client = login(claire.user)
    response = create(client, claire.user, **fields)
    assert response.status_code == 400
    assert not AppPassword.objects.exists()


def test_revoking_stops_the_password_at_once_and_only_its_holder_may(
    claire: Person, paul: Person
) -> None:
    password, secret = services.create_app_password(
        claire.user, label="Thunderbird", scope="both", mailbox=None
    )
    revoke = reverse("clients:revoke", args=[password.pk])
    assert login(paul.user).post(revoke).status_code == 404
    assert AppPassword.objects.get().revoked_at is None
    assert login(claire.user).post(revoke).status_code == 302
    assert AppPassword.objects.get().revoked_at is not None
    with pytest.raises(services.ClientAuthError):
        services.authenticate(claire.box.address, secret, protocol="imap", ip="127.0.0.1")


def test_writes_need_csrf_and_a_verified_professional(claire: Person, lucie: Person) -> None:
    strict = login(claire.user, enforce_csrf_checks=True)
    assert create(strict, claire.user).status_code == 403
    assert login(lucie.user).get(PAGE).status_code == 404
    assert Client().get(PAGE).status_code == 302  # to the login page
    assert not AppPassword.objects.exists()


def test_staff_see_passwords_without_their_secret_and_revoke_from_the_admin(
    claire: Person, staff_client: Client
) -> None:
    password, secret = services.create_app_password(
        claire.user, label="Thunderbird", scope="both", mailbox=None
    )
    listing = staff_client.get("/admin/clients/apppassword/")
    assert listing.status_code == 200 and "Thunderbird" in listing.content.decode()
    detail = staff_client.get(f"/admin/clients/apppassword/{password.pk}/change/").content.decode()
    assert secret not in detail and password.token_hash not in detail
    response = staff_client.post(
        "/admin/clients/apppassword/",
        {"action": "revoke", "_selected_action": [password.pk]},
    )
    assert response.status_code == 302
    assert AppPassword.objects.get().revoked_at is not None
    assert AuditEvent.objects.filter(action="app_password.revoked").exists()
