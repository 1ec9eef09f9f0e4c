"""The compose autocomplete in real Chromium: type "dup", pick the colleague, the field is filled."""

from __future__ import annotations

import pytest
from playwright.sync_api import Page, expect

from directory.tests import factories as df
from tests import factories as f
from tests.browser.test_webmail import log_in

pytestmark = [
    pytest.mark.browser,
    pytest.mark.django_db(transaction=True),
    pytest.mark.urls("directory.tests.urls_browser"),
]


def test_typing_dup_suggests_the_colleague_and_picking_fills_the_recipients(
    live_server, page: Page
):
    df.entry(
        address="jean.dupont@medecin.mssante.fr",
        first_name="Jean",
        last_name="DUPONT",
        profession_label="Médecin",
        city="BORDEAUX",
    )
    df.entry(address="secret@medecin.mssante.fr", last_name="DUPUIS", kind="APP")
    log_in(page, live_server.url, f.professional())
    page.goto(live_server.url + "/test/destinataires/")
    field = page.get_by_role("combobox", name="Destinataires")
    field.fill("alice@medecin.mssante.fr, dup")
    option = page.get_by_role("option", name="Jean DUPONT")
    expect(option).to_be_visible()
    expect(page.get_by_role("option")).to_have_count(1)
    expect(field).to_have_attribute("aria-expanded", "true")
    field.press("ArrowDown")
    expect(option).to_have_attribute("aria-selected", "true")
    field.press("Enter")
    expect(field).to_have_value("alice@medecin.mssante.fr, jean.dupont@medecin.mssante.fr, ")
    expect(field).to_have_attribute("aria-expanded", "false")


def test_the_search_page_with_results_has_no_accessibility_violation(live_server, page: Page):
    from axe_playwright_python.sync_playwright import Axe

    for i in range(25):
        df.entry(
            address=f"helene{i}@medecin.mssante.fr", first_name="HELENE", last_name=f"LEGER{i:02d}"
        )
    log_in(page, live_server.url, f.professional())
    page.goto(live_server.url + "/annuaire/")
    page.get_by_label("Nom ou adresse").fill("Hélène")
    page.get_by_role("button", name="Rechercher").click()
    expect(page.get_by_role("heading", name="25 résultats")).to_be_visible()
    expect(page.get_by_role("cell", name="helene0@medecin.mssante.fr")).to_be_visible()
    results = Axe().run(page)
    assert results.violations_count == 0, results.generate_report()
