"""Issue 17's "done when", in one sitting on the demo that `make demo` builds (seed_demo):
the demo patient finds her documents filed, accepts the appointment Dr Martin sent (who
then sees the acceptance), revokes a connected service, switches to her son's space, and
downloads her archive, on a phone, each page free of axe violations."""

from __future__ import annotations

import io
import re
import zipfile
from pathlib import Path

import pytest
from django.conf import settings
from django.core.management import call_command
from playwright.sync_api import Browser, Page, expect

from mailboxes.models import Mailbox
from mssante import demo
from patients.models_agenda import Appointment
from patients.models_services import ServiceRevocation
from tests.browser.test_webmail import PHONE, assert_accessible, log_in

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]
LAB = "laboratoire@hopital-demo.mssante.fr"
DOCS = Path(settings.BASE_DIR) / "docs" / "screenshots"


def fits(page: Page) -> None:
    assert page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"], page.url


def test_the_demo_patient_uses_every_part_of_her_space(
    live_server, page: Page, browser: Browser
) -> None:
    call_command("seed_demo", stdout=io.StringIO())
    patient = demo.patient_identity().user
    patient_box = Mailbox.objects.get(kind=Mailbox.Kind.PATIENT, owner=patient)
    base = live_server.url
    phone = browser.new_context(
        viewport=PHONE, locale="fr-FR", timezone_id="Europe/Paris", is_mobile=True
    )
    her = phone.new_page()
    log_in(her, base, "patient")
    assert_accessible(her)
    fits(her)
    her.screenshot(path=str(DOCS / "patient-space-home-phone.png"), full_page=True)

    # Mes documents: what her doctor sent is filed by type (the XDM package's documents
    # with their own titles), beside the prescription she added herself.
    her.get_by_role("link", name="Mes documents").click()
    cards = her.locator(".patient-document")
    expect(cards.filter(has_text="Compte rendu de consultation")).to_have_count(1)
    expect(cards.filter(has_text="Radiographie thoracique")).to_contain_text("Imagerie")
    expect(cards.filter(has_text="Bilan sanguin")).to_contain_text("Résultats")
    expect(her.get_by_role("link", name=re.compile(r"^Ordonnance \("))).to_be_visible()
    assert_accessible(her)
    fits(her)

    # Mon agenda: she accepts Dr Martin's appointment.
    her.get_by_role("link", name="Mon agenda").click()
    card = her.locator(".agenda-card").first
    expect(card).to_contain_text("En attente de votre réponse")
    card.get_by_role("button", name="Accepter").click()
    expect(her.get_by_text("Rendez-vous accepté : le professionnel est prévenu.")).to_be_visible()
    assert_accessible(her)
    fits(her)
    appointment = Appointment.objects.get(mailbox=patient_box)
    assert appointment.answer == Appointment.Answer.ACCEPTED

    # Services connectés: she withdraws the lab's right to write to her.
    her.get_by_role("link", name="Services connectés").click()
    service = her.locator(".patient-service", has_text=LAB)
    service.get_by_role("button", name="Retirer l'autorisation").click()
    expect(service).to_contain_text("Autorisation retirée le")
    assert_accessible(her)
    fits(her)
    assert ServiceRevocation.objects.filter(patient_box=patient_box).count() == 1

    # Family: her son Léo's space, then back to hers.
    switcher = her.locator(".patient-family")
    switcher.get_by_role("button", name="Espace de Léo").click()
    expect(her.locator(".patient-family__notice")).to_contain_text("l'espace de Léo")
    expect(her.get_by_text("Rappel de vaccination — Léo")).to_be_visible()
    assert_accessible(her)
    fits(her)
    her.locator(".patient-family").get_by_role("button", name="Mon espace (Marie)").click()
    expect(her.get_by_text("Rappel de vaccination — Léo")).to_have_count(0)

    # Mes données: her archive, with her messages, documents' messages and exchanges.
    her.get_by_role("link", name="Mes données").click()
    assert_accessible(her)
    with her.expect_download() as downloading:
        her.get_by_role("link", name="Télécharger mon archive (ZIP)").click()
    names = zipfile.ZipFile(Path(downloading.value.path())).namelist()
    assert "README.txt" in names and "echanges/echanges.csv" in names
    assert sum(n.endswith(".eml") for n in names) >= 3
    phone.close()

    # Dr Martin sees the acceptance in her webmail.
    page.set_viewport_size({"width": 1280, "height": 900})
    log_in(page, base, "doctor")
    page.get_by_role("link", name=re.compile(r"^Accepté : ")).first.click()
    expect(page.get_by_text(re.compile(r"a accepté « "))).to_be_visible()
    assert_accessible(page)
