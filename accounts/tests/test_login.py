"""The two-step login: password, then a one-time code."""

from __future__ import annotations

from datetime import timedelta

import pytest
import time_machine
from django.core import mail
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone
from django_otp.oath import totp

from accounts import services
from accounts.models import BackupCodeDevice
from audit.models import AuditEvent
from tests import factories as f

pytestmark = pytest.mark.django_db
LOGIN = "/connexion/"
CODE = "/connexion/code/"


def password_step(client: Client, identifier: str, password: str = f.PASSWORD):
    return client.post(LOGIN, {"identifier": identifier, "password": password})


def full_login(client: Client, user, identifier: str | None = None):
    password_step(client, identifier or user.username)
    return client.post(CODE, {"code": f.code_for(user)})


def test_it_logs_a_professional_in_with_password_and_code():
    doctor = f.professional()
    client = Client()
    response = password_step(client, doctor.professional.id_number)
    assert response.status_code == 302 and response["Location"] == CODE
    response = client.post(CODE, {"code": f.code_for(doctor)})
    assert response.status_code == 302 and response["Location"] == reverse("webmail_home")
    assert client.get(reverse("webmail_home")).status_code == 200
    assert AuditEvent.objects.filter(action="login.succeeded", actor=doctor).exists()


def test_it_accepts_the_national_id_and_spaces():
    doctor = f.professional()
    rpps = doctor.professional.id_number
    spaced = f"8 {rpps[:3]} {rpps[3:6]} {rpps[6:]}"
    assert password_step(Client(), spaced)["Location"] == CODE


def test_it_gives_the_same_message_for_unknown_identifier_and_wrong_password():
    doctor = f.professional()
    wrong_password = password_step(
        Client(), doctor.professional.id_number, "pas-le-bon-mot-de-passe"
    )
    unknown = password_step(Client(), f.rpps())
    assert wrong_password.status_code == unknown.status_code == 200
    assert wrong_password.context["error"] == unknown.context["error"]
    assert "Identifiant ou mot de passe incorrect" in unknown.content.decode()


def test_it_explains_the_expected_form_of_a_malformed_rpps():
    response = password_step(Client(), "12345")
    assert "11 chiffres" in response.content.decode()


def test_it_refuses_an_ins_with_a_wrong_key():
    matricule = f.ins()
    bad = matricule[:13] + f"{(int(matricule[13:]) + 1) % 100:02d}"
    response = password_step(Client(), bad)
    assert "clé du matricule INS est incorrecte" in response.content.decode()


def test_it_logs_a_patient_in_with_their_ins_and_lands_on_the_patient_space():
    patient = f.patient()
    client = Client()
    spaced = " ".join([patient.username[:1], patient.username[1:5], patient.username[5:]])
    password_step(client, spaced)
    response = client.post(CODE, {"code": f.code_for(patient)})
    assert response["Location"] == reverse("patient_home")
    assert client.get(reverse("webmail_home")).status_code == 404


def test_it_refuses_a_wrong_code():
    doctor = f.professional()
    client = Client()
    password_step(client, doctor.username)
    response = client.post(CODE, {"code": "000000" if f.code_for(doctor) != "000000" else "111111"})
    assert "Code incorrect" in response.content.decode()
    assert client.get(reverse("webmail_home")).status_code == 302


def test_it_refuses_a_code_already_used():
    doctor = f.professional()
    code = f.code_for(doctor)
    first = Client()
    password_step(first, doctor.username)
    assert first.post(CODE, {"code": code})["Location"] == reverse("webmail_home")
    second = Client()
    password_step(second, doctor.username)
    response = second.post(CODE, {"code": code})
    assert "déjà utilisé" in response.content.decode()


def test_a_backup_code_works_once():
    doctor = f.professional()
    device = BackupCodeDevice(user=doctor, name="secours", confirmed=True)
    device.seal_secret(b"k" * 32)
    device.save()
    device.set_codes(["secours1"])
    client = Client()
    password_step(client, doctor.username)
    assert client.post(CODE, {"code": "secours1"})["Location"] == reverse("webmail_home")
    again = Client()
    password_step(again, doctor.username)
    assert "Code incorrect" in again.post(CODE, {"code": "secours1"}).content.decode()


