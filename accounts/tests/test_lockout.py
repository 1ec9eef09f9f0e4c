"""Guessing is bounded, yet nobody can lock a holder out by typing their public number."""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Any

import pytest
import time_machine
from django.conf import settings
from django.core import mail
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from accounts import services
from audit.models import AuditEvent
from tests import factories as f

pytestmark = pytest.mark.django_db
LOGIN = "/connexion/"
CODE = "/connexion/code/"


def attempt(identifier: str, password: str, ip: str, client: Client | None = None) -> Any:
    client = client or Client()
    return client.post(LOGIN, {"identifier": identifier, "password": password}, REMOTE_ADDR=ip)


def evaluated(response: Any) -> bool:
    """The password was checked (and was wrong), as opposed to refused unchecked."""
    return response.status_code == 200 and "mot de passe incorrect" in response.content.decode()


def full_login(user: Any, ip: str, client: Client | None = None) -> Client:
    client = client or Client()
    assert attempt(user.username, f.PASSWORD, ip, client)["Location"] == CODE
    done = client.post(CODE, {"code": f.code_for(user)}, REMOTE_ADDR=ip)
    assert done.status_code == 302 and done["Location"] != LOGIN, done.content[:300]
    return client


def many_addresses(n: int) -> list[str]:
    return [f"10.{i // 250}.{i % 250}.{7 + i % 3}" for i in range(n)]


def test_failures_from_one_address_do_not_lock_the_holder_out_elsewhere():
    doctor = f.professional()
    rpps = doctor.professional.id_number
    for _ in range(5):
        attempt(rpps, "mauvais-mot-de-passe", "203.0.113.7")
    locked = attempt(rpps, f.PASSWORD, "203.0.113.7")
    assert locked.status_code == 429 and "bloqué pendant 15 minutes" in locked.content.decode()
    # The holder, at their own address, is not affected.
    assert attempt(rpps, f.PASSWORD, "198.51.100.20")["Location"] == CODE
    assert locked["Retry-After"] == "900"


def test_a_guess_spread_over_many_addresses_is_bounded_and_the_holder_still_gets_in():
    doctor = f.professional()
    rpps = doctor.professional.id_number
    free = settings.LOGIN_IDENTIFIER_FREE_ATTEMPTS
    with time_machine.travel(timezone.now(), tick=False) as traveller:
        # The holder logged in last week from the practice and from this browser.
        holder_browser = full_login(doctor, "192.0.2.50")
        traveller.shift(timedelta(days=7))
        checked = sum(
            evaluated(attempt(rpps, f"essai-{i}", ip)) for i, ip in enumerate(many_addresses(20))
        )
        assert checked == free + 1
        refused = attempt(rpps, "essai", "10.9.9.9")
        assert refused.status_code == 429 and "ralenties" in refused.content.decode()
        assert 0 < int(refused["Retry-After"]) <= 60
        # Six hours of one guess from a fresh address every 10 minutes: the delay
        # doubles up to 15 minutes, so about one guess per quarter of an hour.
        for i, ip in enumerate(many_addresses(36)):
            traveller.shift(timedelta(minutes=10))
            checked += evaluated(attempt(rpps, f"plus-{i}", ip))
        assert checked <= free + 1 + 4 + 6 * 60 // settings.LOGIN_IDENTIFIER_MAX_DELAY_MINUTES
        # Meanwhile the holder logs in: from their browser on a hotel network...
        assert attempt(rpps, f.PASSWORD, "198.51.100.77", holder_browser)["Location"] == CODE
        # ...and from a new browser at the practice's address.
        assert attempt(rpps, f.PASSWORD, "192.0.2.50")["Location"] == CODE
        # A stranger with the right password, on an unknown client, waits like the guessers.
        assert attempt(rpps, f.PASSWORD, "10.200.0.1").status_code == 429


def test_guessing_codes_from_many_addresses_is_bounded_too():
    doctor = f.professional()
    right = f.code_for(doctor)
    wrong = "000000" if right != "000000" else "111111"
    tried = 0
    with time_machine.travel(timezone.now(), tick=False):
        for ip in many_addresses(20):
            client = Client()
            if attempt(doctor.username, f.PASSWORD, ip, client).status_code != 302:
                continue
            answer = client.post(CODE, {"code": wrong}, REMOTE_ADDR=ip)
            tried += "Code incorrect" in answer.content.decode()
    assert tried <= settings.LOGIN_IDENTIFIER_FREE_ATTEMPTS + 1


