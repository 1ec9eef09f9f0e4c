"""Mon agenda on a 375 px phone, on the living demo: the demo patient accepts the appointment
Dr Martin sent her, and Dr Martin's webmail shows "a accepté"."""

from __future__ import annotations

from pathlib import Path

import pytest
from django.conf import settings
from playwright.sync_api import Browser, Page, expect

from mailboxes.models import Mailbox, Message
from mssante import demo, demo_mail
from patients.models_agenda import Appointment
from tests.browser.test_webmail import assert_accessible, log_in

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]
DOCS = Path(settings.BASE_DIR) / "docs" / "screenshots"
PHONE = {"width": 375, "height": 812}
SUMMARY = "Consultation de suivi — bilan lipidique"


def shoot(page: Page, name: str, width: int) -> None:
    """A full-page screenshot into docs/screenshots; nothing may scroll sideways."""
    assert page.evaluate("document.documentElement.scrollWidth") <= width, name
    DOCS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(DOCS / f"{name}.png"), full_page=True)


def test_the_demo_patient_accepts_an_appointment_and_the_doctor_sees_it(
    live_server, page: Page, browser: Browser
) -> None:
    demo_mail.populate(demo.seed())
    patient_box = Mailbox.objects.get(kind=Mailbox.Kind.PATIENT, owner=demo.patient_identity().user)
    appointment = Appointment.objects.get(mailbox=patient_box)
    assert appointment.answer == Appointment.Answer.PENDING
    base = live_server.url

    # The demo patient, on a phone: Mon agenda shows the invitation, to answer.
    phone = browser.new_context(
        viewport=PHONE, locale="fr-FR", timezone_id="Europe/Paris", is_mobile=True
    )
    patient = phone.new_page()
    log_in(patient, base, "patient")
    patient.get_by_role("link", name="Mon agenda").click()
    expect(patient.get_by_role("heading", name="Mon agenda")).to_be_visible()
    card = patient.locator(".agenda-card", has_text=SUMMARY)
    expect(card).to_contain_text("En attente de votre réponse")
    expect(card).to_contain_text("Dr Claire Martin")
    assert_accessible(patient)
    shoot(patient, "patient-agenda-phone", PHONE["width"])

    card.get_by_role("button", name="Accepter").click()
    expect(
        patient.get_by_text("Rendez-vous accepté : le professionnel est prévenu.")
    ).to_be_visible()
    card = patient.locator(".agenda-card", has_text=SUMMARY)
    expect(card).to_contain_text("Accepté")
    expect(card.get_by_role("button", name="Accepter")).to_have_count(0)
    assert_accessible(patient)
    shoot(patient, "patient-agenda-accepted-phone", PHONE["width"])

    # The .ics of the appointment is offered for her own calendar.
    ics = patient.request.get(base + f"/patient/agenda/{appointment.pk}/rendez-vous.ics")
    assert ics.ok and b"BEGIN:VCALENDAR" in ics.body() and b"STATUS:CONFIRMED" in ics.body()
    phone.close()

    # Dr Martin's webmail: the REPLY is there, shown as "… a accepté « … »".
    reply = Message.objects.filter(sender_mailbox=patient_box).latest("pk")
    assert reply.subject == f"Accepté : {SUMMARY}"
    assert reply.to_addrs == ["claire.martin@hopital-demo.mssante.fr"]
    page.set_viewport_size({"width": 1280, "height": 900})
    log_in(page, base, "doctor")
    page.get_by_role("link", name=f"Accepté : {SUMMARY}").first.click()
    expect(page.get_by_text(f"a accepté « {SUMMARY} »")).to_be_visible()
    assert_accessible(page)
    shoot(page, "patient-agenda-doctor-sees-acceptance-desktop", 1280)
