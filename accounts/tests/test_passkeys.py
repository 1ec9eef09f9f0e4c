"""Passkeys through the pages: enrol after the second factor, sign in with one alone or
after the password, rename, revoke; and the answers an attacker would post."""

from __future__ import annotations

import json
from typing import Any

import pytest
from django.conf import settings
from django.core import mail
from django.test import Client

from accounts.models import AccountSession, PasskeyDevice, User
from accounts.tests import soft_authenticator as soft
from audit.models import AuditEvent
from tests import factories as f
from tests.personas import login

pytestmark = pytest.mark.django_db

ORIGIN = settings.SITE_URL


def _json(client: Client, url: str, body: Any = None) -> Any:
    return client.post(url, json.dumps(body or {}), content_type="application/json")


def enrol(client: Client, name: str = "Téléphone") -> tuple[soft.Credential, Any]:
    options = _json(client, "/compte/cles-d-acces/options/").json()
    credential, answer = soft.register(options, ORIGIN)
    response = _json(client, "/compte/cles-d-acces/", {"name": name, "credential": answer})
    return credential, response


def sign_in(client: Client, credential: soft.Credential, *, etape: str = "", **kwargs: Any) -> Any:
    query = f"?etape={etape}" if etape else ""
    options = _json(client, f"/connexion/cle-d-acces/options/{query}").json()
    answer = soft.sign(credential, options, kwargs.pop("origin", ORIGIN), **kwargs)
    return _json(client, f"/connexion/cle-d-acces/{query}", {"credential": answer})


@pytest.fixture
def holder() -> User:
    return f.professional(email="holder@example.test")


@pytest.fixture
def enrolled(holder: User) -> soft.Credential:
    credential, response = enrol(login(holder))
    assert response.status_code == 200, response.content
    return credential


def test_a_holder_past_the_second_factor_enrols_a_passkey(
    holder: User, django_capture_on_commit_callbacks: Any
) -> None:
    mail.outbox.clear()
    client = login(holder)
    with django_capture_on_commit_callbacks(execute=True):
        _credential, response = enrol(client, "Ordinateur du cabinet")
    assert response.status_code == 200
    assert response.json()["redirect"].startswith("/compte/")
    device = PasskeyDevice.objects.get(user=holder)
    assert device.name == "Ordinateur du cabinet"
    assert AuditEvent.objects.filter(action="account.passkey_added", object_id=str(holder.pk))
    assert [m.to for m in mail.outbox] == [["holder@example.test"]]
    assert "clé d'accès" in mail.outbox[0].subject
    assert "Ordinateur du cabinet" not in mail.outbox[0].body  # a notice, no content
    page = client.get("/compte/").content.decode()
    assert "Ordinateur du cabinet" in page


def test_enrolment_needs_the_second_factor(holder: User) -> None:
    client = Client()
    client.force_login(holder, backend="accounts.backends.IdentifierBackend")  # password only
    response = _json(client, "/compte/cles-d-acces/options/")
    assert response.status_code == 302 and "/connexion/" in response["Location"]
    assert not PasskeyDevice.objects.exists()


def test_a_passkey_alone_signs_in_and_marks_the_session_strong(
    holder: User, enrolled: soft.Credential
) -> None:
    client = Client()
    response = sign_in(client, enrolled)
    assert response.status_code == 200, response.content
    assert response.json()["redirect"] == "/messagerie/"
    assert client.get("/compte/").status_code == 200
    assert client.session["strong_factor"] == "passkey"
    session = AccountSession.objects.get(user=holder, method="passkey")
    assert session.ended_at is None
    event = AuditEvent.objects.filter(action="login.succeeded", object_id=str(holder.pk)).last()
    assert event is not None and event.data.get("method") == "passkey"


def test_a_passkey_is_the_second_step_after_the_password(
    holder: User, enrolled: soft.Credential
) -> None:
    client = Client()
    client.post("/connexion/", {"identifier": holder.username, "password": f.PASSWORD})
    page = client.get("/connexion/code/").content.decode()
    assert "Utiliser ma clé d'accès" in page
    response = sign_in(client, enrolled, etape="code")
    assert response.status_code == 200, response.content
    assert client.get("/compte/").status_code == 200
    assert AccountSession.objects.filter(user=holder, method="password_passkey").exists()


