"""The "Logiciels et appareils" page in real Chromium: create, copy once, revoke; axe finds nothing."""

from __future__ import annotations

from pathlib import Path

import pytest
from django.conf import settings
from django_otp.oath import totp
from playwright.sync_api import Page, expect

from clients import services
from clients.models import AppPassword
from tests import factories
from tests.browser.test_webmail import assert_accessible, log_in, shoot

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]
DOCS = Path(settings.BASE_DIR) / "docs" / "screenshots"


def test_a_doctor_creates_an_app_password_for_the_practice_software_and_revokes_it(
    live_server, page: Page
) -> None:
    user = factories.professional(first_name="Claire", last_name="Martin")
    box = factories.mailbox(user, domain=factories.hosted_domain("hopital.mssante.test"))
    log_in(page, live_server.url, user, next="/messagerie/")
    page.get_by_role("link", name="Logiciels et appareils").click()
    expect(page.get_by_role("heading", name="Logiciels et appareils", level=1)).to_be_visible()
    assert_accessible(page)
    page.get_by_label("Appareil ou logiciel").fill("Logiciel du cabinet")
    page.get_by_label("Ce que l'appareil peut faire").select_option("both")
    page.get_by_label("Boîte", exact=True).select_option(label=box.address)
    # The login used this step's code (never accepted twice): the next step's, within tolerance.
    next_code = f"{totp(bytes.fromhex(f'{user.pk:040x}'), drift=1):06d}"
    page.get_by_label("Code de votre application d'authentification").fill(next_code)
    page.get_by_role("button", name="Créer le mot de passe").click()
    secret = page.locator("#app-password-secret").inner_text()
    assert services.authenticate(box.address, secret, protocol="imap", ip="127.0.0.1").user == user
    assert_accessible(page)
    shoot(page, "app-passwords")
    DOCS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(DOCS / "logiciels-et-appareils.png"), full_page=True)
    page.get_by_role("button", name="Révoquer « Logiciel du cabinet »").click()
    expect(page.get_by_text("« Logiciel du cabinet » ne peut plus se connecter.")).to_be_visible()
    assert AppPassword.objects.get().revoked_at is not None
    assert secret not in page.content()
