"""The search page in real Chromium: a word of a body, the filters, axe, screenshots."""

from __future__ import annotations

from pathlib import Path

import pytest
from django.conf import settings
from playwright.sync_api import Page, expect

from mailboxes.models import Entry
from mssante import demo
from mssante.lib import mime
from tests.browser.test_webmail import DESKTOP, PHONE, assert_accessible, log_in, mailbox_of
from tests.personas import send

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]
DOCS = Path(settings.BASE_DIR) / "docs" / "screenshots"


def shoot(page: Page, name: str) -> None:
    """The page at desktop and phone width into docs/screenshots; nothing scrolls sideways."""
    DOCS.mkdir(parents=True, exist_ok=True)
    page.set_viewport_size(DESKTOP)
    page.screenshot(path=str(DOCS / f"{name}-desktop.png"), full_page=True)
    page.set_viewport_size(PHONE)
    page.screenshot(path=str(DOCS / f"{name}-phone.png"), full_page=True)
    wide = page.evaluate(
        "[...document.querySelectorAll('body *')].filter(e => e.getBoundingClientRect().right"
        " > document.documentElement.clientWidth + 1).slice(-3).map(e => e.outerHTML.slice(0, 120))"
    )
    assert page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"], (name, wide)
    page.set_viewport_size(DESKTOP)


def test_a_doctor_finds_a_result_by_a_word_of_its_body_with_filters(
    live_server, page: Page
) -> None:
    demo.seed()
    doctor, nurse = mailbox_of("doctor"), mailbox_of("nurse")
    send(
        nurse,
        [doctor.address],
        subject="Résultats de Mme Lefèvre",
        text="Kaliémie à 5,9 mmol/l : hyperkaliémie modérée, contrôle à prévoir.",
        attachments=[mime.Attachment("bilan.txt", "text/plain", b"Bilan sanguin complet")],
    )
    send(nurse, [doctor.address], subject="Planning", text="Garde de samedi, rien d'urgent.")
    send(doctor, [nurse.address], subject="Avis", text="Merci pour l'hyperkaliémie signalée.")
    page.set_viewport_size(DESKTOP)
    log_in(page, live_server.url, "doctor")

    page.goto(f"{live_server.url}/messagerie/bal/{doctor.pk}/recherche/")
    expect(page.get_by_role("heading", name="Recherche")).to_be_visible()
    assert_accessible(page)
    page.get_by_label("Mots recherchés").fill("hyperkal")
    page.locator(".webmail-search-form").get_by_role("button", name="Rechercher").click()
    results = page.locator("table.webmail-list tbody tr")
    expect(results).to_have_count(2)
    # A sent message names its recipient, a received one its sender.
    expect(page.locator("table.webmail-list")).to_contain_text("À :")
    expect(page.locator("table.webmail-list")).to_contain_text("De :")
    assert_accessible(page)
    shoot(page, "search-results")

    # With attachments only: the result from the nurse remains.
    page.locator("label[for=id_with_attachments]").click()  # (DSFR: the label covers the box)
    page.locator(".webmail-search-form").get_by_role("button", name="Rechercher").click()
    expect(results).to_have_count(1)
    expect(results.first).to_contain_text("Résultats de Mme Lefèvre")
    expect(page.get_by_label("Avec pièces jointes")).to_be_checked()
    shoot(page, "search-filters")
    # The keyboard reaches every filter.
    page.get_by_label("Mots recherchés").focus()
    for _ in range(8):
        page.keyboard.press("Tab")
    assert page.evaluate("document.activeElement.tagName") in {"INPUT", "SELECT", "BUTTON"}
    assert_accessible(page)

    # The results are a list like any other: tick them all, archive them in one click.
    page.locator("#triage-form").get_by_role("link", name="Tout sélectionner").click()
    expect(page.locator("#triage-count")).to_have_text("1 message sélectionné")
    page.locator("#triage-form").get_by_role("button", name="Archiver").click()
    expect(page.get_by_text("1 message déplacé dans « Archives ».")).to_be_visible()
    archived = Entry.objects.get(
        mailbox=doctor, message__from_addr=nurse.address, folder__role="archive"
    )
    assert archived.message.subject == "Résultats de Mme Lefèvre"
