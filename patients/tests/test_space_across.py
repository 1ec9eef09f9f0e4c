"""The parts of the patient space together: family, agenda, documents, my data."""

from __future__ import annotations

import io
import zipfile

import pytest
from django.urls import reverse

from accounts.models import User
from mailboxes.models import Entry, Mailbox, Message
from mssante.lib import mime
from patients.models_agenda import Appointment
from patients.models_documents import PatientDocument
from patients.tests.conftest import PDF, Space
from patients.tests.test_agenda import ics
from patients.tests.test_family import linked_child, switch
from tests import factories
from tests.personas import login

pytestmark = pytest.mark.django_db


def test_a_guardian_downloads_the_childs_archive_but_cannot_close_the_childs_space(
    space: Space,
) -> None:
    kid, kid_box, made = linked_child(space)
    space.send(space.doctor_box, [kid_box.address], subject="Vaccins", text="Le ROR.")
    client = login(space.patient)
    switch(client, made.pk)

    page = client.get(reverse("patients:my_data")).content.decode()
    assert "ne se ferme pas depuis le profil de son parent" in page
    assert reverse("patients:close_space") not in page
    archive = client.get(reverse("patients:archive"))
    assert archive.status_code == 200
    names = zipfile.ZipFile(io.BytesIO(b"".join(archive.streaming_content))).namelist()
    assert any(n.endswith(".eml") for n in names)

    # A forged POST with the guardian's own password closes nothing.
    response = client.post(
        reverse("patients:close_space"), {"password": factories.PASSWORD, "confirm": "on"}
    )
    assert response.status_code == 403
    assert "ne se ferme pas depuis le profil de son parent" in response.content.decode()
    kid_box.refresh_from_db()
    kid.user.refresh_from_db()
    assert kid_box.status == Mailbox.Status.ACTIVE
    assert kid.user.status == User.Status.ACTIVE


def test_a_guardian_accepts_an_appointment_in_the_childs_space(space: Space) -> None:
    _kid, kid_box, made = linked_child(space)
    space.send(
        space.doctor_box,
        [kid_box.address],
        subject="Rendez-vous de Léo",
        text="Je vous propose un rendez-vous.",
        attachments=[
            mime.Attachment(
                "invitation.ics", "text/calendar", ics(space.doctor_box.address, kid_box.address)
            )
        ],
    )
    appointment = Appointment.objects.get(mailbox=kid_box)
    client = login(space.patient)
    # From her own profile, the child's appointment does not exist.
    url = reverse("patients:agenda_answer", args=[appointment.pk])
    assert space.run(client.post, url, {"answer": "ACCEPTED"}).status_code == 404
    switch(client, made.pk)
    response = space.run(client.post, url, {"answer": "ACCEPTED"}, follow=True)
    assert "Rendez-vous accepté" in response.content.decode()
    # The answer leaves the child's box, to the professional who invited him.
    reply = Message.objects.get(sender_mailbox=kid_box)
    assert reply.to_addrs == [space.doctor_box.address]
    assert Entry.objects.filter(mailbox=space.doctor_box, message=reply).exists()
    appointment.refresh_from_db()
    assert appointment.answer == Appointment.Answer.ACCEPTED


def test_an_invitation_is_an_appointment_not_a_document(space: Space) -> None:
    space.send(
        space.doctor_box,
        [space.patient_box.address],
        subject="Votre rendez-vous",
        text="Je vous propose un rendez-vous.",
        attachments=[
            mime.Attachment(
                "invitation.ics",
                "text/calendar",
                ics(space.doctor_box.address, space.patient_box.address),
            ),
            mime.Attachment("ordonnance.pdf", "application/pdf", PDF),
        ],
    )
    assert Appointment.objects.filter(mailbox=space.patient_box).count() == 1
    documents = PatientDocument.objects.filter(patient=space.patient)
    assert [d.filename for d in documents] == ["ordonnance.pdf"]
