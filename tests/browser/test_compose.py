"""Compose and reading in Chromium (issue 14): no draft until something is typed, Cci,
a rich-text message, the print and source pages, a calendar invitation answered."""

from __future__ import annotations

from pathlib import Path

import pytest
from django.conf import settings
from playwright.sync_api import Page, expect

from mailboxes import services
from mailboxes.models import Delivery, Draft, Entry, Message
from mssante import demo
from mssante.lib import mime
from tests.browser.test_webmail import DESKTOP, PHONE, assert_accessible, log_in, mailbox_of

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

SHOTS = Path(settings.BASE_DIR) / "docs" / "screenshots"

ICS = (
    "BEGIN:VCALENDAR\r\nPRODID:-//Hôpital//FR\r\nVERSION:2.0\r\nMETHOD:REQUEST\r\n"
    "BEGIN:VEVENT\r\nUID:rcp-7@hopital\r\nSEQUENCE:0\r\nDTSTAMP:20261201T100000Z\r\n"
    "DTSTART:20261210T130000Z\r\nDTEND:20261210T140000Z\r\nSUMMARY:RCP de cardiologie\r\n"
    "LOCATION:Salle 3\\, bâtiment B\r\nORGANIZER;CN=Julien Dupont:mailto:{organizer}\r\n"
    "ATTENDEE;PARTSTAT=NEEDS-ACTION;RSVP=TRUE:mailto:{attendee}\r\n"
    "END:VEVENT\r\nEND:VCALENDAR\r\n"
)


def check_both_widths(page: Page, name: str) -> None:
    """axe finds nothing at desktop width and at 375 px; screenshots of both in docs/."""
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.set_viewport_size(DESKTOP)
    assert_accessible(page)
    page.screenshot(path=str(SHOTS / f"{name}-desktop.png"), full_page=True)
    page.set_viewport_size(PHONE)
    assert page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"], name
    assert_accessible(page)
    page.screenshot(path=str(SHOTS / f"{name}-phone.png"), full_page=True)
    page.set_viewport_size(DESKTOP)


def test_a_rich_text_message_with_cci_and_no_stray_draft(live_server, page: Page) -> None:
    demo.seed()
    doctor_box, nurse_box = mailbox_of("doctor"), mailbox_of("nurse")
    pharmacist_box = mailbox_of("pharmacist")
    base = live_server.url
    page.set_viewport_size(DESKTOP)
    failed: list[str] = []
    page.on(
        "response",
        lambda r: (
            failed.append(f"{r.status} {r.url}")
            if r.status >= 400 and ("/brouillon/" in r.url or "/ecrire/" in r.url)
            else None
        ),
    )
    log_in(page, base, "doctor")

    # Opening the page stores nothing.
    page.get_by_role("button", name="Écrire un message").click()
    expect(page.get_by_role("heading", name="Nouveau message")).to_be_visible()
    assert not Draft.objects.filter(mailbox=doctor_box).exists()

    for field, address in (("#id_to", nurse_box.address), ("#id_bcc", pharmacist_box.address)):
        page.locator(field).fill(address)
        # The directory suggests the colleague; Escape closes the suggestions.
        expect(page.get_by_role("option").first).to_be_visible()
        page.locator(field).press("Escape")
        expect(page.get_by_role("option")).to_have_count(0)
    page.locator("#id_subject").fill("Protocole mis en forme")
    page.locator("label[for=format-html]").click()
    editor = page.get_by_role("textbox", name="Message")
    expect(editor).to_be_visible()
    expect(page.locator("#id_text")).to_be_hidden()
    editor.click()
    page.keyboard.type("Bonjour, ")
    page.get_by_role("button", name="Gras").click()
    page.keyboard.type("à lire avant lundi")
    page.get_by_role("button", name="Gras").click()
    page.keyboard.press("Enter")
    page.get_by_role("button", name="Liste à puces").click()
    page.keyboard.type("premier point")
    page.keyboard.press("Enter")
    page.keyboard.type("second point")
    expect(page.locator("#draft-status")).to_contain_text("Brouillon enregistré", timeout=10000)
    assert Draft.objects.filter(mailbox=doctor_box).count() == 1
    check_both_widths(page, "compose-rich-cci")

    page.get_by_role("button", name="Envoyer").click()
    expect(page.get_by_text("Message envoyé.")).to_be_visible()
    page.wait_for_timeout(2500)  # any autosave still pending would fire now
    assert not Draft.objects.filter(mailbox=doctor_box).exists()
    # No autosave answered with an error (the late one after Send least of all).
    assert not failed, failed

    message = next(m for m in Message.objects.all() if m.subject == "Protocole mis en forme")
    raw = services.read_raw(message)
    parsed = mime.parse_message(raw)
    assert parsed.html is not None and "<b>à lire avant lundi</b>" in parsed.html
    assert "<li>premier point</li>" in parsed.html
    assert parsed.text is not None
    assert "Bonjour, à lire avant lundi\n- premier point\n- second point" in parsed.text
    assert pharmacist_box.address.encode() not in raw
    assert Delivery.objects.filter(message=message, recipient=pharmacist_box.address).exists()

    # The sender's copy names the Cci; the print and source pages.
    page.locator(".webmail-folder-link[data-role='sent']").first.click()
    page.get_by_role("link", name="Protocole mis en forme").click()
    expect(page.locator(".webmail-headers__bcc")).to_contain_text(pharmacist_box.address)
    expect(page.locator(".webmail-body--html b")).to_have_text("à lire avant lundi")
    check_both_widths(page, "read-sent-cci")
    page.get_by_role("link", name="Imprimer").click()
    expect(page.get_by_role("button", name="Imprimer")).to_be_visible()
    expect(page.locator(".webmail-side")).to_have_count(0)
    check_both_widths(page, "print")
    page.get_by_role("link", name="Retour au message").click()
    page.get_by_role("link", name="En-têtes et source").click()
    expect(page.get_by_role("heading", name="En-têtes et source")).to_be_visible()
    expect(page.locator("pre.webmail-source").first).to_contain_text("Message-ID:")
    check_both_widths(page, "headers-source")


def test_an_invitation_card_answered_from_the_read_page(live_server, page: Page) -> None:
    demo.seed()
    doctor_box, nurse_box = mailbox_of("doctor"), mailbox_of("nurse")
    ics = ICS.format(organizer=nurse_box.address, attendee=doctor_box.address).encode()
    services.submit_message(
        mailbox=nurse_box,
        author=nurse_box.owner,
        to=[doctor_box.address],
        cc=[],
        subject="Invitation : RCP de cardiologie",
        text="Réunion de concertation.",
        attachments=[mime.Attachment("invitation.ics", "text/calendar", ics)],
    )
    base = live_server.url
    page.set_viewport_size(DESKTOP)
    log_in(page, base, "doctor")
    entry = next(
        e
        for e in Entry.objects.filter(mailbox=doctor_box).select_related("message")
        if e.message.subject.startswith("Invitation")
    )
    page.goto(f"{base}/messagerie/message/{entry.pk}/")
    card = page.locator(".webmail-invitation")
    expect(card).to_contain_text("RCP de cardiologie")
    expect(card).to_contain_text("Salle 3, bâtiment B")
    check_both_widths(page, "invitation")
    card.get_by_role("button", name="Accepter").click()
    expect(page.get_by_text("Votre réponse à l'invitation est envoyée.")).to_be_visible()
    reply = next(
        m
        for m in Message.objects.filter(sender_mailbox=doctor_box)
        if m.subject.startswith("Accepté")
    )
    assert reply.to_addrs == [nurse_box.address]
