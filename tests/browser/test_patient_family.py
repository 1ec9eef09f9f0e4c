"""Family (issue 17) in Chromium: Marie switches to her son Léo's space on a phone and back."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from django.conf import settings
from playwright.sync_api import Page, expect

from mssante import demo, demo_family
from tests.browser.test_webmail import DESKTOP, PHONE, assert_accessible, log_in

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

SHOTS = Path(settings.BASE_DIR) / "docs" / "screenshots"


def check_both_widths(page: Page, name: str) -> None:
    """axe finds nothing at 375 px and at desktop width; screenshots of both in docs/."""
    SHOTS.mkdir(parents=True, exist_ok=True)
    for size, suffix in ((PHONE, "phone"), (DESKTOP, "desktop")):
        page.set_viewport_size(size)
        assert page.evaluate("document.documentElement.scrollWidth") <= size["width"], name
        assert_accessible(page)
        page.screenshot(path=str(SHOTS / f"{name}-{suffix}.png"), full_page=True)
    page.set_viewport_size(PHONE)


def test_the_demo_patient_switches_to_her_sons_space_on_a_phone_and_back(
    live_server, page: Page
) -> None:
    accounts = demo.seed()
    demo_family.seed(accounts)
    base = live_server.url
    page.set_viewport_size(PHONE)
    log_in(page, base, "patient")

    # Her own space: her messages, and the switcher offering Léo's space.
    expect(page.get_by_role("heading", name="Mes messages")).to_be_visible()
    switcher = page.locator(".patient-family")
    expect(switcher.get_by_role("button", name="Mon espace (Marie)")).to_have_attribute(
        "aria-current", "true"
    )
    expect(page.get_by_text("Rappel de vaccination — Léo")).to_have_count(0)
    check_both_widths(page, "patient-family-own")

    # Léo's space: said plainly at the top, his doctor's messages.
    switcher.get_by_role("button", name="Espace de Léo").click()
    expect(page.locator(".patient-family__notice")).to_contain_text(
        "Vous consultez l'espace de Léo"
    )
    expect(switcher.get_by_role("button", name="Espace de Léo")).to_have_attribute(
        "aria-current", "true"
    )
    card = page.locator(".patient-card", has_text="Rappel de vaccination — Léo")
    expect(card).to_have_class(re.compile("patient-card--unread"))
    check_both_widths(page, "patient-family-child")

    card.get_by_role("link").click()
    expect(page.get_by_role("heading", name="Rappel de vaccination — Léo")).to_be_visible()
    expect(page.locator(".patient-body")).to_contain_text("apportez son carnet de santé")
    expect(page.locator(".patient-family__notice")).to_contain_text(
        "Vous consultez l'espace de Léo"
    )
    check_both_widths(page, "patient-family-child-message")

    # Back to her own space: Léo's messages are no longer shown.
    page.locator(".patient-family").get_by_role("button", name="Mon espace (Marie)").click()
    expect(page.get_by_text("Vous êtes dans votre propre espace.")).to_be_visible()
    expect(page.locator(".patient-family__notice")).to_have_count(0)
    expect(page.get_by_text("Rappel de vaccination — Léo")).to_have_count(0)
    assert_accessible(page)