def test_it_locks_the_identifier_after_five_failures_and_unlocks_after_fifteen_minutes():
    doctor = f.professional()
    with time_machine.travel(timezone.now(), tick=False) as traveller:
        for _ in range(5):
            password_step(Client(), doctor.username, "mauvais-mot-de-passe")
        locked = password_step(Client(), doctor.username)
        assert locked.status_code == 429
        assert "bloqué pendant 15 minutes" in locked.content.decode()
        # Another spelling of the same identifier shares the counter.
        assert password_step(Client(), doctor.professional.id_number).status_code == 429
        traveller.shift(timedelta(minutes=16))
        assert password_step(Client(), doctor.username)["Location"] == CODE


def test_wrong_codes_count_towards_the_lock():
    doctor = f.professional()
    client = Client()
    password_step(client, doctor.username)
    for _ in range(5):
        response = client.post(
            CODE, {"code": "999999" if f.code_for(doctor) != "999999" else "888888"}
        )
    assert response.status_code == 429
    assert password_step(Client(), doctor.username).status_code == 429


@pytest.mark.parametrize(
    ("action", "word"),
    [(services.suspend_account, "suspendu"), (services.close_account, "clôturé")],
)
def test_a_suspended_or_closed_account_is_told_why_after_a_correct_password(action, word):
    doctor = f.professional()
    action(doctor, reason="Envois non sollicités répétés", by=None)
    response = password_step(Client(), doctor.username)
    body = response.content.decode()
    assert response.status_code == 403
    assert word in body and "Envois non sollicités répétés" in body
    wrong = password_step(Client(), doctor.username, "mauvais-mot-de-passe")
    assert word not in wrong.content.decode()


def test_a_suspension_ends_an_open_session():
    doctor = f.professional()
    client = Client()
    full_login(client, doctor)
    services.suspend_account(doctor, reason="Enquête", by=None)
    assert client.get(reverse("webmail_home")).status_code == 302


def test_an_idle_session_ends_after_thirty_minutes():
    doctor = f.professional()
    client = Client()
    with time_machine.travel(timezone.now(), tick=False) as traveller:
        full_login(client, doctor)
        traveller.shift(timedelta(minutes=29))
        assert client.get(reverse("webmail_home")).status_code == 200
        traveller.shift(timedelta(minutes=31))
        response = client.get(reverse("webmail_home"))
        assert response.status_code == 302 and response["Location"].startswith(LOGIN)
        follow = client.get(response["Location"])
        assert "expiré" in follow.content.decode()


def test_activity_keeps_a_session_alive_without_a_write_at_every_page():
    doctor = f.professional()
    client = Client()
    with time_machine.travel(timezone.now(), tick=False) as traveller:
        full_login(client, doctor)
        traveller.shift(timedelta(minutes=20))
        client.get(reverse("webmail_home"))  # noted: the last activity was 20 minutes ago
        traveller.shift(timedelta(seconds=30))
        with CaptureQueriesContext(connection) as queries:
            assert client.get(reverse("webmail_home")).status_code == 200
        assert not [q for q in queries if "UPDATE" in q["sql"] and "django_session" in q["sql"]]
        traveller.shift(timedelta(minutes=29))
        assert client.get(reverse("webmail_home")).status_code == 200


def test_the_code_step_expires():
    doctor = f.professional()
    client = Client()
    with time_machine.travel(timezone.now(), tick=False) as traveller:
        password_step(client, doctor.username)
        traveller.shift(timedelta(minutes=11))
        assert client.post(CODE, {"code": f.code_for(doctor)})["Location"] == LOGIN


def test_the_code_step_cannot_be_reached_without_the_password():
    assert Client().get(CODE)["Location"] == LOGIN


def test_logout_needs_a_post_and_ends_the_session():
    doctor = f.professional()
    client = Client()
    full_login(client, doctor)
    assert client.get("/deconnexion/").status_code == 405
    client.post("/deconnexion/")
    assert client.get(reverse("webmail_home")).status_code == 302


def test_first_login_without_a_device_enrols_one_and_shows_ten_backup_codes():
    doctor = f.professional(enrol=False)
    client = Client()
    assert password_step(client, doctor.username)["Location"] == "/connexion/enrolement/"
    page = client.get("/connexion/enrolement/")
    assert "data:image/svg+xml" in page.content.decode()
    secret = client.session["enrol_secret"]
    response = client.post("/connexion/enrolement/", {"code": f"{totp(bytes.fromhex(secret)):06d}"})
    assert response["Location"] == "/connexion/codes-de-secours/"
    codes = client.get("/connexion/codes-de-secours/").context["codes"]
    assert len(codes) == 10
    # Shown once only.
    assert client.get("/connexion/codes-de-secours/").status_code == 302
    assert doctor.totpdevice_set.filter(confirmed=True).count() == 1


