"""The patient space on a phone: a lab result arrives, the patient reads it and answers."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from axe_playwright_python.sync_playwright import Axe
from django.conf import settings
from django.core import mail
from playwright.sync_api import Browser, Page, expect

from mailboxes.models import Mailbox, Message
from tests.browser.test_webmail import PDF, account, log_in, mailbox_of

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]
SHOTS = Path(settings.BASE_DIR) / "var" / "screenshots"
PHONE = {"width": 375, "height": 812}


def assert_accessible(page: Page) -> None:
    results = Axe().run(page)
    assert results.violations_count == 0, results.generate_report()


def shoot(page: Page, name: str) -> None:
    """A full-page screenshot at phone width; nothing may scroll sideways."""
    SHOTS.mkdir(parents=True, exist_ok=True)
    assert page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"], name
    page.screenshot(path=str(SHOTS / f"patient-{name}.png"), full_page=True)


def test_a_patient_reads_a_lab_result_on_a_phone_and_answers(
    live_server, page: Page, browser: Browser
) -> None:
    from mssante import demo

    seeded = {a["key"]: a for a in demo.seed()}
    patient_address = seeded["patient"]["address"]
    patient_box = Mailbox.objects.get(address=patient_address)
    doctor_box = mailbox_of("doctor")
    base = live_server.url
    mail.outbox.clear()

    # The doctor sends the lab result, with its PDF, to the demo patient.
    page.set_viewport_size({"width": 1280, "height": 900})
    log_in(page, base, "doctor")
    page.get_by_role("button", name="Écrire un message").click()
    page.locator("#id_to").fill(patient_address)
    page.locator("#id_subject").fill("Résultats de votre bilan sanguin")
    page.locator("#id_text").fill("Bonjour Madame Durand,\nvos résultats sont normaux.\nDr Martin")
    page.locator("#upload-files").set_input_files(
        {"name": "bilan-sanguin.pdf", "mimeType": "application/pdf", "buffer": PDF}
    )
    expect(page.locator("#draft-files")).to_contain_text("bilan-sanguin.pdf")
    # The patient's identity appears as soon as the address is saved.
    expect(page.locator("#patient-panel")).to_contain_text("Marie Louise DURAND")
    page.get_by_role("button", name="Envoyer").click()
    expect(page.get_by_text("Message envoyé.")).to_be_visible()

    # The notification reached the personal address, without any health content.
    notices = [m for m in mail.outbox if m.to == ["marie.durand@example.org"]]
    assert len(notices) == 1
    notice = notices[0]
    for secret in ("bilan", "Résultats", "Martin", "normaux", doctor_box.address):
        assert secret.lower() not in f"{notice.subject} {notice.body}".lower()
    assert "/patient/" in notice.body
    mail.outbox.clear()

    # The patient logs in on a phone: INS, password, then the code received by e-mail.
    phone = browser.new_context(
        viewport=PHONE, locale="fr-FR", timezone_id="Europe/Paris", is_mobile=True
    )
    patient = phone.new_page()
    acc = account("patient")
    patient.goto(base + "/connexion/")
    patient.locator("#id_identifier").fill(acc.identifier)
    patient.locator("#id_password").fill(acc.password)
    patient.get_by_role("button", name="Continuer").click()
    expect(patient.get_by_text("nous avons envoyé un code")).to_be_visible()
    assert_accessible(patient)
    shoot(patient, "code")
    code_mail = next(m for m in mail.outbox if m.to == ["marie.durand@example.org"])
    code = re.search(r"\b(\d{6})\b", code_mail.body).group(1)
    patient.get_by_label("Code à usage unique").fill(code)
    patient.get_by_role("button", name="Se connecter").click()

    # Her messages: one unread, from Dr Martin; no way to write first.
    expect(patient.get_by_role("heading", name="Mes messages")).to_be_visible()
    card = patient.locator(".patient-card", has_text="Résultats de votre bilan sanguin")
    expect(card).to_have_class(re.compile("patient-card--unread"))
    expect(patient.get_by_role("button", name="Écrire un message")).to_have_count(0)
    expect(patient.get_by_role("link", name="Écrire un message")).to_have_count(0)
    assert_accessible(patient)
    shoot(patient, "home")

    # She reads it and opens the PDF.
    card.get_by_role("link").click()
    expect(patient.get_by_role("heading", name="Résultats de votre bilan sanguin")).to_be_visible()
    expect(patient.locator(".patient-body")).to_contain_text("vos résultats sont normaux.")
    assert_accessible(patient)
    shoot(patient, "conversation")
    with phone.expect_page() as opened:
        patient.get_by_role("link", name="Ouvrir bilan-sanguin.pdf").click()
    pdf_page = opened.value
    pdf_page.wait_for_load_state()
    assert "/apercu/" in pdf_page.url
    response = pdf_page.request.get(pdf_page.url)
    assert response.headers["content-type"] == "application/pdf"
    assert response.body() == PDF
    pdf_page.close()

    # She answers; the reply goes to Dr Martin only.
    patient.get_by_label("Votre réponse").fill("Merci docteur, bien reçu.")
    patient.get_by_role("button", name="Envoyer ma réponse").click()
    expect(patient.get_by_text("Votre réponse est envoyée.")).to_be_visible()
    expect(patient.locator(".patient-message--mine")).to_contain_text("Merci docteur, bien reçu.")
    shoot(patient, "replied")
    reply = Message.objects.get(sender_mailbox=patient_box)
    assert reply.to_addrs == [doctor_box.address]

    # "Mes échanges de données" and the notification preferences.
    patient.get_by_role("link", name="Mes échanges de données").click()
    expect(patient.get_by_role("heading", name="Mes échanges de données")).to_be_visible()
    expect(patient.locator(".patient-exchange", has_text="bilan-sanguin.pdf")).to_have_count(1)
    assert_accessible(patient)
    shoot(patient, "exchanges")
    patient.get_by_role("link", name="Notifications").click()
    expect(patient.get_by_role("heading", name="Notifications")).to_be_visible()
    assert_accessible(patient)
    shoot(patient, "preferences")
    phone.close()

    # The doctor sees the reply, and that the patient read the result.
    page.goto(base + "/messagerie/")
    page.get_by_role("link", name="Re : Résultats de votre bilan sanguin").click()
    expect(page.locator(".webmail-body")).to_contain_text("Merci docteur, bien reçu.")
    expect(page.get_by_text("lu par le patient le")).to_be_visible()
    assert_accessible(page)


def test_a_closed_conversation_shows_a_plain_notice_on_a_phone(
    live_server, browser: Browser
) -> None:
    from mailboxes import services
    from mssante import demo

    seeded = {a["key"]: a for a in demo.seed()}
    doctor_box = mailbox_of("doctor")
    services.submit_message(
        mailbox=doctor_box,
        author=doctor_box.owner,
        to=[seeded["patient"]["address"]],
        cc=[],
        subject="Compte rendu d'hospitalisation",
        text="Pour information.",
        extra_headers={"X-MSS-MES": "FIN"},
    )
    phone = browser.new_context(viewport=PHONE, locale="fr-FR", timezone_id="Europe/Paris")
    patient = phone.new_page()
    log_in(patient, live_server.url, "patient")
    patient.get_by_role("link", name=re.compile("Compte rendu d'hospitalisation")).click()
    expect(patient.get_by_text("vous ne pouvez pas répondre à ce message")).to_be_visible()
    expect(patient.get_by_label("Votre réponse")).to_have_count(0)
    assert_accessible(patient)
    shoot(patient, "closed")
    phone.close()