def test_the_holder_is_told_once_and_without_content(django_capture_on_commit_callbacks: Any):
    doctor = f.professional()
    doctor.email = "camille@example.org"
    doctor.save()
    rpps = doctor.professional.id_number
    mail.outbox.clear()
    with time_machine.travel(timezone.now(), tick=False) as traveller:
        with django_capture_on_commit_callbacks(execute=True):
            for _ in range(5):
                attempt(rpps, "mauvais-mot-de-passe-secret", "203.0.113.7")
        assert [m.to for m in mail.outbox] == [["camille@example.org"]]
        body = mail.outbox[0].body
        assert "tentatives de connexion" in body.lower()
        assert "203.0.113.7" not in body and "mauvais-mot-de-passe-secret" not in body
        # The attack goes on from elsewhere: no flood of notices.
        with django_capture_on_commit_callbacks(execute=True):
            for ip in many_addresses(12):
                attempt(rpps, "encore", ip)
        assert len(mail.outbox) == 1
        traveller.shift(timedelta(hours=settings.LOGIN_ALERT_HOURS + 1))
        with django_capture_on_commit_callbacks(execute=True):
            for _ in range(5):
                attempt(rpps, "toujours", "203.0.113.8")
        assert len(mail.outbox) == 2


def page(response: Any, identifier: str) -> str:
    text = response.content.decode().replace(identifier, "X")
    return re.sub(r'(csrfmiddlewaretoken" value=|X-CSRFToken": )"[^"]+"', "", text)


def test_an_unknown_identifier_gets_exactly_the_answers_of_a_known_one():
    doctor = f.professional()
    stranger = f.rpps()
    with time_machine.travel(timezone.now(), tick=False):
        for ip in many_addresses(14):
            known = attempt(doctor.professional.id_number, "faux", ip)
            unknown = attempt(stranger, "faux", ip)
            assert known.status_code == unknown.status_code
            assert page(known, doctor.professional.id_number) == page(unknown, stranger)


def test_the_former_adeli_and_the_rpps_share_one_counter():
    nurse = f.professional(identifier=f.adeli(), profession="60")
    adeli = nurse.professional.id_number
    rpps = f.rpps()
    services.switch_to_rpps(nurse.professional, rpps, by=None)
    for _ in range(3):
        attempt(adeli, "mauvais-mot-de-passe", "203.0.113.7")
    for _ in range(2):
        attempt(rpps, "mauvais-mot-de-passe", "203.0.113.7")
    assert attempt(rpps, f.PASSWORD, "203.0.113.7").status_code == 429
    assert attempt("8" + rpps, f.PASSWORD, "203.0.113.7").status_code == 429
    assert attempt(adeli, f.PASSWORD, "203.0.113.7").status_code == 429


def test_behind_the_proxy_the_client_address_is_the_one_the_proxy_saw(settings: Any):
    settings.TRUSTED_PROXY_HOPS = 1
    doctor = f.professional()
    for _ in range(5):
        Client().post(
            LOGIN,
            {"identifier": doctor.username, "password": "faux"},
            REMOTE_ADDR="127.0.0.1",
            HTTP_X_FORWARDED_FOR="1.2.3.4, 203.0.113.7",
        )
    # Another client behind the same proxy, even one forging the header's left part.
    other = Client().post(
        LOGIN,
        {"identifier": doctor.username, "password": f.PASSWORD},
        REMOTE_ADDR="127.0.0.1",
        HTTP_X_FORWARDED_FOR="203.0.113.7, 198.51.100.20",
    )
    assert other["Location"] == CODE
    locked = Client().post(
        LOGIN,
        {"identifier": doctor.username, "password": f.PASSWORD},
        REMOTE_ADDR="127.0.0.1",
        HTTP_X_FORWARDED_FOR="9.9.9.9, 203.0.113.7",
    )
    assert locked.status_code == 429


def test_a_known_browser_logs_in_during_an_attack_and_reaches_the_inbox():
    doctor = f.professional()
    with time_machine.travel(timezone.now(), tick=False) as traveller:
        browser = full_login(doctor, "192.0.2.50")
        browser.post("/deconnexion/")
        for ip in many_addresses(14):
            attempt(doctor.username, "faux", ip)
        traveller.shift(timedelta(seconds=31))
        full_login(doctor, "198.51.100.3", browser)
        assert browser.get(reverse("webmail_home")).status_code == 200


def test_typing_a_lock_key_as_identifier_counts_for_nobody_else():
    doctor = f.professional()
    for _ in range(6):
        attempt(f"account:{doctor.pk}", "faux", "203.0.113.7")
    assert attempt(doctor.username, f.PASSWORD, "203.0.113.7")["Location"] == CODE


def test_behind_the_proxy_the_journal_records_the_client_not_the_proxy(settings: Any):
    settings.TRUSTED_PROXY_HOPS = 1
    doctor = f.professional()
    Client().post(
        LOGIN,
        {"identifier": doctor.username, "password": "faux"},
        REMOTE_ADDR="127.0.0.1",
        HTTP_X_FORWARDED_FOR="1.2.3.4, 203.0.113.7",
    )
    event = AuditEvent.objects.filter(action="login.failed").latest("pk")
    # The proxy's own address would make every line of the journal the same; the left
    # part of the header is the client's own claim.
    assert str(event.ip) == "203.0.113.7"
