"""The webmail on a 375 px phone, in Chromium, on the living demo: the message comes first,
the folders and the secondary actions wait behind a button, nothing scrolls sideways."""

from __future__ import annotations

import pytest
from django.urls import reverse
from playwright.sync_api import Page, expect

from mailboxes.models import Entry, Mailbox
from mssante import demo, demo_mail
from tests.browser.test_webmail import DESKTOP, PHONE, assert_accessible, log_in

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def living_demo() -> dict[str, Entry]:
    """The demo's accounts and mail (the same seed as `make demo`)."""
    demo_mail.populate(demo.seed())
    doctor = Mailbox.objects.get(address="claire.martin@hopital-demo.mssante.fr")
    # Found by its sender: subjects may be sealed in the database.
    letter = Entry.objects.get(mailbox=doctor, message__from_addr=demo_mail.CARDIOLOGIST[0])
    answer = Entry.objects.get(mailbox=doctor, message__from_addr__endswith="@patient.mssante.fr")
    results = Entry.objects.filter(mailbox=doctor, message__from_addr__startswith="laboratoire@")
    # The longest subject of the demo (three lines on a phone).
    longest = max(results, key=lambda e: len(e.message.subject))
    return {"letter": letter, "answer": answer, "longest": longest}


def fits(page: Page, what: str) -> None:
    """Nothing wider than the phone, and axe finds nothing."""
    width = page.evaluate("document.documentElement.scrollWidth")
    assert width <= PHONE["width"], f"{what}: {width} px wide"
    assert_accessible(page)


def test_on_a_phone_the_message_comes_first_and_nothing_scrolls_sideways(
    live_server, page: Page
) -> None:
    entries = living_demo()
    base = live_server.url
    page.set_viewport_size(PHONE)
    log_in(page, base, "doctor")
    fits(page, "home")

    # The list first; the folders wait behind "Dossiers".
    sent_link = page.get_by_role("link", name="Envoyés")
    expect(sent_link).to_be_hidden()
    first_row = page.locator(".webmail-list tbody tr").first
    box = first_row.bounding_box()
    assert box is not None and box["y"] < PHONE["height"]
    page.get_by_role("button", name="Dossiers").click()
    expect(sent_link).to_be_visible()
    sent_link.click()
    expect(page.get_by_role("heading", name="Envoyés")).to_be_visible()
    fits(page, "folder")

    # Reading: the body starts on the first screen, after "Répondre" and "Plus d'actions".
    for which in ("longest", "letter"):
        page.goto(base + reverse("webmail_read", args=[entries[which].pk]))
        where = page.locator(".webmail-body").first.bounding_box()
        assert where is not None
        assert where["y"] < 700, f"{which}: the message body starts {where['y']} px down"
    expect(page.get_by_role("button", name="Répondre", exact=True)).to_be_visible()
    forward = page.get_by_role("button", name="Transférer")
    expect(forward).to_be_hidden()
    fits(page, "read")
    page.get_by_role("button", name="Plus d'actions").click()
    expect(forward).to_be_visible()
    # The abuse report box opens within the screen's width.
    page.get_by_text("Signaler un courrier indésirable").click()
    expect(page.get_by_label("Pourquoi ce message est-il indésirable ?")).to_be_visible()
    fits(page, "abuse report")

    # Search, preferences and compose.
    page.get_by_role("button", name="Dossiers").click()
    page.get_by_label("Rechercher dans la boîte").fill("INR")
    page.get_by_role("button", name="Rechercher").click()
    expect(page.get_by_role("heading", name="Recherche : « INR »")).to_be_visible()
    fits(page, "search")
    page.goto(base + reverse("webmail_preferences"))
    fits(page, "preferences")
    # The other pages of the webmail: a conversation, the members and the access journal.
    mailbox_id = entries["letter"].mailbox_id
    for name, url in (
        ("conversation", reverse("webmail_conversation", args=[entries["answer"].pk])),
        ("members", reverse("webmail_members", args=[mailbox_id])),
        ("journal", reverse("webmail_journal", args=[mailbox_id])),
    ):
        page.goto(base + url)
        fits(page, name)
    page.get_by_role("button", name="Écrire", exact=True).click()
    expect(page.get_by_role("heading", name="Nouveau message")).to_be_visible()
    fits(page, "compose")


def test_on_a_desktop_every_action_and_the_folders_stay_in_view(live_server, page: Page) -> None:
    entries = living_demo()
    base = live_server.url
    page.set_viewport_size(DESKTOP)
    log_in(page, base, "doctor")
    expect(page.get_by_role("link", name="Envoyés")).to_be_visible()
    expect(page.get_by_role("button", name="Dossiers")).to_be_hidden()
    page.goto(base + reverse("webmail_read", args=[entries["letter"].pk]))
    for name in ("Répondre à tous", "Transférer", "Marquer non lu", "Supprimer"):
        expect(page.get_by_role("button", name=name)).to_be_visible()
    expect(page.get_by_role("button", name="Plus d'actions")).to_be_hidden()
    # "Répondre à tous" still answers from outside its form (form= attribute).
    page.get_by_role("button", name="Répondre à tous").click()
    expect(page.get_by_role("heading", name="Répondre")).to_be_visible()
    assert_accessible(page)
