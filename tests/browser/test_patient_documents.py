"""Mes documents on a phone: the demo patient finds her documents filed, opens, hides, adds."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from axe_playwright_python.sync_playwright import Axe
from django.conf import settings
from playwright.sync_api import Browser, Page, expect

from mailboxes.models import Mailbox
from patients.models_documents import PatientDocument
from tests.browser.test_webmail import log_in, mailbox_of
from trust.scanning import EICAR

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]
DOCS = Path(settings.BASE_DIR) / "docs" / "screenshots"
PHONE = {"width": 375, "height": 812}
PNG = (
    b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00\x00\x01\x00\x00\x00\x01\x08\x06\x00\x00\x00"
    b"\x1f\x15\xc4\x89\x00\x00\x00\rIDATx\x9cc\xf8\xcf\xc0\xf0\x1f\x00\x05\x00\x01\xff\x89\x99"
    b"=\x1d\x00\x00\x00\x00IEND\xaeB`\x82"
)


def assert_accessible(page: Page) -> None:
    results = Axe().run(page)
    assert results.violations_count == 0, results.generate_report()


def shoot(page: Page, name: str) -> None:
    """A full-page screenshot at 375 px into docs/screenshots; nothing scrolls sideways."""
    assert page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"], name
    page.screenshot(path=str(DOCS / f"patient-documents-{name}-phone.png"), full_page=True)


def _seed() -> None:
    from mssante import demo, demo_mail
    from patients import demo_documents

    seeded = {a["key"]: a for a in demo.seed()}
    doctor_box = mailbox_of("doctor")
    patient_box = Mailbox.objects.get(address=seeded["patient"]["address"])
    demo_documents.seed_demo_documents(
        doctor=doctor_box.owner,
        doctor_box=doctor_box,
        patient=patient_box.owner,
        patient_box=patient_box,
        pdf=demo_mail._pdf,
    )


def test_the_demo_patient_finds_her_documents_filed_and_manages_them_on_a_phone(
    live_server, browser: Browser
) -> None:
    _seed()
    phone = browser.new_context(viewport=PHONE, locale="fr-FR", timezone_id="Europe/Paris")
    page = phone.new_page()
    log_in(page, live_server.url, "patient")

    # Filed by type and date: the XDM documents with their metadata, the attachment, hers.
    page.get_by_role("link", name="Mes documents").click()
    expect(page.get_by_role("heading", name="Mes documents", exact=True)).to_be_visible()
    cards = page.locator(".patient-document")
    expect(cards).to_have_count(5)
    consultation = cards.filter(has_text="Compte rendu de consultation")
    expect(consultation).to_contain_text("Claire MARTIN")
    expect(cards.filter(has_text="Radiographie thoracique")).to_contain_text("Imagerie")
    assert_accessible(page)
    shoot(page, "list")

    # Filter by type, then search.
    page.get_by_role("link", name=re.compile(r"^Résultats \(1\)")).click()
    expect(cards).to_have_count(1)
    expect(cards.first).to_contain_text("Bilan sanguin")
    assert_accessible(page)
    shoot(page, "results")
    page.get_by_role("link", name=re.compile(r"^Tous")).click()
    page.get_by_label("Rechercher dans mes documents").fill("radio")
    page.get_by_role("button", name="Rechercher").click()
    expect(cards).to_have_count(1)
    expect(cards.first).to_contain_text("Radiographie thoracique")
    page.get_by_role("link", name="Mes documents").click()

    # A PDF opens in the sandboxed preview; a document downloads as a file.
    with phone.expect_page() as opened:
        consultation.get_by_role("link", name=re.compile("^Ouvrir")).click()
    preview = opened.value
    preview.wait_for_load_state()
    assert re.search(r"/patient/documents/\d+/apercu/$", preview.url)
    response = preview.request.get(preview.url)
    assert response.headers["content-type"] == "application/pdf"
    assert "sandbox" in response.headers["content-security-policy"]
    assert response.body().startswith(b"%PDF-")
    preview.close()
    prescription = cards.filter(has_text="ordonnance.pdf")
    with page.expect_download() as downloaded:
        prescription.get_by_role("link", name=re.compile("^Télécharger")).click()
    assert downloaded.value.suggested_filename == "ordonnance.pdf"

    # The structured (CDA) results read as text in the page.
    cards.filter(has_text="Bilan sanguin").get_by_role("link", name=re.compile("^Lire")).click()
    expect(page.locator(".patient-document__text")).to_contain_text("Cholestérol LDL")
    assert_accessible(page)
    shoot(page, "read")
    page.get_by_role("link", name="Retour à mes documents").click()

    # Hidden: out of the list, under "Documents masqués", and shown again.
    prescription.get_by_role("button", name=re.compile("^Masquer")).click()
    expect(page.get_by_text("Le document est masqué.")).to_be_visible()
    expect(cards).to_have_count(4)
    page.get_by_role("link", name="Documents masqués (1)").click()
    expect(page.get_by_role("heading", name="Documents masqués")).to_be_visible()
    expect(cards).to_have_count(1)
    assert_accessible(page)
    shoot(page, "hidden")
    cards.first.get_by_role("button", name=re.compile("^Afficher de nouveau")).click()
    expect(page.get_by_text("de nouveau affiché")).to_be_visible()
    page.get_by_role("link", name="Retour à mes documents").click()
    expect(cards).to_have_count(5)

    # She adds a scanned prescription; a file the antivirus flags is refused, in French.
    page.get_by_role("link", name="Ajouter un document").click()
    expect(page.get_by_role("heading", name="Ajouter un document")).to_be_visible()
    assert_accessible(page)
    page.get_by_label("Fichier").set_input_files(
        {"name": "ordonnance-scan.pdf", "mimeType": "application/pdf", "buffer": EICAR}
    )
    page.get_by_role("button", name="Ajouter à mes documents").click()
    expect(page.get_by_role("alert")).to_contain_text("l'antivirus y a détecté un virus")
    assert_accessible(page)
    shoot(page, "refused")
    page.get_by_label("Fichier").set_input_files(
        {"name": "ordonnance-kine.png", "mimeType": "image/png", "buffer": PNG}
    )
    page.get_by_label("Type de document").select_option("ordonnance")
    page.get_by_label("Titre (facultatif)").fill("Ordonnance de kinésithérapie")
    shoot(page, "add")
    page.get_by_role("button", name="Ajouter à mes documents").click()
    expect(page.get_by_text("est ajouté à vos documents")).to_be_visible()
    added = cards.filter(has_text="Ordonnance de kinésithérapie")
    expect(added).to_contain_text("Ajouté par vous")
    expect(cards).to_have_count(6)
    assert PatientDocument.objects.filter(source=PatientDocument.Source.ADDED).count() == 2
    phone.close()
