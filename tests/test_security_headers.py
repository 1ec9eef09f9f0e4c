"""Security headers on real responses: CSP, no-store, HSTS and HTTPS; search terms out of URLs."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from django.conf import settings
from django.test import Client
from django.urls import reverse

from mailboxes.models import Entry, Mailbox
from mssante.lib import mime
from tests import factories
from tests.personas import Person, logged_in, login, send

pytestmark = pytest.mark.django_db

ROOT = Path(__file__).resolve().parent.parent
PDF = b"%PDF-1.4\n1 0 obj<<>>endobj\ntrailer<<>>\n%%EOF\n"


@pytest.fixture
def world(claire: Person, paul: Person, lucie: Person) -> dict[str, Any]:
    (doctor, box), other, (patient, patient_box) = claire, paul.box, lucie
    message = send(
        other,
        [box.address],
        subject="Bilan de Mme Dupont-Lefranc",
        attachments=[mime.Attachment("cr.pdf", "application/pdf", PDF)],
    )
    send(box, [patient_box.address], subject="Vos résultats", text="Bonjour Madame.")
    lab = factories.shared_mailbox(doctor, kind=Mailbox.Kind.APPLICATIVE, local="labo")
    _token, raw = factories.api_token(box)
    return {
        "doctor": doctor,
        "box": box,
        "entry": Entry.objects.get(mailbox=box, message=message),
        "patient": patient,
        "patient_entry": Entry.objects.get(mailbox=patient_box),
        "token": raw,
        "lab": lab,
        "message": message,
    }


def _policy(response: Any) -> dict[str, str]:
    header = response["Content-Security-Policy"]
    policy = {}
    for part in header.split(";"):
        name, _sep, value = part.strip().partition(" ")
        if name:
            policy[name] = value
    return policy


def _assert_strict_csp(response: Any) -> None:
    policy = _policy(response)
    assert policy["default-src"] == "'self'"
    assert policy["script-src"] == "'self'"
    assert "unsafe" not in response["Content-Security-Policy"]
    assert policy["frame-ancestors"] == "'none'"
    assert policy["object-src"] == "'none'"
    assert policy["base-uri"] == "'none'"
    # Forms post here only; with Pro Santé Connect on, the logout's answer goes on to its
    # end-session endpoint: its issuer's origin, nothing more (issue 16).
    psc = " " + "/".join(settings.PSC_ISSUER.split("/", 3)[:3]) if settings.PSC_ENABLED else ""
    assert policy["form-action"] == "'self'" + psc


def _assert_no_store(response: Any) -> None:
    assert "no-store" in response["Cache-Control"], response["Cache-Control"]


def test_every_kind_of_page_has_a_strict_csp_and_is_not_stored(world: dict[str, Any]) -> None:
    anonymous = Client(raise_request_exception=False)
    doctor = logged_in(world["doctor"])
    patient = logged_in(world["patient"])
    staff = logged_in(factories.staff())
    entry = world["entry"]
    pages = [
        (anonymous, "/connexion/", 200),
        (anonymous, "/nulle-part/", 404),
        (doctor, "/messagerie/", 200),
        (doctor, reverse("webmail_read", args=[entry.pk]), 200),
        (doctor, reverse("webmail_conversation", args=[entry.pk]), 200),
        (doctor, reverse("webmail_search", args=[world["box"].pk]), 200),
        (doctor, "/annuaire/", 200),
        (doctor, "/messagerie/preferences/", 200),
        (patient, "/patient/", 200),
        (patient, reverse("patients:conversation", args=[world["patient_entry"].pk]), 200),
        (staff, "/admin/", 200),
    ]
    for client, path, status in pages:
        response = client.get(path)
        assert response.status_code == status, path
        _assert_strict_csp(response)
        _assert_no_store(response)
        assert response["X-Content-Type-Options"] == "nosniff"
        assert response["X-Frame-Options"] == "DENY"


def test_the_api_message_json_is_not_stored_and_carries_the_headers(
    world: dict[str, Any],
) -> None:
    client = Client()
    headers = {"Authorization": f"Bearer {world['token']}"}
    for path in (
        f"/api/v1/messages/{world['message'].public_id}",
        f"/api/v1/mailboxes/{world['box'].address}/messages",
        "/api/v1/messages/00000000-0000-0000-0000-000000000000",
    ):
        response = client.get(path, headers=headers)
        assert response.status_code in (200, 404), path
        _assert_no_store(response)
        _assert_strict_csp(response)
        assert response["X-Content-Type-Options"] == "nosniff"


def test_the_attachment_preview_keeps_its_own_sandbox_policy(world: dict[str, Any]) -> None:
    client = logged_in(world["doctor"])
    entry = world["entry"]
    index = entry.message.attachments[0]["index"]
    response = client.get(reverse("webmail_preview", args=[entry.pk, index]))
    assert response.status_code == 200
    assert response["Content-Security-Policy"].startswith("sandbox")
    assert "default-src 'none'" in response["Content-Security-Policy"]
    _assert_no_store(response)


def test_static_files_stay_cacheable(world: dict[str, Any]) -> None:
    response = Client().get("/static/css/portal.css")
    assert response.status_code == 200
    assert "no-store" not in response.get("Cache-Control", "")


# --------------------------------------------------------------------------- search terms


def test_a_webmail_search_keeps_its_terms_out_of_every_url(world: dict[str, Any]) -> None:
    client = logged_in(world["doctor"])
    box = world["box"]
    response = client.post(reverse("webmail_search", args=[box.pk]), {"q": "Dupont-Lefranc"})
    assert response.status_code == 303
    location = response["Location"]
    assert "Dupont" not in location and "q=" not in location
    page = client.get(location)
    assert page.status_code == 200
    html = page.content.decode()
    assert "Bilan de Mme Dupont-Lefranc" in html  # the results are there
    assert "Dupont-Lefranc" in html.split("webmail-search-input", 1)[1]  # the box keeps it
    assert "q=Dupont" not in html
    # Reload and back button: the same URL gives the same results.
    assert "Bilan de Mme Dupont-Lefranc" in client.get(location).content.decode()
    # The id means nothing in another session (no term reaches another user either).
    other = login(world["doctor"])
    assert "Dupont-Lefranc" not in other.get(location).content.decode()


def test_the_search_form_is_posted_with_its_csrf_token(world: dict[str, Any]) -> None:
    html = logged_in(world["doctor"]).get("/messagerie/").content.decode()
    form = html.split('role="search"', 1)[0].rsplit("<form", 1)[1]
    assert 'method="post"' in form
    after = html.split('role="search"', 1)[1].split("</form>", 1)[0]
    assert "csrfmiddlewaretoken" in after


def test_a_directory_search_keeps_its_terms_out_of_the_url_and_pages(
    world: dict[str, Any],
) -> None:
    from directory.tests import factories as df

    for i in range(25):
        df.entry(
            address=f"helene{i}@medecin.mssante.fr", first_name="HELENE", last_name=f"LEGER{i:02d}"
        )
    client = logged_in(world["doctor"])
    response = client.post("/annuaire/", {"q": "Hélène", "city": ""})
    assert response.status_code == 303
    location = response["Location"]
    assert "l%C3%A8ne" not in location.lower() and "Hélène" not in location and "q=" not in location
    first = client.get(location).content.decode()
    assert "25 résultats" in first
    assert 'href="?page=2"' in first
    second = client.get(location + "?page=2")
    assert second.status_code == 200
    assert "2 / 2" in second.content.decode()
    assert "Hélène" in second.content.decode()  # the form still shows the terms


def test_an_expired_search_says_so(world: dict[str, Any]) -> None:
    client = logged_in(world["doctor"])
    response = client.get(reverse("webmail_search_results", args=[world["box"].pk, "inconnu"]))
    assert response.status_code == 404
    assert "Cette recherche a expiré" in response.content.decode()
    response = client.get("/annuaire/recherche/inconnu/")
    assert response.status_code == 404
    assert "Cette recherche a expiré" in response.content.decode()


# --------------------------------------------------------------------------- HTTPS


def _settings_in(
    env: dict[str, str], tmp_path: Path, code: str
) -> subprocess.CompletedProcess[str]:
    full = {
        "PATH": os.environ.get("PATH", ""),
        "MSSANTE_IGNORE_DOTENV": "true",
        "MSSANTE_VAR_DIR": str(tmp_path),
        "DJANGO_SETTINGS_MODULE": "mssante.settings",
        **env,
    }
    return subprocess.run(
        [sys.executable, "-c", code],
        cwd=ROOT,
        env=full,
        capture_output=True,
        text=True,
        check=False,
    )


PRODUCTION = {
    "SITE_URL": "https://messagerie.operateur.test",
    "ALLOWED_HOSTS": "messagerie.operateur.test",
    "SECRET_KEY": "Zq4-hV9#kLw2$uYb7@Tn5!pRc8&mXf3*gJd6^sQe1%aBo0(iHz",
    "DEBUG": "false",
}


def test_check_deploy_passes_with_an_https_site_url(tmp_path: Path) -> None:
    result = _settings_in(
        PRODUCTION,
        tmp_path,
        "import django; django.setup(); from django.core.management import call_command; "
        "call_command('check', deploy=True, fail_level='WARNING')",
    )
    assert result.returncode == 0, result.stderr + result.stdout


def test_https_settings_redirect_and_send_hsts(tmp_path: Path) -> None:
    code = (
        "import django; django.setup(); from django.conf import settings as s; "
        "print(s.SECURE_SSL_REDIRECT, s.SECURE_HSTS_SECONDS, s.SECURE_HSTS_INCLUDE_SUBDOMAINS, "
        "s.SESSION_COOKIE_SECURE, s.CSRF_COOKIE_SECURE)"
    )
    https = _settings_in(PRODUCTION, tmp_path, code)
    assert https.stdout.split() == ["True", "31536000", "True", "True", "True"], https.stderr
    demo = _settings_in({}, tmp_path, code)
    assert demo.stdout.split() == ["False", "0", "False", "False", "False"], demo.stderr
    tuned = _settings_in({**PRODUCTION, "SECURE_HSTS_SECONDS": "600"}, tmp_path, code)
    assert tuned.stdout.split()[1] == "600", tuned.stderr


def test_with_https_settings_plain_http_is_redirected_and_hsts_sent(settings: Any) -> None:
    settings.SECURE_SSL_REDIRECT = True
    settings.SECURE_HSTS_SECONDS = 31_536_000
    settings.SECURE_HSTS_INCLUDE_SUBDOMAINS = True
    client = Client()
    response = client.get("/connexion/")
    assert response.status_code == 301
    assert response["Location"] == "https://testserver/connexion/"
    secure = client.get("/connexion/", secure=True)
    assert secure.status_code == 200
    assert secure["Strict-Transport-Security"] == "max-age=31536000; includeSubDomains"
    # Load balancers probe the health URL over plain HTTP.
    assert client.get("/sante/").status_code == 200


def test_remote_images_asked_for_widen_img_src_only(world: dict[str, Any]) -> None:
    client = logged_in(world["doctor"])
    url = reverse("webmail_read", args=[world["entry"].pk])
    assert _policy(client.get(url))["img-src"] == "'self' data:"
    widened = client.get(url, {"images": "distantes"})
    policy = _policy(widened)
    assert policy["img-src"] == "'self' data: https:"
    assert policy["script-src"] == "'self'"
    assert policy["frame-ancestors"] == "'none'"