def test_a_replayed_assertion_is_refused(holder: User, enrolled: soft.Credential) -> None:
    client = Client()
    options = _json(client, "/connexion/cle-d-acces/options/").json()
    answer = soft.sign(enrolled, options, ORIGIN)
    assert _json(client, "/connexion/cle-d-acces/", {"credential": answer}).status_code == 200
    other = Client()
    # The same answer again (its challenge is spent), then with a fresh challenge but
    # the counter the authenticator already used.
    assert _json(other, "/connexion/cle-d-acces/", {"credential": answer}).status_code == 400
    replay = sign_in(other, enrolled, step=0)
    assert replay.status_code == 400
    assert "n'a pas été acceptée" in replay.json()["error"]
    assert "_auth_user_id" not in other.session


def test_a_counter_going_backwards_is_refused(holder: User, enrolled: soft.Credential) -> None:
    assert sign_in(Client(), enrolled, step=5).status_code == 200
    enrolled.counter -= 3  # a cloned authenticator, behind the real one
    assert sign_in(Client(), enrolled).status_code == 400


def test_another_users_credential_is_refused_at_the_second_step(
    holder: User, enrolled: soft.Credential
) -> None:
    someone = f.professional()
    client = Client()
    client.post("/connexion/", {"identifier": someone.username, "password": f.PASSWORD})
    # Options for someone (who has no passkey): refused; the holder's passkey: refused.
    assert _json(client, "/connexion/cle-d-acces/options/?etape=code").status_code == 400
    options = _json(client, "/connexion/cle-d-acces/options/").json()
    answer = soft.sign(enrolled, options, ORIGIN)
    # A discoverable answer posted as someone's second step.
    client.post("/connexion/", {"identifier": someone.username, "password": f.PASSWORD})
    _json(client, "/connexion/cle-d-acces/options/")
    response = _json(client, "/connexion/cle-d-acces/?etape=code", {"credential": answer})
    assert response.status_code == 400
    assert "_auth_user_id" not in client.session


def test_a_user_handle_of_another_account_is_refused(
    holder: User, enrolled: soft.Credential
) -> None:
    enrolled.user_handle = b"\x01" * 32
    assert sign_in(Client(), enrolled).status_code == 400


def test_a_bad_origin_or_challenge_is_refused(holder: User, enrolled: soft.Credential) -> None:
    assert sign_in(Client(), enrolled, origin="https://phishing.example").status_code == 400
    client = Client()
    options = _json(client, "/connexion/cle-d-acces/options/").json()
    options["challenge"] = "AAAAAAAAAAAAAAAAAAAAAA"
    answer = soft.sign(enrolled, options, ORIGIN)
    assert _json(client, "/connexion/cle-d-acces/", {"credential": answer}).status_code == 400
    assert AuditEvent.objects.filter(action="login.failed", data__step="passkey").count() == 2


def test_user_verification_is_required(holder: User, enrolled: soft.Credential) -> None:
    assert sign_in(Client(), enrolled, flags=soft.UP).status_code == 400
    client = login(f.professional())
    options = _json(client, "/compte/cles-d-acces/options/").json()
    _c, answer = soft.register(options, ORIGIN, flags=soft.UP | soft.AT)
    response = _json(client, "/compte/cles-d-acces/", {"name": "x", "credential": answer})
    assert response.status_code == 400
    assert not PasskeyDevice.objects.filter(name="x").exists()
    # The refusal itself stays in the journal.
    assert AuditEvent.objects.filter(action="account.passkey_refused", data__step="enrol").exists()


