"""In Chromium: a recipient reports unsolicited mail; staff close the sender's account in the admin."""

from __future__ import annotations

import pytest
from django.core import mail
from playwright.sync_api import Browser, Page, expect

from accounts.models import User
from charter.models import AbuseReport, Sanction
from mailboxes import services
from mailboxes.models import Mailbox
from mssante import demo
from tests.browser.test_webmail import DESKTOP, assert_accessible, log_in, mailbox_of

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_a_recipient_reports_a_message_and_staff_close_the_senders_account(
    live_server, page: Page, browser: Browser
) -> None:
    demo.seed()
    spammer_box, nurse_box = mailbox_of("pharmacist"), mailbox_of("nurse")
    services.submit_message(
        mailbox=spammer_box,
        author=spammer_box.owner,
        to=[nurse_box.address],
        cc=[],
        subject="Promotion sur les compléments alimentaires",
        text="Commandez dès aujourd'hui !",
    )
    base = live_server.url
    page.set_viewport_size(DESKTOP)

    # The nurse opens the message and reports it.
    log_in(page, base, "nurse")
    page.get_by_role("link", name="Promotion sur les compléments alimentaires").click()
    expect(page.get_by_text("Non analysé")).to_be_visible()
    page.get_by_text("Signaler un courrier indésirable").click()
    assert_accessible(page)
    page.get_by_label("Pourquoi ce message est-il indésirable ?").fill(
        "Publicité sans rapport avec les soins"
    )
    page.get_by_role("button", name="Envoyer le signalement").click()
    expect(page.get_by_text("votre signalement a été transmis")).to_be_visible()
    report = AbuseReport.objects.get()
    assert report.sender == spammer_box.owner

    # Staff review it in the admin and close the sender's account.
    staff = browser.new_context(viewport=DESKTOP, locale="fr-FR", timezone_id="Europe/Paris")
    admin = staff.new_page()
    log_in(admin, base, "staff", next="/admin/charter/abusereport/")
    expect(admin.get_by_role("link", name=report.created_at.strftime("%Y")).first).to_be_visible()
    expect(admin.get_by_text(spammer_box.address).first).to_be_visible()
    admin.locator(f'input[name="_selected_action"][value="{report.pk}"]').check()
    admin.locator('select[name="action"]').select_option("decide_close")
    admin.locator('button[name="index"], input[name="index"]').first.click()
    admin.locator("#id_reason").fill("Envois publicitaires répétés")
    admin.locator('input[value="Confirmer"]').click()
    expect(admin.get_by_text("signalement(s) traité(s)")).to_be_visible()

    sanction = Sanction.objects.get()
    assert sanction.decision == Sanction.Decision.CLOSE
    sender = User.objects.get(mailboxes=spammer_box)
    assert sender.status == User.Status.CLOSED
    assert Mailbox.objects.get(pk=spammer_box.pk).status == Mailbox.Status.CLOSED
    # The sanctioned user is told why, by e-mail.
    assert "Envois publicitaires répétés" in mail.outbox[-1].body
    assert mail.outbox[-1].to == [sender.email]
    staff.close()
