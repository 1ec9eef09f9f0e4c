"""A shared mailbox in real Chromium: the responsible adds a member, who switches to it and replies."""

from __future__ import annotations

import pytest
from playwright.sync_api import Browser, Page, expect

from mailboxes import services
from mailboxes.models import AccessEvent, Mailbox, Message
from mssante import demo
from tests.browser.test_webmail import (
    DESKTOP,
    account,
    assert_accessible,
    log_in,
    mailbox_of,
    shoot,
)

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

CARDIO = "cardiologie@hopital-demo.mssante.fr"


def test_the_responsible_adds_a_member_who_switches_to_the_box_and_replies(
    live_server, page: Page, browser: Browser
) -> None:
    demo.seed()
    cardio = Mailbox.objects.get(address=CARDIO)
    nurse_box, pharmacist_box = mailbox_of("nurse"), mailbox_of("pharmacist")
    services.submit_message(
        mailbox=nurse_box,
        author=nurse_box.owner,
        to=[CARDIO],
        cc=[],
        subject="Demande de rendez-vous",
        text="Bonjour, un rendez-vous pour M. Durand ?",
    )
    base = live_server.url
    page.set_viewport_size(DESKTOP)

    # The responsible (the demo doctor) opens the secretariat from the switcher and adds
    # the pharmacist, by RPPS number, with the right to send.
    log_in(page, base, "doctor")
    switcher = page.get_by_role("navigation", name="Mes boîtes")
    switcher.get_by_role("link", name="Secrétariat de cardiologie").click()
    expect(page.locator("#webmail-active-box")).to_contain_text(CARDIO)
    page.get_by_role("link", name="Membres et délégations").click()
    expect(page.get_by_role("heading", name="Membres et délégations")).to_be_visible()
    page.get_by_label("Identifiant RPPS ou Adeli").fill(account("pharmacist").identifier)
    page.get_by_label("Rôle").first.select_option("send")
    page.get_by_role("button", name="Ajouter", exact=True).click()
    expect(page.get_by_text("Sophie Bernard a maintenant accès à la boîte.")).to_be_visible()
    assert_accessible(page)
    shoot(page, "members")

    # The member switches to the shared box (its unread count shows), opens and replies.
    context = browser.new_context(viewport=DESKTOP, locale="fr-FR", timezone_id="Europe/Paris")
    member = context.new_page()
    log_in(member, base, "pharmacist")
    link = member.get_by_role("navigation", name="Mes boîtes").get_by_role(
        "link", name="Secrétariat de cardiologie"
    )
    expect(link).to_contain_text("1")
    link.click()
    expect(member.locator("#webmail-active-box")).to_contain_text(CARDIO)
    member.get_by_role("link", name="Demande de rendez-vous").click()
    expect(member.locator(".webmail-body")).to_contain_text("un rendez-vous pour M. Durand")
    # The active box stays visible while reading.
    expect(member.locator("#webmail-active-box")).to_contain_text(CARDIO)
    member.get_by_role("button", name="Répondre", exact=True).click()
    expect(member.locator("#id_to")).to_have_value(nurse_box.address)
    member.locator("#id_text").press("Control+Home")
    member.locator("#id_text").type("Mardi 10 h, cordialement.")
    member.get_by_role("button", name="Envoyer").click()
    expect(member.get_by_text("Message envoyé.")).to_be_visible()
    assert_accessible(member)
    context.close()

    (reply,) = [m for m in Message.objects.all() if m.subject == "Re : Demande de rendez-vous"]
    assert reply.from_addr == CARDIO
    assert reply.sender_addr == pharmacist_box.address

    # The nurse sees who wrote for the secretariat.
    nurse_context = browser.new_context(
        viewport=DESKTOP, locale="fr-FR", timezone_id="Europe/Paris"
    )
    nurse = nurse_context.new_page()
    log_in(nurse, base, "nurse")
    nurse.get_by_role("link", name="Re : Demande de rendez-vous").click()
    expect(nurse.locator(".webmail-headers__sender")).to_contain_text("Sophie Bernard")
    expect(nurse.locator(".webmail-headers__sender")).to_contain_text("Secrétariat de cardiologie")
    nurse_context.close()

    # The responsible sees who opened the message, on it and in the journal.
    assert AccessEvent.objects.filter(
        mailbox=cardio, actor__username__endswith=account("pharmacist").identifier
    ).exists()
    page.get_by_role("link", name="Boîte de réception").click()
    page.get_by_role("link", name="Demande de rendez-vous").click()
    expect(page.locator(".webmail-accesses")).to_contain_text("Ouvert par Sophie Bernard")
    page.get_by_role("link", name="Journal des accès").click()
    expect(page.locator("table.webmail-journal")).to_contain_text("Sophie Bernard")
    assert_accessible(page)
    shoot(page, "journal")
