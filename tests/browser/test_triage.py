"""Triage in Chromium with the keyboard only: select results, mark them read, file them."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from django.conf import settings
from playwright.sync_api import Page, expect

from mailboxes import services
from mailboxes.models import Entry, Folder, Mailbox
from mssante import demo
from mssante.lib import mime, xdm
from tests.browser.test_webmail import DESKTOP, PDF, PHONE, assert_accessible, log_in, mailbox_of
from tests.personas import send

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

DOCS = Path(settings.BASE_DIR) / "docs" / "screenshots"


def _scripted(page: Page) -> None:
    """Wait for static/js/triage.js to have run (it shows the shortcuts' button), and for the
    page's other scripts (DSFR's) to have started: a key typed before is not heard."""
    expect(page.locator(".triage-help-btn")).to_be_visible()
    page.wait_for_load_state()


def _shoot(page: Page, name: str) -> None:
    DOCS.mkdir(parents=True, exist_ok=True)
    page.set_viewport_size(DESKTOP)
    page.screenshot(path=str(DOCS / f"triage-{name}-desktop.png"), full_page=True)
    page.set_viewport_size(PHONE)
    assert page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"], name
    page.screenshot(path=str(DOCS / f"triage-{name}-phone.png"), full_page=True)
    page.set_viewport_size(DESKTOP)


def test_a_doctor_triages_results_with_the_keyboard_only(live_server, page: Page) -> None:
    demo.seed()
    doctor, nurse = mailbox_of("doctor"), mailbox_of("nurse")
    for n in range(4):
        send(nurse, [doctor.address], subject=f"Résultat d'analyse {n}")
    labo = services.create_folder(doctor, "Biologie", by=doctor.owner)
    # Subjects are sealed at rest: matched in Python, never in SQL.
    ours = [
        e
        for e in Entry.objects.filter(mailbox=doctor).select_related("message")
        if e.message.subject.startswith("Résultat d'analyse")
    ]
    page.set_viewport_size(DESKTOP)
    log_in(page, live_server.url, "doctor")
    expect(page.locator("#triage-form")).to_be_visible()
    _scripted(page)
    assert_accessible(page)
    page.set_viewport_size(PHONE)
    assert_accessible(page)
    page.set_viewport_size(DESKTOP)

    # "?" opens the help; Escape closes it.
    page.keyboard.press("?")
    expect(page.get_by_role("heading", name="Raccourcis clavier")).to_be_visible()
    # Once DSFR's opening transition is over (axe reads colours mid-fade otherwise).
    page.wait_for_timeout(600)
    assert_accessible(page)
    DOCS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(DOCS / "triage-shortcuts-desktop.png"))
    page.keyboard.press("Escape")
    expect(page.get_by_role("heading", name="Raccourcis clavier")).to_be_hidden()

    # j to the first rows, x to select three of them, Shift+I: marked read.
    page.keyboard.press("j")
    page.keyboard.press("x")
    page.keyboard.press("j")
    page.keyboard.press("x")
    page.keyboard.press("j")
    page.keyboard.press("x")
    expect(page.locator("#triage-count")).to_have_text("3 messages sélectionnés")
    page.keyboard.press("Shift+I")
    expect(page.get_by_text("3 messages marqués comme lus.")).to_be_visible()
    assert Entry.objects.filter(pk__in=[e.pk for e in ours], seen=True).count() == 3

    # Select the same three again, v opens the move menu, Tab to "Biologie", Enter.
    for _n in range(3):
        page.keyboard.press("j")
        page.keyboard.press("x")
    page.keyboard.press("v")
    menu = page.locator("#triage-move")
    expect(menu).to_have_attribute("open", "")
    target = menu.get_by_role("button", name="Biologie")
    for _n in range(10):
        if target.evaluate("el => el === document.activeElement"):
            break
        page.keyboard.press("Tab")
    page.keyboard.press("Enter")
    expect(page.get_by_text("3 messages déplacés dans « Biologie ».")).to_be_visible()
    assert Entry.objects.filter(folder=labo).count() == 3
    _shoot(page, "list")

    # o opens the current message, u comes back to the list.
    page.keyboard.press("j")
    page.keyboard.press("o")
    expect(page.get_by_role("link", name=re.compile("Retour à"))).to_be_visible()
    page.wait_for_load_state()  # the shortcuts listen once the page's scripts have run
    page.keyboard.press("u")
    expect(page.locator("#triage-form")).to_be_visible()
    page.wait_for_load_state()
    # e on a message archives it.
    page.keyboard.press("j")
    page.keyboard.press("o")
    expect(page.get_by_role("link", name=re.compile("Retour à"))).to_be_visible()
    page.wait_for_load_state()
    page.keyboard.press("e")
    expect(page.get_by_text("Message déplacé dans « Archives ».")).to_be_visible()

    # Typing in the search field is never a shortcut.
    page.keyboard.press("/")
    page.keyboard.type("jx")
    expect(page.locator("#webmail-search-input")).to_have_value("jx")
    assert Entry.objects.filter(folder=labo).count() == 3
    assert Folder.objects.filter(mailbox=doctor, role=Folder.Role.INBOX).exists()


def test_results_grouped_by_patient_are_one_click_away(live_server, page: Page) -> None:
    demo.seed()
    doctor = mailbox_of("doctor")
    patient = demo.patient_identity()
    # The demo's own lab (an applicative box), as `make demo` has it.
    lab = Mailbox.objects.get(address="laboratoire@hopital-demo.mssante.fr")
    who = xdm.Patient(
        ins=patient.ins,
        oid=patient.oid,
        birth_name=patient.birth_name,
        first_names=patient.first_names,
        birth_date=patient.birth_date.strftime("%Y%m%d"),
        sex=patient.sex,
    )
    for subject in ("NFS plaquettes", "Ionogramme sanguin", "Bilan lipidique"):
        package = xdm.build(
            [xdm.Document("cr.pdf", "application/pdf", PDF, "11502-2", "Biologie")],
            patient=who,
            author=xdm.Author("810000000001", "BERNARD", "Sophie"),
            source_oid="2.25.1",
        )
        send(
            lab,
            [doctor.address],
            subject=subject,
            attachments=[mime.Attachment(xdm.FILENAME, "application/zip", package)],
        )
    page.set_viewport_size(DESKTOP)
    log_in(page, live_server.url, "doctor")
    chip = page.locator("a.triage-patient").first
    expect(chip).to_contain_text(patient.birth_name.upper())
    page.get_by_role("link", name="Tout sélectionner").click()
    expect(page.locator("#triage-count")).to_contain_text("messages sélectionnés")
    _shoot(page, "list-selected")

    page.get_by_role("link", name="Résultats par patient").click()
    expect(page.get_by_role("heading", name="Résultats par patient")).to_be_visible()
    assert_accessible(page)
    page.set_viewport_size(PHONE)
    assert_accessible(page)
    _shoot(page, "patients")

    page.get_by_role("link", name=re.compile(patient.birth_name.upper())).click()
    expect(page.get_by_role("heading", name=re.compile("Tous les résultats de"))).to_be_visible()
    expect(page.locator("tbody tr.webmail-row")).to_have_count(3)
    assert_accessible(page)
    page.set_viewport_size(PHONE)
    assert_accessible(page)
    _shoot(page, "patient-results")


def test_rows_drop_onto_a_folder_and_new_mail_shows_without_reload(live_server, page: Page) -> None:
    demo.seed()
    doctor, nurse = mailbox_of("doctor"), mailbox_of("nurse")
    send(nurse, [doctor.address], subject="À classer")
    page.set_viewport_size(DESKTOP)
    log_in(page, live_server.url, "doctor")
    _scripted(page)
    row = page.locator("tbody tr.webmail-row", has_text="À classer")
    row.drag_to(page.locator('a.webmail-folder-link[data-role="archive"]'))
    expect(page.get_by_text("1 message déplacé dans « Archives ».")).to_be_visible()
    entry = next(
        e
        for e in Entry.objects.filter(mailbox=doctor).select_related("message", "folder")
        if e.message.subject == "À classer"
    )
    assert entry.folder.role == Folder.Role.ARCHIVE

    # A message arrives: the list says so politely when the page comes back into view,
    # and no row moves until the user asks.
    rows_before = page.locator("tbody tr.webmail-row").count()
    send(nurse, [doctor.address], subject="Arrivé pendant la lecture")
    page.evaluate("window.dispatchEvent(new Event('focus'))")
    notice = page.locator("#triage-new")
    expect(notice).to_have_text("1 nouveau message — afficher")
    assert page.locator("tbody tr.webmail-row").count() == rows_before
    notice.get_by_role("link", name="afficher").click()
    expect(page.get_by_role("link", name="Arrivé pendant la lecture")).to_be_visible()


def test_shortcuts_can_be_turned_off(live_server, page: Page) -> None:
    demo.seed()
    doctor, nurse = mailbox_of("doctor"), mailbox_of("nurse")
    send(nurse, [doctor.address], subject="Un message")
    page.set_viewport_size(DESKTOP)
    log_in(page, live_server.url, "doctor")
    _scripted(page)
    page.keyboard.press("j")
    expect(page.locator("tr.triage-row--current")).to_have_count(1)
    # The help dialog's switch turns them off (localStorage), "?" still opens the help.
    page.keyboard.press("?")
    page.wait_for_timeout(600)
    page.get_by_text("Raccourcis clavier activés").click()
    page.keyboard.press("Escape")
    page.reload()
    _scripted(page)
    page.keyboard.press("j")
    expect(page.locator("tr.triage-row--current")).to_have_count(0)
    # A page (a user's preference) can turn them off too: <html data-shortcuts="off">.
    page.evaluate("localStorage.removeItem('mssante.shortcuts')")
    page.reload()
    _scripted(page)
    page.evaluate("document.documentElement.dataset.shortcuts = 'off'")
    page.keyboard.press("j")
    expect(page.locator("tr.triage-row--current")).to_have_count(0)
