"""Services connectés and Mes données on a phone: the demo patient revokes the lab (whose next
message to her is refused with the reason), downloads her archive, then closes her space."""

from __future__ import annotations

import io
import json
import zipfile
from pathlib import Path

import pytest
from django.conf import settings
from playwright.sync_api import Page, expect

from audit.models import AuditEvent
from mailboxes.models import Entry, Mailbox
from mssante import demo
from mssante.lib import mime
from patients.models_services import ServiceRevocation
from tests.browser.test_webmail import PDF, PHONE, assert_accessible, log_in, mailbox_of
from tests.personas import api_post, send

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]
DOCS = Path(settings.BASE_DIR) / "docs" / "screenshots"
LAB = "laboratoire@hopital-demo.mssante.fr"


def shoot(page: Page, name: str) -> None:
    """A full-page screenshot at 375 px into docs/screenshots; nothing scrolls sideways."""
    DOCS.mkdir(parents=True, exist_ok=True)
    assert page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"], name
    page.screenshot(path=str(DOCS / f"patient-{name}-phone.png"), full_page=True)


def test_the_demo_patient_revokes_the_lab_and_downloads_her_archive(
    live_server, page: Page
) -> None:
    seeded = {a["key"]: a for a in demo.seed()}
    patient_box = Mailbox.objects.get(address=seeded["patient"]["address"])
    # Dr Martin wrote to her (with a PDF): her archive has something to hold.
    send(
        mailbox_of("doctor"),
        [patient_box.address],
        subject="Résultats de votre bilan",
        attachments=[mime.Attachment("bilan.pdf", "application/pdf", PDF)],
    )
    base = live_server.url
    page.set_viewport_size(PHONE)
    log_in(page, base, "patient")

    # Services connectés: the lab is listed, allowed; she revokes it.
    page.get_by_role("link", name="Services connectés").click()
    expect(page.get_by_role("heading", name="Services connectés")).to_be_visible()
    card = page.locator(".patient-service", has_text=LAB)
    expect(card).to_contain_text("Autorisé")
    expect(card).to_contain_text("Laboratoire de biologie médicale de démonstration")
    assert_accessible(page)
    card.get_by_role("button", name="Retirer l'autorisation").click()
    expect(page.get_by_text("ne peut plus vous écrire")).to_be_visible()
    expect(card).to_contain_text("Autorisation retirée le")
    assert_accessible(page)
    shoot(page, "services")
    assert ServiceRevocation.objects.filter(patient_box=patient_box).count() == 1

    # The lab's software writes to her: refused, with the reason, nothing delivered.
    before = Entry.objects.filter(mailbox=patient_box).count()
    assert before >= 1
    status, answer = api_post(
        base + "/api/v1/messages",
        demo.DEMO_API_TOKEN,
        {"to": [patient_box.address], "subject": "Vos résultats", "text": "Bonjour"},
        "navigateur-1",
    )
    assert status == 422 and answer["code"] == "refused"
    assert "l'autorisation de lui écrire" in answer["message"]
    assert Entry.objects.filter(mailbox=patient_box).count() == before

    # The change is in "Mes échanges de données".
    page.get_by_role("link", name="Mes échanges de données").click()
    expect(page.get_by_text("l'autorisation de vous écrire")).to_be_visible()
    assert_accessible(page)

    # Mes données: she downloads everything as one archive.
    page.get_by_role("link", name="Mes données").click()
    expect(page.get_by_role("heading", name="Mes données", exact=True)).to_be_visible()
    assert_accessible(page)
    shoot(page, "my-data")
    with page.expect_download() as downloading:
        page.get_by_role("link", name="Télécharger mon archive (ZIP)").click()
    download = downloading.value
    assert download.suggested_filename.startswith("mon-espace-sante-")
    data = Path(download.path()).read_bytes()
    archive = zipfile.ZipFile(io.BytesIO(data))
    names = archive.namelist()
    emls = [n for n in names if n.endswith(".eml")]
    assert len(emls) == before
    assert {"README.txt", "messages/index.json", "echanges/echanges.csv"} <= set(names)
    assert len(json.loads(archive.read("messages/index.json"))) == before
    assert LAB in archive.read("echanges/services-connectes.csv").decode("utf-8-sig")
    assert AuditEvent.objects.filter(action="patient.archive_downloaded").count() == 1

    # She closes her space: her password again, the checkbox; she is signed out.
    page.get_by_label("Votre mot de passe").fill(seeded["patient"]["password"])
    page.locator("label[for=id_confirm]").click()
    page.get_by_role("button", name="Fermer définitivement mon espace").click()
    expect(page.get_by_role("heading", name="Votre espace est fermé")).to_be_visible()
    assert_accessible(page)
    shoot(page, "space-closed")
    patient_box.refresh_from_db()
    assert patient_box.status == Mailbox.Status.CLOSED
    page.goto(base + "/patient/")
    assert "/connexion/" in page.url
