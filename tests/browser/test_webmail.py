"""The webmail in real Chromium: a doctor writes to a nurse with a PDF, the nurse answers."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from axe_playwright_python.sync_playwright import Axe
from django.conf import settings
from django_otp.oath import totp
from playwright.sync_api import Browser, Page, expect

from accounts.models import User
from mailboxes import services
from mailboxes.models import HostedDomain, Mailbox
from mssante import demo
from mssante.lib import mime
from tests import factories

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]
SHOTS = Path(settings.BASE_DIR) / "var" / "screenshots"
PDF = (
    b"%PDF-1.4\n1 0 obj<</Type/Catalog/Pages 2 0 R>>endobj\n"
    b"2 0 obj<</Type/Pages/Kids[]/Count 0>>endobj\ntrailer<</Root 1 0 R>>\n%%EOF\n"
)
PHONE = {"width": 375, "height": 812}
DESKTOP = {"width": 1280, "height": 900}


def account(key: str) -> demo.DemoAccount:
    return next(a for a in demo.ACCOUNTS if a.key == key)


def mailbox_of(key: str) -> Mailbox:
    """The demo account's mailbox (created here if the demo seed does not give one yet)."""
    acc = account(key)
    national = ("8" if len(acc.identifier) == 11 else "0") + acc.identifier
    user = User.objects.get(username=national)
    box = Mailbox.objects.filter(owner=user).first()
    if box is None:
        domain = HostedDomain.objects.get(name=demo.DOMAINS[acc.extra["domain"]][0])
        box = services.create_personal_mailbox(user, domain)
    return box


# Where a demo account lands after logging in (staff land on the page they asked for).
HOMES = {"professional": "Boîte de réception", "patient": "Mes messages"}


def log_in(page: Page, base_url: str, who: str | User, *, next: str = "") -> None:
    """Log in through the pages as a demo account (its key) or a test persona (a User).

    A demo professional or patient is then on their home page; anyone else (staff, a
    persona, or with ``next``) is past the login pages.
    """
    if isinstance(who, str):
        acc = account(who)
        identifier, password, kind = acc.identifier, acc.password, acc.kind

        def code() -> str:
            return f"{totp(bytes.fromhex(acc.totp_hex)):06d}"

    else:
        persona = who
        identifier = persona.professional.id_number if persona.is_professional else persona.username
        password, kind = factories.PASSWORD, ""

        def code() -> str:
            return factories.code_for(persona)

    page.goto(base_url + "/connexion/" + (f"?next={next}" if next else ""))
    page.locator("#id_identifier").fill(identifier)
    page.locator("#id_password").fill(password)
    page.get_by_role("button", name="Continuer").click()
    page.get_by_label("Code à usage unique").fill(code())
    page.get_by_role("button", name="Se connecter").click()
    if kind in HOMES and not next:
        expect(page.get_by_role("heading", name=HOMES[kind])).to_be_visible()
    else:
        page.wait_for_url(lambda url: "/connexion/" not in url)


def assert_accessible(page: Page) -> None:
    results = Axe().run(page)
    assert results.violations_count == 0, results.generate_report()


def shoot(page: Page, name: str) -> None:
    """Screenshots at desktop and phone width; on a phone nothing may scroll sideways."""
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.set_viewport_size(DESKTOP)
    page.screenshot(path=str(SHOTS / f"webmail-{name}-desktop.png"), full_page=True)
    page.set_viewport_size(PHONE)
    assert page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"], name
    page.screenshot(path=str(SHOTS / f"webmail-{name}-phone.png"), full_page=True)
    page.set_viewport_size(DESKTOP)


def test_a_doctor_sends_a_pdf_to_a_nurse_who_reads_it_and_replies(
    live_server, page: Page, browser: Browser
) -> None:
    demo.seed()
    doctor_box, nurse_box = mailbox_of("doctor"), mailbox_of("nurse")
    base = live_server.url
    page.set_viewport_size(DESKTOP)

    # The doctor writes, with a small PDF attached.
    log_in(page, base, "doctor")
    page.get_by_role("button", name="Écrire un message").click()
    expect(page.get_by_role("heading", name="Nouveau message")).to_be_visible()
    page.locator("#id_to").fill(nurse_box.address)
    page.locator("#id_subject").fill("Compte rendu de consultation")
    page.locator("#id_text").fill("Bonjour Julien,\nvoici le compte rendu.\nClaire")
    page.locator("#upload-files").set_input_files(
        {"name": "compte-rendu.pdf", "mimeType": "application/pdf", "buffer": PDF}
    )
    expect(page.locator("#draft-files")).to_contain_text("compte-rendu.pdf")
    expect(page.locator("#draft-status")).to_contain_text("Brouillon enregistré")
    assert_accessible(page)
    shoot(page, "compose")
    page.get_by_role("button", name="Envoyer").click()
    expect(page.get_by_text("Message envoyé.")).to_be_visible()

    # The nurse sees it unread, in bold, opens it and downloads the PDF.
    nurse_context = browser.new_context(
        viewport=DESKTOP, accept_downloads=True, locale="fr-FR", timezone_id="Europe/Paris"
    )
    nurse = nurse_context.new_page()
    log_in(nurse, base, "nurse")
    row = nurse.locator("tr.webmail-row", has_text="Compte rendu de consultation")
    expect(row).to_have_class("webmail-row webmail-row--unread")
    weight = row.locator("td.webmail-list__subject").evaluate("e => getComputedStyle(e).fontWeight")
    assert int(weight) >= 700
    assert_accessible(nurse)
    shoot(nurse, "list")
    row.get_by_role("link", name="Compte rendu de consultation").click()
    expect(nurse.get_by_role("heading", name="Compte rendu de consultation")).to_be_visible()
    expect(nurse.locator(".webmail-body")).to_contain_text("voici le compte rendu.")
    assert_accessible(nurse)
    shoot(nurse, "read")
    with nurse.expect_download() as download_info:
        nurse.get_by_role("link", name="Télécharger compte-rendu.pdf").click()
    download = download_info.value
    assert download.suggested_filename == "compte-rendu.pdf"
    assert Path(download.path()).read_bytes() == PDF

    # The nurse answers.
    nurse.get_by_role("button", name="Répondre", exact=True).click()
    expect(nurse.get_by_role("heading", name="Répondre")).to_be_visible()
    expect(nurse.locator("#id_to")).to_have_value(doctor_box.address)
    nurse.locator("#id_text").press("Control+Home")
    nurse.locator("#id_text").type("Bien reçu, merci.")
    nurse.get_by_role("button", name="Envoyer").click()
    expect(nurse.get_by_text("Message envoyé.")).to_be_visible()
    nurse_context.close()

    # The doctor finds the answer in the same conversation.
    page.goto(base + "/messagerie/")
    page.get_by_role("link", name="Re : Compte rendu de consultation").click()
    expect(page.locator(".webmail-body")).to_contain_text("Bien reçu, merci.")
    page.get_by_role("link", name="Voir la conversation (2 messages)").click()
    thread = page.locator(".webmail-thread__item")
    expect(thread).to_have_count(2)
    expect(thread.nth(0)).to_contain_text("voici le compte rendu.")
    expect(thread.nth(1)).to_contain_text("Bien reçu, merci.")
    assert_accessible(page)
    shoot(page, "conversation")


