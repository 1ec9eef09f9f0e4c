"""The account page: sign-in methods, backup codes, sessions (listed, ended one by one or all),
recent sign-ins; and the staff's phishing-resistant factor before the admin."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest
from django.core import mail
from django.test import Client

from accounts import psc
from accounts.account_sessions import key_hash, summarise_user_agent
from accounts.models import AccountSession, BackupCode, TOTPDevice, User
from accounts.tests import soft_authenticator as soft
from accounts.tests.test_passkeys import ORIGIN, enrol
from audit.models import AuditEvent
from tests import factories as f
from tests.personas import logged_in, login

pytestmark = pytest.mark.django_db

FIREFOX = "Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:133.0) Gecko/20100101 Firefox/133.0"
IPHONE = (
    "Mozilla/5.0 (iPhone; CPU iPhone OS 18_1 like Mac OS X) AppleWebKit/605.1.15 "
    "(KHTML, like Gecko) Version/18.1 Mobile/15E148 Safari/604.1"
)


def browser(user: User, agent: str, ip: str) -> Client:
    """A client that logged in through the pages from this browser and address."""
    # Two logins within one 30-second step: the second may use the same code again here.
    TOTPDevice.objects.filter(user=user).update(last_t=-1)
    return logged_in(user, HTTP_USER_AGENT=agent, REMOTE_ADDR=ip)


def test_the_page_lists_the_sign_in_methods_and_links(claire: Any) -> None:
    client = login(claire.user)
    page = client.get("/compte/").content.decode()
    for text in (
        "Moyens de connexion",
        "/compte/mot-de-passe/",
        "Application d'authentification",
        "Clés d'accès",
        "Il vous reste 0 code",
        "Sessions ouvertes",
        "Connexions récentes",
        "/messagerie/logiciels/",
    ):
        assert text in page, text


def test_a_patient_sees_no_practice_software_link(lucie: Any) -> None:
    page = login(lucie.user).get("/compte/").content.decode()
    assert "Mon compte" in page
    assert "/messagerie/logiciels/" not in page


def test_the_page_needs_both_factors() -> None:
    user = f.professional()
    client = Client()
    client.post("/connexion/", {"identifier": user.username, "password": f.PASSWORD})
    response = client.get("/compte/")
    assert response.status_code == 302 and response["Location"].startswith("/connexion/")


def test_sessions_are_listed_with_device_and_place_never_the_key() -> None:
    user = f.professional()
    office = browser(user, FIREFOX, "192.0.2.10")
    browser(user, IPHONE, "198.51.100.7")
    page = office.get("/compte/").content.decode()
    assert "Firefox sur Windows" in page and "192.0.2.10" in page
    assert "Safari sur iOS" in page and "198.51.100.7" in page
    assert "cette session" in page
    key = office.session.session_key
    assert key is not None
    row = AccountSession.objects.get(user=user, ip="192.0.2.10")
    assert row.key_hash == key_hash(key) and key not in row.key_hash
    assert row.method == "password_code"


def test_ending_another_session_logs_it_out_at_once(
    django_capture_on_commit_callbacks: Any,
) -> None:
    user = f.professional(email="holder@example.test")
    office = browser(user, FIREFOX, "192.0.2.10")
    phone = browser(user, IPHONE, "198.51.100.7")
    target = AccountSession.objects.get(user=user, ip="198.51.100.7")
    mail.outbox.clear()
    with django_capture_on_commit_callbacks(execute=True):
        response = office.post(f"/compte/sessions/{target.pk}/fermer/")
    assert response.status_code == 302
    page = phone.get("/compte/")
    assert page.status_code == 302 and page["Location"].startswith("/connexion/")
    assert phone.get("/messagerie/").status_code == 302
    assert office.get("/compte/").status_code == 200
    assert AuditEvent.objects.filter(action="account.session_ended", object_id=str(user.pk))
    assert [m.to for m in mail.outbox] == [["holder@example.test"]]


def test_log_out_everywhere_ends_every_session_this_one_included() -> None:
    user = f.professional()
    office = browser(user, FIREFOX, "192.0.2.10")
    phone = browser(user, IPHONE, "198.51.100.7")
    response = office.post("/compte/sessions/fermer-toutes/")
    assert response["Location"].startswith("/connexion/")
    assert office.get("/compte/").status_code == 302
    assert phone.get("/compte/").status_code == 302
    assert not AccountSession.objects.filter(user=user, ended_at=None).exists()
    assert AuditEvent.objects.filter(action="account.sessions_ended", data__count=2).exists()


def test_another_users_session_is_404_and_stays_open() -> None:
    holder = f.professional()
    browser(holder, FIREFOX, "192.0.2.10")
    session = AccountSession.objects.get(user=holder)
    stranger = login(f.professional())
    assert stranger.post(f"/compte/sessions/{session.pk}/fermer/").status_code == 404
    assert stranger.post("/compte/sessions/999999/fermer/").status_code == 404
    session.refresh_from_db()
    assert session.ended_at is None


def test_a_password_change_keeps_the_session_and_its_record() -> None:
    user = f.professional()
    client = browser(user, FIREFOX, "192.0.2.10")
    response = client.post(
        "/compte/mot-de-passe/",
        {
            "old_password": f.PASSWORD,
            "new_password1": "Un-nouveau-mot-de-passe-2026",
            "new_password2": "Un-nouveau-mot-de-passe-2026",
        },
    )
    assert response.status_code == 302
    assert client.get("/compte/").status_code == 200
    row = AccountSession.objects.get(user=user)
    assert row.key_hash == key_hash(client.session.session_key) and row.ended_at is None


def test_logout_closes_the_record() -> None:
    user = f.professional()
    client = browser(user, FIREFOX, "192.0.2.10")
    client.post("/deconnexion/")
    assert AccountSession.objects.get(user=user).ended_at is not None


def test_recent_sign_ins_and_failures_are_shown() -> None:
    user = f.professional()
    failing = Client(REMOTE_ADDR="203.0.113.5")
    failing.post("/connexion/", {"identifier": user.username, "password": "wrong-password"})
    failing.post("/connexion/", {"identifier": user.username, "password": f.PASSWORD})
    failing.post("/connexion/code/", {"code": "000000"})
    client = browser(user, FIREFOX, "192.0.2.10")
    page = client.get("/compte/").content.decode()
    recent = page[page.index("Connexions récentes") :]
    assert "Connexion réussie" in recent and "192.0.2.10" in recent
    assert "Échec de connexion" in recent and "203.0.113.5" in recent
    assert "mot(s) de passe ou code(s) erroné(s)" in recent


def test_backup_codes_are_regenerated_after_the_second_factor(
    django_capture_on_commit_callbacks: Any,
) -> None:
    user = f.professional(email="holder@example.test")
    client = login(user)
    mail.outbox.clear()
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post("/compte/codes-de-secours/")
    assert response.status_code == 200
    page = response.content.decode()
    codes = re.findall(r"<li>([a-z2-7]{8})</li>", page)
    assert len(codes) == 10
    assert BackupCode.objects.filter(device__user=user).count() == 10
    assert AuditEvent.objects.filter(action="account.backup_codes_regenerated").exists()
    assert len(mail.outbox) == 1 and codes[0] not in mail.outbox[0].body
    # Shown once; a second batch replaces the first.
    assert client.get("/connexion/codes-de-secours/").status_code == 302
    client.post("/compte/codes-de-secours/")
    assert BackupCode.objects.filter(device__user=user).count() == 10
    fresh = Client()
    fresh.post("/connexion/", {"identifier": user.username, "password": f.PASSWORD})
    fresh.post("/connexion/code/", {"code": codes[0]})
    assert "_auth_user_id" not in fresh.session


def test_backup_codes_cannot_be_regenerated_with_the_password_alone() -> None:
    user = f.professional()
    client = Client()
    client.post("/connexion/", {"identifier": user.username, "password": f.PASSWORD})
    assert client.post("/compte/codes-de-secours/").status_code == 302
    assert not BackupCode.objects.filter(device__user=user).exists()


@pytest.mark.parametrize(
    ("agent", "summary"),
    [
        (FIREFOX, "Firefox sur Windows"),
        (IPHONE, "Safari sur iOS"),
        (
            "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 Chrome/131.0 Safari/537.36",
            "Chrome sur Linux",
        ),
        (
            "Mozilla/5.0 (Windows NT 10.0) AppleWebKit/537.36 Chrome/131.0 Safari/537.36 Edg/131.0",
            "Edge sur Windows",
        ),
        ("", "Navigateur inconnu"),
        ("<script>" * 500, "Navigateur inconnu"),
    ],
)
def test_the_user_agent_is_summarised(agent: str, summary: str) -> None:
    assert summarise_user_agent(agent) == summary


# --- Staff and the phishing-resistant factor ------------------------------------------------


@pytest.fixture
def strong_required(settings: Any) -> None:
    settings.STAFF_REQUIRE_PHISHING_RESISTANT = True


def test_staff_with_password_and_code_are_sent_to_enrol_a_passkey(strong_required: None) -> None:
    staff = f.staff()
    client = login(staff)
    response = client.get("/admin/")
    assert response.status_code == 302
    assert response["Location"].startswith("/admin/login/")
    response = client.get(response["Location"])
    assert response["Location"].startswith("/compte/cle-requise/")
    page = client.get(response["Location"])
    assert page.status_code == 403
    text = page.content.decode()
    assert "Clé d'accès requise pour l'administration" in text
    assert "Ajouter une clé d'accès" in text
    assert client.get("/admin/accounts/user/").status_code == 302


def test_staff_confirm_the_session_with_a_passkey_and_reach_the_admin(
    strong_required: None,
) -> None:
    staff = f.staff()
    client = login(staff)
    credential, response = enrol(client, "Clé de l'équipe")
    assert response.status_code == 200
    assert client.get("/admin/").status_code == 302  # enrolling is not signing with it
    page = client.get("/compte/cle-requise/?next=/admin/").content.decode()
    assert "Confirmer avec ma clé d'accès" in page
    options = client.post(
        "/compte/cles-d-acces/confirmer/options/", "{}", content_type="application/json"
    ).json()
    answer = soft.sign(credential, options, ORIGIN)
    response = client.post(
        "/compte/cles-d-acces/confirmer/?next=/admin/",
        json.dumps({"credential": answer}),
        content_type="application/json",
    )
    assert response.json() == {"redirect": "/admin/"}
    assert client.get("/admin/").status_code == 200
    assert AuditEvent.objects.filter(action="account.passkey_confirmed").exists()


def test_a_confirmation_with_another_users_passkey_is_refused_and_journaled(
    strong_required: None,
) -> None:
    staff = f.staff()
    other_credential, _response = enrol(login(f.professional()))
    client = login(staff)
    enrol(client)
    options = client.post(
        "/compte/cles-d-acces/confirmer/options/", "{}", content_type="application/json"
    ).json()
    answer = soft.sign(other_credential, options, ORIGIN)
    response = client.post(
        "/compte/cles-d-acces/confirmer/",
        json.dumps({"credential": answer}),
        content_type="application/json",
    )
    assert response.status_code == 400
    assert client.get("/admin/").status_code == 302
    assert AuditEvent.objects.filter(
        action="account.passkey_refused", object_id=str(staff.pk), data__step="passkey"
    ).exists()


def test_staff_signed_in_with_a_passkey_reach_the_admin(strong_required: None) -> None:
    staff = f.staff()
    credential, _response = enrol(login(staff))
    client = Client()
    options = client.post(
        "/connexion/cle-d-acces/options/", "{}", content_type="application/json"
    ).json()
    answer = soft.sign(credential, options, ORIGIN)
    response = client.post(
        "/connexion/cle-d-acces/",
        json.dumps({"credential": answer}),
        content_type="application/json",
    )
    assert response.json()["redirect"] == "/admin/"
    assert client.get("/admin/").status_code == 200


def test_a_psc_card_level_counts_and_e_cps_does_not(strong_required: None) -> None:
    staff = f.staff()
    client = login(staff)
    session = client.session
    # As the PSC sign-in keeps its facts (accounts.psc.SESSION_KEY, Identity.session_data).
    session[psc.SESSION_KEY] = {"level": psc.LEVEL_ECPS, "acr": "eidas1", "amr": ["mobile"]}
    session.save()
    assert client.get("/admin/").status_code == 302
    session[psc.SESSION_KEY] = {"level": psc.LEVEL_CARD, "acr": "eidas1", "amr": ["pop"]}
    session.save()
    assert client.get("/admin/").status_code == 200


def test_the_requirement_can_be_turned_off(settings: Any) -> None:
    settings.STAFF_REQUIRE_PHISHING_RESISTANT = False
    assert login(f.staff()).get("/admin/").status_code == 200


def test_the_strong_factor_page_is_404_for_others(claire: Any) -> None:
    assert login(claire.user).get("/compte/cle-requise/").status_code == 404
    # And a confirmation needs a passkey first.
    response = login(claire.user).post(
        "/compte/cles-d-acces/confirmer/options/", "{}", content_type="application/json"
    )
    assert response.status_code == 400
    assert soft  # the soft authenticator is what the other tests sign with


def test_records_of_ended_or_expired_sessions_are_purged(settings: Any) -> None:
    from datetime import timedelta

    from django.utils import timezone

    from accounts import tasks

    user = f.professional()
    now = timezone.now()
    age = timedelta(seconds=settings.SESSION_COOKIE_AGE)
    keep_open = AccountSession.objects.create(user=user, key_hash="a" * 64, method="passkey")
    keep_ended = AccountSession.objects.create(
        user=user, key_hash="b" * 64, method="passkey", ended_at=now - timedelta(hours=2)
    )
    AccountSession.objects.create(
        user=user, key_hash="c" * 64, method="passkey", ended_at=now - timedelta(days=2)
    )
    AccountSession.objects.create(
        user=user, key_hash="d" * 64, method="passkey", created_at=now - age - timedelta(hours=1)
    )
    assert tasks.purge_account_sessions.delay() is not None
    assert set(AccountSession.objects.values_list("pk", flat=True)) == {keep_open.pk, keep_ended.pk}


def test_the_page_runs_the_same_number_of_queries_for_2_and_12_sessions_and_passkeys() -> None:
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from accounts.models import PasskeyDevice

    user = f.professional()
    client = login(user)

    def add(n: int, start: int) -> None:
        for i in range(start, start + n):
            AccountSession.objects.create(user=user, key_hash=f"{i:064d}", method="passkey")
            PasskeyDevice.objects.create(
                user=user, name=f"Clé {i}", confirmed=True, credential_id=f"id{i}", public_key=b"k"
            )

    add(2, 0)
    client.get("/compte/")  # warm the session and the catalogues
    with CaptureQueriesContext(connection) as few:
        assert client.get("/compte/").status_code == 200
    add(8, 2)
    with CaptureQueriesContext(connection) as more:
        page = client.get("/compte/")
    assert "Clé 9" in page.content.decode()
    assert len(more.captured_queries) == len(few.captured_queries)
