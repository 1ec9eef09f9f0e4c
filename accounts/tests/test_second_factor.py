"""Second factors: staff never see or set a secret; secrets sealed, codes hashed; reset by staff."""

from __future__ import annotations

import base64
import importlib
import os
import re
from collections import deque
from datetime import timedelta
from types import SimpleNamespace
from typing import Any

import pytest
from django.apps import apps
from django.contrib.sessions.models import Session
from django.core import mail
from django.core.management import call_command
from django.db import connection
from django.test import Client
from django.urls import reverse
from django.utils import timezone
from django_otp.oath import totp

from accounts.models import BackupCodeDevice, EmailCodeDevice, TOTPDevice, User
from accounts.tests.test_activation import shown_backup_codes
from audit.models import AuditEvent
from tests import factories as f
from tests.personas import logged_in

pytestmark = pytest.mark.django_db


def enrol_by_login(user: User) -> tuple[Client, bytes, list[str]]:
    """First login of an account without a device: the secret it scans and the codes it sees."""
    client = Client()
    client.post("/connexion/", {"identifier": user.username, "password": f.PASSWORD})
    client.get("/connexion/enrolement/")
    secret = bytes.fromhex(client.session["enrol_secret"])
    client.post("/connexion/enrolement/", {"code": f"{totp(secret):06d}"})
    codes = shown_backup_codes(client.get("/connexion/codes-de-secours/").content.decode())
    assert len(codes) == 10
    return client, secret, codes


def secret_forms(secret: bytes) -> list[str]:
    b32 = base64.b32encode(secret).decode().rstrip("=")
    spaced = " ".join(b32[i : i + 4] for i in range(0, len(b32), 4))
    return [secret.hex(), secret.hex().upper(), b32, b32.lower(), spaced]


def crawl_admin(client: Client, limit: int = 400) -> dict[str, str]:
    """Every admin page reachable by links from the index (GET only), by URL."""
    pages: dict[str, str] = {}
    queue = deque(["/admin/"])
    while queue and len(pages) < limit:
        url = queue.popleft()
        if url in pages:
            continue
        response = client.get(url)
        body = response.content.decode(errors="replace") if response.status_code == 200 else ""
        pages[url] = body
        for link in re.findall(r'href="(/admin/[^"#?]*)"', body):
            if link not in pages and "/logout" not in link and "/delete/" not in link:
                queue.append(link)
    return pages


def login_with(user: User, code: str, password: str = f.PASSWORD) -> Client:
    client = Client()
    client.post("/connexion/", {"identifier": user.username, "password": password})
    client.post("/connexion/code/", {"code": code})
    return client


def is_in(client: Client) -> bool:
    return client.get(reverse("webmail_home")).status_code == 200


# --- The admin -----------------------------------------------------------------------------


def test_no_admin_page_shows_a_second_factor_secret_or_a_backup_code():
    doctor = f.professional(enrol=False, last_name="Rousseau")
    _client, secret, codes = enrol_by_login(doctor)
    boss = f.staff()
    pages = crawl_admin(logged_in(boss))
    for url, html in pages.items():
        for text in secret_forms(secret):
            assert text not in html, f"TOTP secret shown on {url}"
        assert "otpauth://" not in html, url
        for code in codes:
            assert not re.search(rf"\b{code}\b", html), f"backup code shown on {url}"
    # What staff may know: which devices, enrolled when, last used when.
    change = pages.get(f"/admin/accounts/user/{doctor.pk}/change/", "")
    assert "Application" in change and "enrôlé le" in change and "dernière utilisation" in change


def test_no_admin_form_adds_or_edits_a_second_factor():
    patient = f.patient(enrol=False)
    from accounts import services

    services.use_email_codes(patient)
    boss = f.staff()
    client = logged_in(boss)
    for url in (
        "/admin/otp_totp/totpdevice/add/",
        "/admin/otp_static/staticdevice/add/",
        "/admin/otp_email/emaildevice/add/",
        "/admin/accounts/totpdevice/add/",
        "/admin/accounts/backupcodedevice/add/",
        "/admin/accounts/emailcodedevice/add/",
        f"/admin/accounts/user/{patient.pk}/password/",
    ):
        assert client.get(url).status_code == 404, url
    # The personal address receives the patient's login codes: the change form cannot
    # redirect them, whatever is posted.
    page = client.get(f"/admin/accounts/user/{patient.pk}/change/").content.decode()
    assert 'name="email"' not in page
    client.post(
        f"/admin/accounts/user/{patient.pk}/change/",
        {
            "username": patient.username,
            "kind": patient.kind,
            "first_name": patient.first_name,
            "last_name": patient.last_name,
            "email": "equipe@attaquant.example",
            "is_active": "on",
            "key": "00" * 20,
            "patient-TOTAL_FORMS": "0",
            "patient-INITIAL_FORMS": "0",
            "professional-TOTAL_FORMS": "0",
            "professional-INITIAL_FORMS": "0",
        },
    )
    patient.refresh_from_db()
    assert patient.email == "lucie@example.org"
    assert not TOTPDevice.objects.filter(user=patient).exists()


