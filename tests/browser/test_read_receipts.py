"""Read receipts in Chromium: asked in compose, answered "sur demande", shown on the timeline."""

from __future__ import annotations

import pytest
from playwright.sync_api import Browser, Page, expect

from mailboxes import services
from mailboxes.models import ReceiptPreference
from mssante import demo
from tests.browser.test_webmail import (
    DESKTOP,
    PHONE,
    assert_accessible,
    log_in,
    mailbox_of,
    shoot,
)

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_a_read_receipt_asked_answered_on_request_and_shown_on_the_timeline(
    live_server, page: Page, browser: Browser
) -> None:
    demo.seed()
    nurse_box = mailbox_of("nurse")
    mailbox_of("doctor")
    base = live_server.url
    page.set_viewport_size(DESKTOP)

    # The nurse chooses receipts "sur demande" in her preferences.
    nurse_context = browser.new_context(
        viewport=DESKTOP, locale="fr-FR", timezone_id="Europe/Paris"
    )
    nurse = nurse_context.new_page()
    log_in(nurse, base, "nurse")
    nurse.get_by_role("link", name="Préférences").click()
    expect(nurse.get_by_role("heading", name="Préférences")).to_be_visible()
    assert_accessible(nurse)
    shoot(nurse, "preferences")
    nurse.locator("label[for=id_read_receipts_1]").click()
    nurse.get_by_role("button", name="Enregistrer").click()
    expect(nurse.get_by_text("Préférences enregistrées.")).to_be_visible()
    assert nurse_box.owner is not None
    assert services.receipt_mode(nurse_box.owner) == ReceiptPreference.Mode.ON_REQUEST

    # The doctor writes and asks for a read receipt.
    log_in(page, base, "doctor")
    page.get_by_role("button", name="Écrire un message").click()
    page.locator("#id_to").fill(nurse_box.address)
    page.locator("#id_subject").fill("Résultats à lire")
    page.locator("#id_text").fill("Merci de confirmer la lecture.")
    page.locator("label[for=read-receipt]").click()
    expect(page.locator("#read-receipt")).to_be_checked()
    expect(page.locator("#draft-status")).to_contain_text("Brouillon enregistré")
    assert_accessible(page)
    page.get_by_role("button", name="Envoyer").click()
    expect(page.get_by_text("Message envoyé.")).to_be_visible()

    # The nurse is asked, and sends it.
    nurse.goto(base + "/messagerie/")
    nurse.get_by_role("link", name="Résultats à lire").click()
    expect(nurse.get_by_text("L'expéditeur demande un accusé de lecture")).to_be_visible()
    assert_accessible(nurse)
    shoot(nurse, "receipt-request")
    nurse.get_by_role("button", name="Envoyer l'accusé de lecture").click()
    expect(nurse.get_by_text("Accusé de lecture envoyé.")).to_be_visible()
    nurse_context.close()

    # The doctor sees the timeline in the Sent folder: delivered, then read.
    page.goto(base + "/messagerie/")
    page.locator(".webmail-folder-link[data-role='sent']").first.click()
    page.get_by_role("link", name="Résultats à lire").click()
    steps = page.locator(".webmail-timeline__step")
    expect(steps.first).to_contain_text("Déposé")
    expect(page.locator(".webmail-timeline__step--delivered")).to_contain_text("Distribué")
    expect(page.locator(".webmail-timeline__step--read")).to_contain_text("Lu le")
    assert_accessible(page)
    shoot(page, "timeline")
    page.set_viewport_size(PHONE)
    expect(page.locator(".webmail-timeline__step--read")).to_be_visible()
