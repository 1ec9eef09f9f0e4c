"""A box's preferences in Chromium: a signature and an out-of-office reply, at 375 px too."""

from __future__ import annotations

import re
import shutil
from datetime import timedelta
from pathlib import Path

import pytest
from django.conf import settings
from django.utils import timezone
from playwright.sync_api import Page, expect

from mailboxes import services
from mailboxes.models import AutoReply, Signature
from mssante import demo
from tests.browser.test_webmail import (
    DESKTOP,
    PHONE,
    SHOTS,
    assert_accessible,
    log_in,
    mailbox_of,
    shoot,
)

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]
DOCS = Path(settings.BASE_DIR) / "docs" / "screenshots"


def test_a_doctor_sets_a_signature_and_an_out_of_office_reply(live_server, page: Page) -> None:
    demo.seed()
    box = mailbox_of("doctor")
    base = live_server.url
    page.set_viewport_size(PHONE)
    log_in(page, base, "doctor")
    page.goto(base + "/messagerie/preferences/")
    expect(page.get_by_role("heading", name="Préférences", exact=True)).to_be_visible()

    page.locator("#id_text").fill("Dr Claire Martin\nCardiologie")
    page.get_by_role("button", name="Valider la signature").click()
    expect(page.get_by_text("Signature enregistrée.")).to_be_visible()
    assert Signature.objects.get(mailbox=box).text == "Dr Claire Martin\nCardiologie"

    today = timezone.localdate()
    page.locator("label[for=absence-enabled]").click()
    page.locator("#absence-start").fill(today.isoformat())
    page.locator("#absence-end").fill((today + timedelta(days=7)).isoformat())
    page.locator("#absence-text").fill("Absente cette semaine : écrivez au secrétariat.")
    page.locator("label[for=absence-professionals_only]").click()
    page.get_by_role("button", name="Valider la réponse automatique").click()
    expect(page.get_by_text("Réponse automatique activée du")).to_be_visible()
    reply = AutoReply.objects.get(mailbox=box)
    assert reply.enabled and reply.professionals_only and reply.is_active()

    # A rule, so that the rules section shows one in the screenshots.
    page.locator("#regle-condition").select_option("app")
    page.locator("#regle-action").select_option("read")
    page.get_by_role("button", name="Ajouter la règle").click()
    expect(page.get_by_text("Règle ajoutée.")).to_be_visible()

    page.set_viewport_size(PHONE)
    assert_accessible(page)
    page.set_viewport_size(DESKTOP)
    assert_accessible(page)
    shoot(page, "preferences-box")

    # Contacts: a recent correspondent starred, then written to.
    nurse = mailbox_of("nurse")
    services.submit_message(
        mailbox=box, author=box.owner, to=[nurse.address], cc=[], subject="Avis", text="Bonjour."
    )
    page.get_by_role("link", name="Contacts").click()
    expect(page.get_by_role("heading", name="Contacts", exact=True)).to_be_visible()
    page.get_by_role("button", name=f"Ajouter {nurse.address} aux favoris").click()
    expect(page.get_by_text("Ajouté aux favoris.")).to_be_visible()
    page.set_viewport_size(PHONE)
    assert_accessible(page)
    page.set_viewport_size(DESKTOP)
    assert_accessible(page)
    shoot(page, "contacts")
    page.get_by_role("button", name=f"Écrire à {nurse.address}").first.click()
    expect(page.locator("#id_to")).to_have_value(nurse.address)
    expect(page.locator("#id_text")).to_have_value(re.compile("Dr Claire Martin"))

    DOCS.mkdir(parents=True, exist_ok=True)
    for shot in ("preferences-box", "contacts"):
        for size in ("desktop", "phone"):
            name = f"webmail-{shot}-{size}.png"
            shutil.copy(SHOTS / name, DOCS / name)
