"""Passkeys in real Chromium, on a virtual authenticator (DevTools protocol, WebAuthn domain):
enrol one from the account page, sign out, sign in with it alone; revoke it, then it no
longer signs in. The account page and the staff's "passkey required" page: axe, 375 px."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from django.conf import settings
from playwright.sync_api import CDPSession, Page, expect

from accounts.models import AccountSession, PasskeyDevice
from tests import factories as f
from tests.browser.test_csp import Watch
from tests.browser.test_webmail import DESKTOP, PHONE, assert_accessible, log_in

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]
DOCS = Path(settings.BASE_DIR) / "docs" / "screenshots"


def virtual_authenticator(page: Page) -> tuple[CDPSession, str]:
    """A platform authenticator (ctap2, internal) holding discoverable keys, verifying its user."""
    cdp = page.context.new_cdp_session(page)
    cdp.send("WebAuthn.enable")
    added = cdp.send(
        "WebAuthn.addVirtualAuthenticator",
        {
            "options": {
                "protocol": "ctap2",
                "transport": "internal",
                "hasResidentKey": True,
                "hasUserVerification": True,
                "isUserVerified": True,
                "automaticPresenceSimulation": True,
            }
        },
    )
    return cdp, added["authenticatorId"]


def shoot(page: Page, name: str) -> None:
    """The page at desktop and 375 px width into docs/screenshots; nothing scrolls sideways."""
    DOCS.mkdir(parents=True, exist_ok=True)
    page.set_viewport_size(DESKTOP)
    page.screenshot(path=str(DOCS / f"{name}-desktop.png"), full_page=True)
    page.set_viewport_size(PHONE)
    assert page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"], name
    page.screenshot(path=str(DOCS / f"{name}-phone.png"), full_page=True)
    page.set_viewport_size(DESKTOP)


@pytest.fixture
def site(live_server: Any, settings: Any) -> str:
    # The passkey is bound to the site's host (localhost: a secure context for Chromium).
    settings.SITE_URL = live_server.url
    assert live_server.url.startswith("http://localhost:")
    return str(live_server.url)


def sign_out(page: Page) -> None:
    # The header's button (DSFR copies the header's tools into the phone menu too).
    page.locator(".fr-header__tools form[action='/deconnexion/'] button").click()
    expect(page.get_by_role("heading", name="Connexion", exact=True)).to_be_visible()


def test_a_professional_enrols_a_passkey_signs_in_with_it_then_revokes_it(
    site: str, page: Page
) -> None:
    page.set_viewport_size(DESKTOP)
    user = f.professional(email="claire@example.test")
    watch = Watch(page)  # no CSP violation on the way (scripts from static/js only)
    cdp, authenticator = virtual_authenticator(page)
    log_in(page, site, user)
    page.goto(site + "/compte/")
    expect(page.get_by_role("heading", name="Mon compte")).to_be_visible()
    page.wait_for_function("document.documentElement.dataset.passkeysReady === '1'")
    page.get_by_label("Nom de la nouvelle clé d'accès").fill("Ordinateur du cabinet")
    page.get_by_role("button", name="Ajouter une clé d'accès").click()
    expect(
        page.get_by_text("La clé d'accès « Ordinateur du cabinet » est enregistrée.")
    ).to_be_visible()
    expect(page.get_by_role("heading", name="Ordinateur du cabinet")).to_be_visible()
    assert PasskeyDevice.objects.filter(user=user).count() == 1
    credentials = cdp.send("WebAuthn.getCredentials", {"authenticatorId": authenticator})
    assert len(credentials["credentials"]) == 1
    assert credentials["credentials"][0]["isResidentCredential"] is True
    watch.check("account page after enrolment")
    shoot(page, "account-page")

    sign_out(page)
    watch.check("login page")
    shoot(page, "login-with-passkey")
    page.wait_for_function("document.documentElement.dataset.passkeysReady === '1'")
    page.get_by_role("button", name="Se connecter avec une clé d'accès").click()
    page.wait_for_url(site + "/messagerie/")
    assert AccountSession.objects.filter(user=user, method="passkey", ended_at=None).exists()

    page.goto(site + "/compte/")
    page.get_by_role("button", name="Supprimer « Ordinateur du cabinet »").click()
    # It had opened this session: the session ends with it.
    expect(page.get_by_text("C'est elle qui avait ouvert cette session")).to_be_visible()
    expect(page.get_by_role("heading", name="Connexion", exact=True)).to_be_visible()
    assert not PasskeyDevice.objects.filter(user=user).exists()
    page.wait_for_function("document.documentElement.dataset.passkeysReady === '1'")
    page.get_by_role("button", name="Se connecter avec une clé d'accès").click()
    expect(page.get_by_text("Cette clé d'accès n'a pas été acceptée.")).to_be_visible()
    assert "/connexion/" in page.url
    watch.check("login page, passkey refused")


def test_a_passkey_is_the_second_step_after_the_password(site: str, page: Page) -> None:
    page.set_viewport_size(DESKTOP)
    user = f.professional()
    virtual_authenticator(page)
    log_in(page, site, user)
    page.goto(site + "/compte/")
    page.wait_for_function("document.documentElement.dataset.passkeysReady === '1'")
    page.get_by_label("Nom de la nouvelle clé d'accès").fill("Téléphone")
    page.get_by_role("button", name="Ajouter une clé d'accès").click()
    expect(page.get_by_role("heading", name="Téléphone")).to_be_visible()
    sign_out(page)
    page.locator("#id_identifier").fill(user.professional.id_number)
    page.locator("#id_password").fill(f.PASSWORD)
    page.get_by_role("button", name="Continuer").click()
    expect(page.get_by_role("heading", name="Code à usage unique")).to_be_visible()
    assert_accessible(page)
    shoot(page, "login-code-or-passkey")
    page.wait_for_function("document.documentElement.dataset.passkeysReady === '1'")
    page.get_by_role("button", name="Utiliser ma clé d'accès").click()
    page.wait_for_url(site + "/messagerie/")
    assert AccountSession.objects.filter(user=user, method="password_passkey").exists()


def test_staff_are_told_to_enrol_a_passkey_then_reach_the_admin_with_it(
    site: str, page: Page, settings: Any
) -> None:
    settings.STAFF_REQUIRE_PHISHING_RESISTANT = True
    page.set_viewport_size(DESKTOP)
    staff = f.staff()
    virtual_authenticator(page)
    log_in(page, site, staff, next="/admin/")
    expect(
        page.get_by_role("heading", name="Clé d'accès requise pour l'administration")
    ).to_be_visible()
    assert_accessible(page)
    shoot(page, "staff-passkey-required")
    page.wait_for_function("document.documentElement.dataset.passkeysReady === '1'")
    page.get_by_label("Nom de la nouvelle clé d'accès").fill("Clé de l'équipe")
    page.get_by_role("button", name="Ajouter une clé d'accès").click()
    expect(page.get_by_role("button", name="Confirmer avec ma clé d'accès")).to_be_visible()
    page.wait_for_function("document.documentElement.dataset.passkeysReady === '1'")
    page.get_by_role("button", name="Confirmer avec ma clé d'accès").click()
    page.wait_for_url(site + "/admin/")
    expect(page.get_by_role("heading", name="Tableau de bord de l'équipe")).to_be_visible()
