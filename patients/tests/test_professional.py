"""The professional's side of a conversation with a patient: who, "no reply", closing."""

from __future__ import annotations

import pytest
from django.test import Client
from django.urls import reverse

from mailboxes import services as mailbox_services
from mailboxes.models import Draft, Message
from patients.models import ConversationClosure
from patients.tests.conftest import Space
from tests.personas import login, start_draft

pytestmark = pytest.mark.django_db


def _draft_to(space: Space, client: Client, address: str) -> Draft:
    draft = start_draft(client, space.doctor_box)
    client.post(
        reverse("webmail_draft", args=[draft.pk]),
        {"to": address, "cc": "", "subject": "Résultats", "text": "Bonjour."},
    )
    return draft


def test_composing_to_a_patient_shows_who_the_patient_is(space: Space) -> None:
    client = login(space.doctor)
    draft = _draft_to(space, client, space.patient_box.address)
    page = client.get(reverse("webmail_draft", args=[draft.pk])).content.decode()
    identity = space.patient.patient
    assert "Message à un patient" in page
    assert identity.ins in page
    assert "Lucie Anne MOREAU" in page
    assert "née le 02/05/1990" in page
    assert "Le patient ne peut pas répondre" in page


def test_the_autosave_refreshes_the_patient_panel(space: Space) -> None:
    client = login(space.doctor)
    draft = start_draft(client, space.doctor_box)
    response = client.post(
        reverse("webmail_draft_save", args=[draft.pk]),
        {"to": space.patient_box.address, "subject": "", "text": ""},
        headers={"HX-Request": "true"},
    )
    html = response.content.decode()
    assert 'id="patient-panel" hx-swap-oob="true"' in html
    assert space.patient.patient.ins in html


def test_no_reply_sends_x_mss_mes_fin(space: Space) -> None:
    client = login(space.doctor)
    draft = _draft_to(space, client, space.patient_box.address)
    response = space.run(
        client.post,
        reverse("webmail_draft_send", args=[draft.pk]),
        {
            "to": space.patient_box.address,
            "cc": "",
            "subject": "Résultats",
            "text": "Bonjour.",
            "patient_no_reply": "1",
        },
    )
    assert response.status_code == 302
    message = Message.objects.get()
    assert b"X-MSS-MES: FIN" in mailbox_services.read_raw(message)


def test_closing_a_conversation_removes_the_patients_reply_box(space: Space) -> None:
    message = space.send(space.doctor_box, [space.patient_box.address])
    pro_entry = space.entry(space.doctor_box, message)
    doctor = login(space.doctor)
    page = doctor.get(reverse("webmail_read", args=[pro_entry.pk])).content.decode()
    assert "Clore la conversation" in page
    response = doctor.post(reverse("patients:close", args=[pro_entry.pk]))
    assert response.status_code == 302
    closure = ConversationClosure.objects.get()
    assert closure.mailbox == space.patient_box
    assert closure.closed_by == space.doctor
    page = doctor.get(reverse("webmail_read", args=[pro_entry.pk])).content.decode()
    assert "Conversation close" in page

    patient_entry = space.entry(space.patient_box, message)
    response = login(space.patient).get(reverse("patients:conversation", args=[patient_entry.pk]))
    html = response.content.decode()
    assert "ne pouvez pas répondre" in html
    assert 'name="text"' not in html


def test_only_a_conversation_with_a_patient_can_be_closed(space: Space) -> None:
    message = space.send(space.doctor_box, [space.nurse_box.address])
    entry = space.entry(space.doctor_box, message)
    doctor = login(space.doctor)
    assert (
        "Clore la conversation"
        not in doctor.get(reverse("webmail_read", args=[entry.pk])).content.decode()
    )
    assert doctor.post(reverse("patients:close", args=[entry.pk])).status_code == 404
    # Nor someone else's conversation.
    to_patient = space.send(space.nurse_box, [space.patient_box.address])
    nurse_entry = space.entry(space.nurse_box, to_patient)
    assert doctor.post(reverse("patients:close", args=[nurse_entry.pk])).status_code == 404
    assert not ConversationClosure.objects.exists()


def test_a_read_only_delegate_cannot_close_the_holders_conversation(space: Space) -> None:
    mailbox_services.grant_membership(space.doctor_box, space.nurse, "read", by=space.doctor)
    message = space.send(space.doctor_box, [space.patient_box.address])
    pro_entry = space.entry(space.doctor_box, message)
    reader = login(space.nurse)
    page = reader.get(reverse("webmail_read", args=[pro_entry.pk])).content.decode()
    assert "Conversation avec un patient" in page
    assert "Clore la conversation" not in page
    assert reader.post(reverse("patients:close", args=[pro_entry.pk])).status_code == 403
    assert not ConversationClosure.objects.exists()
    # The patient can still answer the holder.
    patient_entry = space.entry(space.patient_box, message)
    response = space.run(
        login(space.patient).post,
        reverse("patients:reply", args=[patient_entry.pk]),
        {"text": "Merci docteur."},
    )
    assert response.status_code == 302
    assert Message.objects.filter(sender_mailbox=space.patient_box).count() == 1


def test_a_delegate_who_may_send_closes_the_conversation_for_the_box(space: Space) -> None:
    mailbox_services.grant_membership(space.doctor_box, space.nurse, "send", by=space.doctor)
    message = space.send(space.doctor_box, [space.patient_box.address])
    pro_entry = space.entry(space.doctor_box, message)
    sender = login(space.nurse)
    assert "Clore la conversation" in (
        sender.get(reverse("webmail_read", args=[pro_entry.pk])).content.decode()
    )
    assert sender.post(reverse("patients:close", args=[pro_entry.pk])).status_code == 302
    closure = ConversationClosure.objects.get()
    assert (closure.closed_by, closure.closed_from) == (space.nurse, space.doctor_box)


def test_a_box_copied_in_a_colleagues_conversation_neither_sees_nor_closes_it(
    space: Space,
) -> None:
    # The nurse writes to the patient, then copies the doctor in the same thread.
    to_patient = space.send(space.nurse_box, [space.patient_box.address])
    copy = space.send(
        space.nurse_box,
        [space.doctor_box.address],
        subject="Re : Résultats",
        in_reply_to=to_patient,
    )
    doctor_entry = space.entry(space.doctor_box, copy)
    doctor = login(space.doctor)
    page = doctor.get(reverse("webmail_read", args=[doctor_entry.pk])).content.decode()
    assert space.patient.patient.ins not in page
    assert "Clore la conversation" not in page
    assert doctor.post(reverse("patients:close", args=[doctor_entry.pk])).status_code == 404
    assert not ConversationClosure.objects.exists()