def test_an_html_message_shows_sanitised_with_remote_images_on_request(
    live_server, page: Page
) -> None:
    demo.seed()
    doctor_box, nurse_box = mailbox_of("doctor"), mailbox_of("nurse")
    services.submit_message(
        mailbox=nurse_box,
        author=nurse_box.owner,
        to=[doctor_box.address],
        cc=[],
        subject="Lettre de liaison",
        text="Version texte",
        html=(
            "<h1>Lettre de liaison</h1><p>Patient <b>stable</b>.</p>"
            '<img src="https://images.invalid/logo.png" alt="Logo du cabinet">'
            "<script>document.title='piraté'</script>"
            "<img src=x onerror=\"document.title='piraté'\">"
        ),
    )
    page.set_viewport_size(DESKTOP)
    log_in(page, live_server.url, "doctor")
    page.get_by_role("link", name="Lettre de liaison").click()
    body = page.locator(".webmail-body--html")
    expect(body).to_contain_text("Patient stable.")
    expect(body.locator("img[src^='https://']")).to_have_count(0)
    assert "piraté" not in page.title()
    assert_accessible(page)
    shoot(page, "read-html")
    page.get_by_role("link", name="Afficher les images distantes").click()
    # Through the portal's image proxy, never fetched by the browser from the sender's host.
    expect(page.locator(".webmail-body--html img[alt='Logo du cabinet']")).to_have_attribute(
        "src", re.compile(r"^/messagerie/message/\d+/image/\?u=")
    )
    assert "piraté" not in page.title()


def test_a_doctor_files_trashes_restores_and_searches_a_message(live_server, page: Page) -> None:
    demo.seed()
    doctor_box, nurse_box = mailbox_of("doctor"), mailbox_of("nurse")
    services.submit_message(
        mailbox=nurse_box,
        author=nurse_box.owner,
        to=[doctor_box.address],
        cc=[],
        subject="Bilan cardiaque",
        text="Ci-joint l'ECG.",
        attachments=[mime.Attachment("ecg-dupont.pdf", "application/pdf", PDF)],
    )
    page.set_viewport_size(DESKTOP)
    log_in(page, live_server.url, "doctor")

    page.get_by_label("Nouveau dossier").fill("Cardiologie")
    page.get_by_role("button", name="Créer").click()
    expect(page.get_by_role("heading", name="Cardiologie", exact=True)).to_be_visible()

    page.get_by_role("link", name="Boîte de réception").click()
    page.get_by_role("link", name="Bilan cardiaque").click()
    page.get_by_label("Déplacer vers").select_option(label="Cardiologie")
    page.get_by_role("button", name="Déplacer", exact=True).click()
    expect(page.get_by_text("Message déplacé dans « Cardiologie ».")).to_be_visible()
    page.get_by_role("link", name="Cardiologie", exact=True).click()
    expect(page.locator("tr.webmail-row")).to_have_count(1)
    page.get_by_text("Gérer ce dossier").click()
    assert_accessible(page)
    shoot(page, "folder")

    page.get_by_role("link", name="Bilan cardiaque").click()
    page.get_by_role("button", name="Supprimer").click()
    expect(page.get_by_text("Message mis à la corbeille.")).to_be_visible()
    page.get_by_role("link", name="Corbeille").click()
    page.get_by_role("link", name="Bilan cardiaque").click()
    page.get_by_role("button", name="Restaurer").click()
    expect(page.get_by_text("Message restauré.")).to_be_visible()
    expect(page.locator("tr.webmail-row", has_text="Bilan cardiaque")).to_have_count(1)

    page.get_by_label("Rechercher dans la boîte").fill("ecg-dupont")
    page.get_by_label("Rechercher dans la boîte").press("Enter")
    expect(page.get_by_role("heading", name="Recherche : « ecg-dupont »")).to_be_visible()
    row = page.locator("tr.webmail-row", has_text="Bilan cardiaque")
    expect(row).to_contain_text("Cardiologie")
    assert_accessible(page)
    shoot(page, "search")
