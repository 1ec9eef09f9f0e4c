"""The patient space: reading, replying, attachments, confinement, "Mes échanges de données"."""

from __future__ import annotations

import pytest
from django.urls import reverse

from mailboxes.models import Delivery, Message
from mssante.lib import mime
from patients.models import NotificationPreference
from patients.tests.conftest import PDF, Space
from tests.personas import login

pytestmark = pytest.mark.django_db


def test_the_patient_sees_conversations_grouped_by_professional_newest_first(
    space: Space,
) -> None:
    space.send(space.doctor_box, [space.patient_box.address], subject="Résultats de prise de sang")
    space.send(space.nurse_box, [space.patient_box.address], subject="Rendez-vous de soins")
    response = login(space.patient).get(reverse("patient_home"))
    html = response.content.decode()
    assert response.status_code == 200
    # The nurse wrote last: her group comes first; both are unread.
    assert html.index("Julien Dupont") < html.index("Claire Martin")
    assert html.count("patient-card--unread") == 2
    assert "Résultats de prise de sang" in html and "Rendez-vous de soins" in html


def test_the_space_offers_no_way_to_start_a_conversation(space: Space) -> None:
    space.send(space.doctor_box, [space.patient_box.address])
    client = login(space.patient)
    pages = [reverse("patient_home"), reverse("patients:exchanges")]
    entry = space.entry(space.patient_box, Message.objects.get())
    pages.append(reverse("patients:conversation", args=[entry.pk]))
    for url in pages:
        html = client.get(url).content.decode()
        assert "Écrire un message" not in html, url
        assert "Nouveau message" not in html, url
        assert 'name="to"' not in html and 'name="cc"' not in html, url
        assert "annuaire" not in html.lower(), url
    # The professional pages (compose, directory) do not exist for a patient.
    assert client.post(reverse("webmail_compose", args=[space.patient_box.pk])).status_code == 404
    assert client.get(reverse("webmail_home")).status_code == 404


def test_the_patient_reads_and_the_professional_sees_when(space: Space) -> None:
    message = space.send(space.doctor_box, [space.patient_box.address], text="Tout est normal.")
    entry = space.entry(space.patient_box, message)
    response = login(space.patient).get(reverse("patients:conversation", args=[entry.pk]))
    assert "Tout est normal." in response.content.decode()
    entry.refresh_from_db()
    assert entry.seen
    delivery = Delivery.objects.get(message=message, mailbox=space.patient_box)
    assert delivery.read_at is not None
    sent = space.entry(space.doctor_box, message)
    page = login(space.doctor).get(reverse("webmail_read", args=[sent.pk])).content.decode()
    assert "Conversation avec un patient" in page
    assert "lu par le patient le" in page


def test_the_patient_replies_to_the_professional_who_wrote_and_nobody_else(
    space: Space,
) -> None:
    message = space.send(space.doctor_box, [space.patient_box.address], subject="Résultats")
    entry = space.entry(space.patient_box, message)
    response = space.run(
        login(space.patient).post,
        reverse("patients:reply", args=[entry.pk]),
        # Forged fields are ignored: the form has no recipient.
        {"text": "Merci docteur.", "to": space.nurse_box.address, "cc": space.nurse_box.address},
    )
    assert response.status_code == 302
    answer = Message.objects.exclude(pk=message.pk).get()
    assert answer.to_addrs == [space.doctor_box.address]
    assert answer.cc_addrs == []
    assert answer.in_reply_to == message.message_id
    assert answer.thread_key == message.thread_key
    assert answer.subject == "Re : Résultats"
    assert space.entry(space.doctor_box, answer).folder.role == "inbox"


def test_the_patient_opens_and_downloads_a_pdf(space: Space) -> None:
    message = space.send(
        space.doctor_box,
        [space.patient_box.address],
        attachments=[mime.Attachment("bilan.pdf", "application/pdf", PDF)],
    )
    entry = space.entry(space.patient_box, message)
    client = login(space.patient)
    page = client.get(reverse("patients:conversation", args=[entry.pk])).content.decode()
    assert "bilan.pdf" in page
    index = message.attachments[0]["index"]
    preview = client.get(reverse("patients:preview", args=[entry.pk, index]))
    assert preview.status_code == 200
    assert preview["Content-Type"] == "application/pdf"
    assert "sandbox" in preview["Content-Security-Policy"]
    assert b"".join(preview.streaming_content) == PDF
    download = client.get(reverse("patients:download", args=[entry.pk, index]))
    assert download["Content-Type"] == "application/octet-stream"
    assert download["Content-Disposition"].startswith("attachment;")