def test_password_change_requires_the_current_password():
    doctor = f.professional()
    client = Client()
    full_login(client, doctor)
    bad = client.post(
        "/compte/mot-de-passe/",
        {
            "old_password": "faux",
            "new_password1": "Nouveau-secret-2026!",
            "new_password2": "Nouveau-secret-2026!",
        },
    )
    assert bad.status_code == 200
    ok = client.post(
        "/compte/mot-de-passe/",
        {
            "old_password": f.PASSWORD,
            "new_password1": "Nouveau-secret-2026!",
            "new_password2": "Nouveau-secret-2026!",
        },
    )
    assert ok.status_code == 302
    doctor.refresh_from_db()
    assert doctor.check_password("Nouveau-secret-2026!")


def test_the_code_page_tells_the_truth_when_the_cooldown_kept_a_code_from_leaving():
    patient = f.patient(enrol=False)
    services.use_email_codes(patient)
    client = Client()
    mail.outbox.clear()
    with time_machine.travel(timezone.now(), tick=False) as traveller:
        password_step(client, patient.username)
        first = client.get(CODE).content.decode()
        assert len(mail.outbox) == 1 and "nous avons envoyé un code" in first
        traveller.shift(timedelta(seconds=10))
        again = client.post(CODE, {"renvoyer": "1"}).content.decode()
        assert len(mail.outbox) == 1
        assert "nous avons envoyé un code" not in again
        assert "Un code vous a déjà été envoyé il y a moins de 30 secondes" in again
        assert "réessayez dans 21 secondes" in again
        traveller.shift(timedelta(seconds=21))
        later = client.post(CODE, {"renvoyer": "1"}).content.decode()
        assert len(mail.outbox) == 2 and "nous avons envoyé un code" in later


def test_an_account_not_yet_activated_costs_a_guesser_the_same_hashing_as_any_other(monkeypatch):
    from django.contrib.auth import hashers

    calls: list[str] = []
    real = hashers.MD5PasswordHasher.encode

    def counting(self, password, salt):
        calls.append(password)
        return real(self, password, salt)

    monkeypatch.setattr(hashers.MD5PasswordHasher, "encode", counting)
    active = f.professional()
    waiting = f.professional(password=None, enrol=False)
    counts = []
    for identifier in (active.username, waiting.username, "8" + f.rpps()):
        calls.clear()
        response = password_step(Client(), identifier, "pas-le-bon-mot-de-passe")
        assert "Identifiant ou mot de passe incorrect" in response.content.decode()
        counts.append(len(calls))
    assert counts[0] == counts[1] == counts[2] >= 1


def test_a_password_change_is_told_to_the_holder(django_capture_on_commit_callbacks):
    doctor = f.professional()
    doctor.email = "camille@example.org"
    doctor.save()
    client = Client()
    full_login(client, doctor)
    mail.outbox.clear()
    with django_capture_on_commit_callbacks(execute=True):
        client.post(
            "/compte/mot-de-passe/",
            {
                "old_password": f.PASSWORD,
                "new_password1": "Nouveau-secret-2026!",
                "new_password2": "Nouveau-secret-2026!",
            },
        )
    assert [m.to for m in mail.outbox] == [["camille@example.org"]]
    assert "Nouveau-secret-2026!" not in mail.outbox[0].body


def test_guessing_the_current_password_from_an_open_session_is_bounded():
    doctor = f.professional()
    client = Client()
    full_login(client, doctor)
    new = {"new_password1": "Nouveau-secret-2026!", "new_password2": "Nouveau-secret-2026!"}
    for guess in range(5):
        client.post("/compte/mot-de-passe/", {"old_password": f"essai-{guess}", **new})
    right = client.post("/compte/mot-de-passe/", {"old_password": f.PASSWORD, **new})
    assert right.status_code == 429 and "bloqué" in right.content.decode()
    doctor.refresh_from_db()
    assert doctor.check_password(f.PASSWORD)
