"""IHE XDM in real Chromium: "Joindre au dossier du patient", then the "Documents structurés" panel."""

from __future__ import annotations

import pytest
from playwright.sync_api import Browser, Page, expect

from mssante import demo
from tests.browser.test_webmail import (
    DESKTOP,
    PDF,
    assert_accessible,
    log_in,
    mailbox_of,
    shoot,
)

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_a_doctor_attaches_documents_for_the_patient_record_and_the_nurse_reads_them(
    live_server, page: Page, browser: Browser
) -> None:
    demo.seed()
    nurse_box = mailbox_of("nurse")
    mailbox_of("doctor")
    base = live_server.url
    page.set_viewport_size(DESKTOP)

    log_in(page, base, "doctor")
    page.get_by_role("button", name="Écrire un message").click()
    page.locator("#id_to").fill(nurse_box.address)
    page.locator("#id_subject").fill("Bilan biologique")
    page.locator("#id_text").fill("Bonjour,\nle bilan de Mme Moreau.")
    page.locator("#upload-files").set_input_files(
        {"name": "bilan.pdf", "mimeType": "application/pdf", "buffer": PDF}
    )
    expect(page.locator("#draft-files")).to_contain_text("bilan.pdf")
    expect(page.locator("#draft-status")).to_contain_text("Brouillon enregistré")
    page.get_by_role("link", name="Joindre au dossier du patient").click()
    expect(page.get_by_role("heading", name="Joindre au dossier du patient")).to_be_visible()
    assert_accessible(page)
    shoot(page, "xdm")
    page.get_by_label("Matricule INS").fill("279035121518989")
    page.get_by_label("Type d'INS (OID)").select_option("1.2.250.1.213.1.4.10")
    page.get_by_label("Nom de naissance").fill("MOREAU")
    page.get_by_label("Prénoms").fill("Lucie Anne")
    page.get_by_label("Date de naissance").fill("1990-05-02")
    page.get_by_label("Sexe").select_option("F")
    page.get_by_label("Type de document").select_option("11502-2")
    page.locator("label", has_text="bilan.pdf").click()
    page.get_by_role("button", name="Joindre au message").click()
    expect(page.get_by_text("Documents joints au dossier du patient")).to_be_visible()
    expect(page.locator("#draft-files")).to_contain_text("IHE_XDM.ZIP")
    assert_accessible(page)
    page.get_by_role("button", name="Envoyer").click()
    expect(page.get_by_text("Message envoyé.")).to_be_visible()

    nurse_context = browser.new_context(viewport=DESKTOP, locale="fr-FR")
    nurse = nurse_context.new_page()
    log_in(nurse, base, "nurse")
    nurse.get_by_role("link", name="Bilan biologique").click()
    panel = nurse.locator(".webmail-structured")
    expect(panel).to_contain_text("Documents structurés")
    expect(panel).to_contain_text("Lucie Anne MOREAU")
    expect(panel).to_contain_text("1.2.250.1.213.1.4.10")
    expect(panel.get_by_role("link", name="Aperçu du PDF")).to_be_visible()
    assert_accessible(nurse)
    shoot(nurse, "structured")
    nurse_context.close()