def test_any_url_of_another_patients_message_answers_404(space: Space) -> None:
    message = space.send(
        space.doctor_box,
        [space.other_box.address],
        attachments=[mime.Attachment("bilan.pdf", "application/pdf", PDF)],
    )
    theirs = space.entry(space.other_box, message)
    doctors = space.entry(space.doctor_box, message)
    client = login(space.patient)
    for entry_id in (theirs.pk, doctors.pk, 999_999):
        assert client.get(reverse("patients:conversation", args=[entry_id])).status_code == 404
        assert client.get(reverse("patients:download", args=[entry_id, 1])).status_code == 404
        assert client.get(reverse("patients:preview", args=[entry_id, 1])).status_code == 404
        response = client.post(reverse("patients:reply", args=[entry_id]), {"text": "x"})
        assert response.status_code == 404
    assert Message.objects.count() == 1


def test_a_professional_gets_404_in_the_patient_space(space: Space) -> None:
    assert login(space.doctor).get(reverse("patient_home")).status_code == 404


def test_mes_echanges_lists_the_patients_exchanges_and_nothing_of_others(space: Space) -> None:
    ins = space.patient.patient.ins
    received = space.send(
        space.doctor_box,
        [space.patient_box.address],
        subject="Compte rendu opératoire",
        attachments=[mime.Attachment("cr.pdf", "application/pdf", PDF)],
    )
    between = space.send(
        space.doctor_box,
        [space.nurse_box.address],
        subject="Avis sur la cicatrice de Mme Moreau",
        text="Contenu confidentiel entre professionnels",
        attachments=[mime.Attachment("photo-plaie.jpg", "image/jpeg", b"\xff\xd8\xff")],
    )
    # A message between professionals naming the patient's INS (X-MSS-INS's subject).
    Message.objects.filter(pk=between.pk).update(patient_ins=ins)
    space.send(space.doctor_box, [space.other_box.address], subject="Pour un autre patient")
    unrelated = space.send(space.doctor_box, [space.nurse_box.address], subject="Planning")
    Message.objects.filter(pk=unrelated.pk).update(patient_ins=space.other.patient.ins)

    html = login(space.patient).get(reverse("patients:exchanges")).content.decode()
    assert "Compte rendu opératoire" in html and "cr.pdf" in html
    # Between professionals: who, when, which kind of document — not the subject or body.
    assert space.nurse_box.address in html
    assert "photo-plaie.jpg (image/jpeg)" in html
    assert "Échange entre professionnels" in html
    assert "Avis sur la cicatrice" not in html
    assert "Contenu confidentiel" not in html
    # Nothing of the other patient.
    assert "Pour un autre patient" not in html
    assert space.other_box.address not in html
    assert "Planning" not in html
    assert received.subject in html


def test_the_patient_changes_their_notification_frequency(space: Space) -> None:
    client = login(space.patient)
    response = client.post(reverse("patients:preferences"), {"frequency": "daily"})
    assert response.status_code == 302
    pref = NotificationPreference.objects.get(user=space.patient)
    assert pref.frequency == NotificationPreference.Frequency.DAILY
    bad = client.post(reverse("patients:preferences"), {"frequency": "souvent"})
    assert bad.status_code == 400


def test_every_patient_page_renders(space: Space) -> None:
    message = space.send(space.doctor_box, [space.patient_box.address])
    entry = space.entry(space.patient_box, message)
    client = login(space.patient)
    for url in (
        reverse("patient_home"),
        reverse("patients:conversation", args=[entry.pk]),
        reverse("patients:exchanges"),
        reverse("patients:preferences"),
    ):
        response = client.get(url)
        assert response.status_code == 200, url
        assert b"patient.css" in response.content
