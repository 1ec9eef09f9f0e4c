"""Pro Santé Connect in real Chromium, against the local OpenID provider (scripts/oidc).

The whole redirect flow: our login page → the provider's authorization endpoint and its
sign-in page → back to our callback → the webmail; and the ways it goes wrong.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlencode, urljoin, urlsplit

import pytest
from axe_playwright_python.sync_playwright import Axe
from django.conf import settings
from playwright.sync_api import Page, Route, expect

from audit.models import AuditEvent
from tests import factories as f
from tests import psc_provider
from tests.personas import Person

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]
DOCS = Path(settings.BASE_DIR) / "docs" / "screenshots"
MEANS = {"cps": "Carte CPS", "ecps": "e-CPS (application mobile)", "faible": "Mot de passe seul"}


@pytest.fixture
def psc_on(settings: Any) -> str:
    url = psc_provider.require_provider()
    psc_provider.enable(settings, issuer_url=url)
    return url


def assert_accessible(page: Page) -> None:
    results = Axe().run(page)
    assert results.violations_count == 0, results.generate_report()


def psc_button(page: Page) -> Any:
    return page.get_by_role("link", name="Se connecter avec Pro Santé Connect")


def at_provider(page: Page, national_id: str, means: str = "cps") -> None:
    expect(
        page.get_by_role("heading", name="Pro Santé Connect (fournisseur de test)")
    ).to_be_visible()
    page.get_by_label("Identifiant national").fill(national_id)
    page.get_by_label(MEANS[means]).check()
    page.get_by_role("button", name="S'authentifier").click()


def test_a_professional_signs_in_with_psc_lands_in_the_webmail_and_logs_out_of_both(
    live_server, page: Page, psc_on: str, claire: Person
):
    page.goto(live_server.url + "/connexion/")
    assert_accessible(page)
    psc_button(page).click()
    at_provider(page, claire.user.professional.national_id, "cps")
    expect(page.get_by_role("heading", name="Messagerie", exact=True)).to_be_visible()
    assert page.url == live_server.url + "/messagerie/"
    event = AuditEvent.objects.filter(action="login.succeeded").latest("pk")
    assert event.actor_id == claire.user.pk
    assert (event.data["method"], event.data["level"]) == ("psc", "cps")
    # Logging out here ends the provider's session too (RP-initiated logout) and comes back.
    page.get_by_role("button", name="Se déconnecter").first.click()
    expect(page.get_by_text("Vous êtes déconnecté.")).to_be_visible()
    assert page.url == live_server.url + "/connexion/"
    psc_button(page).click()
    # Not straight back in: the provider asks who it is again.
    expect(page.get_by_label("Identifiant national")).to_be_visible()
    assert page.url.startswith(psc_on)


def test_an_ecps_below_the_strong_levels_asks_the_code_too(
    live_server, page: Page, psc_on: str, settings: Any, claire: Person
):
    settings.PSC_STRONG_LEVELS = ["cps"]
    page.goto(live_server.url + "/connexion/")
    psc_button(page).click()
    at_provider(page, claire.user.professional.national_id, "ecps")
    expect(page.get_by_role("heading", name="Code à usage unique")).to_be_visible()
    page.get_by_label("Code à usage unique").fill(f.code_for(claire.user))
    page.get_by_role("button", name="Se connecter").click()
    expect(page.get_by_role("heading", name="Messagerie", exact=True)).to_be_visible()
    assert AuditEvent.objects.filter(action="login.psc_code_asked").get().data["level"] == "ecps"


def test_an_unknown_national_id_gets_a_clear_page(live_server, page: Page, psc_on: str):
    page.goto(live_server.url + "/connexion/")
    psc_button(page).click()
    at_provider(page, "899700000000")
    expect(
        page.get_by_role("heading", name="Aucun compte pour cet identifiant national")
    ).to_be_visible()
    expect(page.get_by_text("Aucun compte n'a été créé.", exact=False)).to_be_visible()
    assert_accessible(page)
    DOCS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(DOCS / "psc-unknown-desktop.png"), full_page=True)
    page.set_viewport_size({"width": 375, "height": 812})
    assert page.evaluate("document.documentElement.scrollWidth") <= 375
    page.screenshot(path=str(DOCS / "psc-unknown-phone.png"), full_page=True)
    page.get_by_role("link", name="Retour à la connexion").click()
    expect(psc_button(page)).to_be_visible()


def divert_callback(page: Page, provider_url: str, change: Callable[[str], str]) -> None:
    """Hand the browser a changed return address when the provider sends it back to us.

    Playwright does not intercept the later hops of a redirect chain: the sign-in form's
    POST (the chain's first request) is played here, its two redirections followed with
    the context's own cookies, and the browser is sent on to ``change(callback URL)``.
    """

    def handler(route: Route) -> None:
        if route.request.method != "POST":
            route.continue_()
            return
        first = route.fetch(max_redirects=0)
        resume = urljoin(provider_url + "/", first.headers["location"])
        second = page.context.request.get(resume, max_redirects=0)
        route.fulfill(status=303, headers={"location": change(second.headers["location"])})

    page.route(f"{provider_url}/interaction/**", handler)


def test_a_return_with_a_forged_state_is_refused(live_server, page: Page, psc_on: str, claire):
    def forge(callback: str) -> str:
        query = parse_qs(urlsplit(callback).query)
        query["state"] = ["forged"]
        return f"{live_server.url}/connexion/psc/retour/?{urlencode(query, doseq=True)}"

    divert_callback(page, psc_on, forge)
    page.goto(live_server.url + "/connexion/")
    psc_button(page).click()
    at_provider(page, claire.user.professional.national_id)
    expect(page.get_by_role("alert")).to_contain_text("ne correspond à aucune connexion en cours")
    assert_accessible(page)
    # Still on the login page, with the other way in.
    expect(page.locator("#id_password")).to_be_visible()
    assert AuditEvent.objects.filter(action="login.succeeded").count() == 0


def test_an_expired_code_is_refused(live_server, page: Page, settings: Any, claire: Person):
    url = psc_provider.require_provider()
    psc_provider.enable(settings, issuer_url=url, client_id=psc_provider.SHORT_CODE_CLIENT_ID)

    def late(callback: str) -> str:
        time.sleep(2.1)  # this client's codes live one second
        return callback

    divert_callback(page, url, late)
    page.goto(live_server.url + "/connexion/")
    psc_button(page).click()
    at_provider(page, claire.user.professional.national_id)
    expect(page.get_by_role("alert")).to_contain_text("a expiré ou a déjà servi")
    assert AuditEvent.objects.filter(action="login.succeeded").count() == 0


def test_a_provider_down_is_said_and_the_password_and_code_still_work(
    live_server, page: Page, settings: Any, claire: Person
):
    psc_provider.enable(settings, issuer_url=f"http://127.0.0.1:{psc_provider.free_port()}")
    page.goto(live_server.url + "/connexion/")
    psc_button(page).click()
    expect(page.get_by_role("alert")).to_contain_text("Pro Santé Connect ne répond pas")
    assert_accessible(page)
    page.locator("#id_identifier").fill(claire.user.professional.id_number)
    page.locator("#id_password").fill(f.PASSWORD)
    page.get_by_role("button", name="Continuer").click()
    page.get_by_label("Code à usage unique").fill(f.code_for(claire.user))
    page.get_by_role("button", name="Se connecter").click()
    expect(page.get_by_role("heading", name="Messagerie", exact=True)).to_be_visible()


def test_the_login_page_with_psc_fits_a_phone(live_server, page: Page, psc_on: str):
    DOCS.mkdir(parents=True, exist_ok=True)
    page.set_viewport_size({"width": 1280, "height": 900})
    page.goto(live_server.url + "/connexion/")
    expect(psc_button(page)).to_be_visible()
    page.screenshot(path=str(DOCS / "psc-login-desktop.png"), full_page=True)
    page.set_viewport_size({"width": 375, "height": 812})
    assert page.evaluate("document.documentElement.scrollWidth") <= 375
    assert_accessible(page)
    page.screenshot(path=str(DOCS / "psc-login-phone.png"), full_page=True)
    # The button is keyboard-reachable and says where it goes.
    psc_button(page).focus()
    expect(psc_button(page)).to_be_focused()