def test_staff_reset_a_second_factor_with_a_reason_journaled_and_told_to_the_holder(
    django_capture_on_commit_callbacks: Any,
):
    doctor = f.professional(enrol=False)
    doctor.email = "camille@example.org"
    doctor.save()
    session, secret, codes = enrol_by_login(doctor)
    assert is_in(session)
    boss = f.staff()
    client = logged_in(boss)
    url = "/admin/accounts/user/"
    action = {"action": "reset_second_factor", "_selected_action": [doctor.pk]}
    assert "Motif" in client.post(url, action).content.decode()
    client.post(url, {**action, "apply": "1", "reason": ""})
    assert TOTPDevice.objects.filter(user=doctor).exists()
    mail.outbox.clear()
    with django_capture_on_commit_callbacks(execute=True):
        client.post(url, {**action, "apply": "1", "reason": "Téléphone perdu (appel du 3 mars)"})
    assert not TOTPDevice.objects.filter(user=doctor).exists()
    assert not BackupCodeDevice.objects.filter(user=doctor).exists()
    event = AuditEvent.objects.get(action="account.second_factor_reset")
    assert event.actor == boss and event.object_id == str(doctor.pk)
    assert [m.to for m in mail.outbox] == [["camille@example.org"]]
    body = mail.outbox[0].body
    assert "réinitialisé" in body
    assert not any(text in body for text in [*secret_forms(secret), *codes])
    # The session verified with the removed device is no longer verified.
    assert not is_in(session)
    # The holder enrols again at the next login; the old codes are dead.
    again = Client()
    step = again.post("/connexion/", {"identifier": doctor.username, "password": f.PASSWORD})
    assert step["Location"] == "/connexion/enrolement/"
    assert again.get("/connexion/code/")["Location"] == "/connexion/enrolement/"
    assert not is_in(login_with(doctor, codes[0]))


# --- At rest -------------------------------------------------------------------------------


def _stored_values() -> list[Any]:
    values: list[Any] = []
    for model in apps.get_models():
        if model._meta.managed and not model._meta.proxy:
            for row in model._default_manager.values_list():
                values.extend(row)
    for session in Session.objects.all():
        values.append(repr(session.get_decoded()))
    return values


def test_no_secret_and_no_code_is_stored_in_clear():
    doctor = f.professional(enrol=False)
    _client, secret, codes = enrol_by_login(doctor)
    values = _stored_values()
    texts = [str(v) for v in values if not isinstance(v, (bytes, memoryview))]
    blobs = [bytes(v) for v in values if isinstance(v, (bytes, memoryview))]
    for text in [*secret_forms(secret), *codes]:
        assert not any(text in t for t in texts), text
    assert not any(secret in b for b in blobs)
    # And still: the application's codes and a backup code open the account.
    assert is_in(login_with(doctor, f"{totp(secret, drift=1):06d}"))
    assert is_in(login_with(doctor, codes[5]))
    assert not is_in(login_with(doctor, codes[5]))


def test_a_sealed_secret_copied_to_another_account_does_not_work_there():
    victim = f.professional()
    thief = f.professional()
    source = TOTPDevice.objects.get(user=victim)
    TOTPDevice.objects.filter(user=thief).update(
        key_id=source.key_id, wrapped_key=source.wrapped_key, sealed_secret=source.sealed_secret
    )
    stolen = f"{totp(bytes.fromhex(f'{victim.pk:040x}')):06d}"
    assert not is_in(login_with(thief, stolen))


def test_a_second_factor_survives_a_master_key_rotation(settings: Any):
    def key(key_id: str) -> str:
        return f"{key_id}:" + base64.b64encode(os.urandom(32)).decode()

    old, new = key("k-old"), key("k-new")
    settings.MSSANTE_MASTER_KEYS = old
    doctor = f.professional(enrol=False)
    _client, secret, codes = enrol_by_login(doctor)
    settings.MSSANTE_MASTER_KEYS = f"{new},{old}"
    call_command("rotate_master_key", stdout=open(os.devnull, "w"))  # noqa: SIM115
    settings.MSSANTE_MASTER_KEYS = new  # the old key is gone
    assert is_in(login_with(doctor, codes[0]))
    assert is_in(login_with(doctor, f"{totp(secret, drift=1):06d}"))


