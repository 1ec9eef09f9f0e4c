"""Login in real Chromium: password, one-time code, landing; accessibility of the pages."""

from __future__ import annotations

from pathlib import Path

import pytest
from axe_playwright_python.sync_playwright import Axe
from django.conf import settings
from django_otp.oath import totp
from playwright.sync_api import Page, expect

from mssante import demo
from tests import factories as f

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]
SHOTS = Path(settings.BASE_DIR) / "var" / "screenshots"


def assert_accessible(page: Page) -> None:
    results = Axe().run(page)
    assert results.violations_count == 0, results.generate_report()


def test_a_demo_professional_logs_in_with_password_and_totp(live_server, page: Page):
    demo.seed()
    doctor = next(a for a in demo.ACCOUNTS if a.key == "doctor")
    page.goto(live_server.url + "/")
    page.locator("#id_identifier").fill(doctor.identifier)
    page.locator("#id_password").fill(doctor.password)
    page.get_by_role("button", name="Continuer").click()
    expect(page.get_by_role("heading", name="Code à usage unique")).to_be_visible()
    page.get_by_label("Code à usage unique").fill(f"{totp(bytes.fromhex(doctor.totp_hex)):06d}")
    page.get_by_role("button", name="Se connecter").click()
    expect(page.get_by_role("heading", name="Messagerie", exact=True)).to_be_visible()
    assert page.url.endswith("/messagerie/")


def test_the_login_code_and_enrolment_pages_have_no_accessibility_violation(
    live_server, page: Page
):
    page.goto(live_server.url + "/connexion/")
    assert_accessible(page)
    page.get_by_role("button", name="Continuer").click()  # errors shown
    assert_accessible(page)
    newcomer = f.professional(enrol=False)
    page.locator("#id_identifier").fill(newcomer.professional.id_number)
    page.locator("#id_password").fill(f.PASSWORD)
    page.get_by_role("button", name="Continuer").click()
    expect(page.get_by_role("heading", name="Enregistrer votre second facteur")).to_be_visible()
    assert_accessible(page)
    enrolled = f.professional()
    page.goto(live_server.url + "/connexion/")
    page.locator("#id_identifier").fill(enrolled.professional.id_number)
    page.locator("#id_password").fill(f.PASSWORD)
    page.get_by_role("button", name="Continuer").click()
    expect(page.get_by_role("heading", name="Code à usage unique")).to_be_visible()
    assert_accessible(page)


def test_the_login_page_fits_a_phone(live_server, page: Page):
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.set_viewport_size({"width": 375, "height": 812})
    page.goto(live_server.url + "/connexion/")
    # Nothing wider than the screen: no horizontal scrolling on a phone.
    assert page.evaluate("document.documentElement.scrollWidth") <= 375
    page.screenshot(path=str(SHOTS / "login-phone.png"), full_page=True)
    page.set_viewport_size({"width": 1280, "height": 800})
    page.screenshot(path=str(SHOTS / "login-desktop.png"), full_page=True)