@pytest.mark.parametrize(
    "body",
    [
        b"not json",
        b"[]",
        b'{"credential": "x"}',
        b'{"credential": {"id": 5}}',
        b'{"credential": {"id": "AAAA", "response": {"userHandle": "***"}}}',
        b'{"credential": {"id": "AAAA", "response": "x"}}',
        b'{"credential": {"id": "' + b"A" * 70000 + b'"}}',
    ],
)
def test_malformed_answers_are_refused_cleanly(
    holder: User, enrolled: soft.Credential, body: bytes
) -> None:
    client = Client()
    _json(client, "/connexion/cle-d-acces/options/")
    response = client.post("/connexion/cle-d-acces/", body, content_type="application/json")
    assert response.status_code == 400
    assert response.json()["error"]
    signed_in = login(holder)
    _json(signed_in, "/compte/cles-d-acces/options/")
    response = signed_in.post("/compte/cles-d-acces/", body, content_type="application/json")
    assert response.status_code == 400


def test_without_options_first_the_answer_is_refused(
    holder: User, enrolled: soft.Credential
) -> None:
    options = _json(Client(), "/connexion/cle-d-acces/options/").json()
    answer = soft.sign(enrolled, options, ORIGIN)
    response = _json(Client(), "/connexion/cle-d-acces/", {"credential": answer})
    assert response.status_code == 400
    assert "expiré" in response.json()["error"]


def test_a_revoked_passkey_no_longer_signs_in(
    holder: User, enrolled: soft.Credential, django_capture_on_commit_callbacks: Any
) -> None:
    client = login(holder)
    device = PasskeyDevice.objects.get(user=holder)
    mail.outbox.clear()
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(f"/compte/cles-d-acces/{device.pk}/supprimer/")
    assert response.status_code == 302
    assert not PasskeyDevice.objects.filter(pk=device.pk).exists()
    assert AuditEvent.objects.filter(action="account.passkey_removed").exists()
    assert len(mail.outbox) == 1
    assert sign_in(Client(), enrolled).status_code == 400


def test_a_passkey_is_renamed_and_another_users_is_404(
    holder: User, enrolled: soft.Credential
) -> None:
    device = PasskeyDevice.objects.get(user=holder)
    client = login(holder)
    client.post(f"/compte/cles-d-acces/{device.pk}/renommer/", {"name": "  Clé USB  "})
    device.refresh_from_db()
    assert device.name == "Clé USB"
    client.post(f"/compte/cles-d-acces/{device.pk}/renommer/", {"name": "x" * 65})
    device.refresh_from_db()
    assert device.name == "Clé USB"
    stranger = login(f.professional())
    assert (
        stranger.post(f"/compte/cles-d-acces/{device.pk}/renommer/", {"name": "a"}).status_code
        == 404
    )
    assert stranger.post(f"/compte/cles-d-acces/{device.pk}/supprimer/").status_code == 404
    assert PasskeyDevice.objects.filter(pk=device.pk, name="Clé USB").exists()


def test_a_passkey_is_not_a_typed_code(holder: User, enrolled: soft.Credential) -> None:
    client = Client()
    client.post("/connexion/", {"identifier": holder.username, "password": f.PASSWORD})
    response = client.post("/connexion/code/", {"code": "000000"})
    assert "_auth_user_id" not in client.session
    assert response.status_code == 200


def test_a_staff_reset_removes_passkeys(holder: User, enrolled: soft.Credential) -> None:
    from accounts import services

    services.reset_second_factor(holder, reason="perte", by=f.staff())
    assert not PasskeyDevice.objects.filter(user=holder).exists()


def test_a_refused_answer_shows_on_the_holders_account_page(
    holder: User, enrolled: soft.Credential
) -> None:
    assert sign_in(Client(), enrolled, origin="https://phishing.example").status_code == 400
    page = login(holder).get("/compte/").content.decode()
    recent = page[page.index("Connexions récentes") :]
    assert "Échec de connexion" in recent


def test_a_suspended_account_cannot_sign_in_with_its_passkey(
    holder: User, enrolled: soft.Credential
) -> None:
    from accounts import services

    services.suspend_account(holder, reason="enquête", by=f.staff())
    client = Client()
    assert sign_in(client, enrolled).status_code == 400
    assert "_auth_user_id" not in client.session