# --- From django-otp's plugin tables -------------------------------------------------------

_OLD_TABLES = [
    """CREATE TABLE otp_totp_totpdevice (id integer PRIMARY KEY, user_id bigint,
    name varchar(64), confirmed boolean, key varchar(80), step smallint, t0 bigint,
    digits smallint, tolerance smallint, drift smallint, last_t bigint,
    throttling_failure_timestamp timestamp with time zone NULL, throttling_failure_count integer,
    created_at timestamp with time zone NULL, last_used_at timestamp with time zone NULL)""",
    """CREATE TABLE otp_static_staticdevice (id integer PRIMARY KEY, user_id bigint,
    name varchar(64), confirmed boolean, created_at timestamp with time zone NULL,
    last_used_at timestamp with time zone NULL)""",
    """CREATE TABLE otp_static_statictoken (id integer PRIMARY KEY, device_id integer,
    token varchar(16))""",
    """CREATE TABLE otp_email_emaildevice (id integer PRIMARY KEY, user_id bigint,
    name varchar(64), confirmed boolean, token varchar(16) NULL, valid_until timestamp with time zone,
    email varchar(254) NULL, created_at timestamp with time zone NULL, last_used_at timestamp with time zone NULL)""",
]


def test_the_migration_seals_plaintext_devices_and_their_codes_still_work():
    doctor = f.professional(enrol=False)
    patient = f.patient(enrol=False)
    secret = os.urandom(20)
    enrolled = timezone.now() - timedelta(days=400)
    # On PostgreSQL the tests run as the application's role, which may not create tables
    # (the migration runs as the schema owner): temporary ones stand in for the old tables.
    create = "CREATE TEMP TABLE" if connection.vendor == "postgresql" else "CREATE TABLE"
    with connection.cursor() as cursor:
        for ddl in _OLD_TABLES:
            cursor.execute(ddl.replace("CREATE TABLE", create, 1))
        cursor.execute(
            "INSERT INTO otp_totp_totpdevice VALUES (1, %s, 'app', %s, %s, 30, 0, 6, 1, 0, -1,"
            " NULL, 0, %s, NULL)",
            [doctor.pk, True, secret.hex(), enrolled],
        )
        cursor.execute(
            "INSERT INTO otp_static_staticdevice VALUES (7, %s, 'secours', %s, %s, NULL)",
            [doctor.pk, True, enrolled],
        )
        for pk, token in [(1, "abcd2345"), (2, "efgh6723")]:
            cursor.execute("INSERT INTO otp_static_statictoken VALUES (%s, 7, %s)", [pk, token])
        cursor.execute(
            "INSERT INTO otp_email_emaildevice VALUES (3, %s, 'E-mail', %s, '123456', %s,"
            " 'equipe@attaquant.example', NULL, NULL)",
            [patient.pk, True, timezone.now()],
        )
    migration = importlib.import_module(
        "accounts.migrations.0002_sealed_second_factor_email_change_login_throttle"
    )
    # The data step reads and writes through the editor's connection only.
    migration.seal_plugin_devices(apps, SimpleNamespace(connection=connection))
    with connection.cursor() as cursor:
        for table in ("totpdevice", "staticdevice", "statictoken", "emaildevice"):
            name = {"totpdevice": "otp_totp_", "emaildevice": "otp_email_"}.get(
                table, "otp_static_"
            )
            cursor.execute(f"SELECT COUNT(*) FROM {name}{table}")  # noqa: S608
            assert cursor.fetchone()[0] == 0, table
    device = TOTPDevice.objects.get(user=doctor)
    assert device.created_at == enrolled
    assert is_in(login_with(doctor, f"{totp(secret):06d}"))
    assert is_in(login_with(doctor, "ABCD 2345"))
    assert not is_in(login_with(doctor, "abcd2345"))
    assert EmailCodeDevice.objects.filter(user=patient, confirmed=True).exists()
    mail.outbox.clear()
    client = Client()
    client.post("/connexion/", {"identifier": patient.username, "password": f.PASSWORD})
    client.get("/connexion/code/")
    # Codes go to the account's address, not to the one staff had set on the device.
    assert [m.to for m in mail.outbox] == [["lucie@example.org"]]
