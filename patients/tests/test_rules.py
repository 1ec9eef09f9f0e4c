"""The rules of the patient box, enforced by the submission service whatever the origin."""

from __future__ import annotations

from typing import Any

import pytest
from django.core import mail
from django.urls import reverse

from accounts.models import User
from mailboxes import services as mailbox_services
from mailboxes.models import Draft, Mailbox, Message
from mailboxes.services import SubmissionError
from mssante.lib.identifiers import make_ins
from patients import services
from patients.models import ConversationClosure
from patients.tests.conftest import Space
from tests.personas import login, start_draft

pytestmark = pytest.mark.django_db


def _patient_writes(space: Space, **kwargs: Any) -> Message:
    params: dict[str, Any] = {
        "mailbox": space.patient_box,
        "author": space.patient,
        "to": [space.doctor_box.address],
        "cc": [],
        "subject": "Question",
        "text": "Bonjour docteur.",
    }
    params.update(kwargs)
    return space.run(mailbox_services.submit_message, **params)


def test_a_patient_cannot_start_a_conversation_whatever_the_origin(space: Space) -> None:
    # The API and the web both end in submit_message: the refusal is there.
    for origin in (Message.Origin.API, Message.Origin.WEB):
        with pytest.raises(SubmissionError, match="ne peut pas écrire le premier"):
            _patient_writes(space, origin=origin)
    assert not Message.objects.exists()


def test_a_patient_cannot_answer_a_conversation_they_were_not_part_of(space: Space) -> None:
    between = space.send(space.doctor_box, [space.nurse_box.address])
    with pytest.raises(SubmissionError, match="ne peut pas écrire le premier"):
        _patient_writes(space, in_reply_to=between)


def test_a_patient_cannot_add_recipients_to_a_reply(space: Space) -> None:
    message = space.send(space.doctor_box, [space.patient_box.address])
    with pytest.raises(SubmissionError, match="répond seulement au professionnel"):
        _patient_writes(
            space, in_reply_to=message, to=[space.doctor_box.address, space.nurse_box.address]
        )
    with pytest.raises(SubmissionError, match="répond seulement au professionnel"):
        _patient_writes(space, in_reply_to=message, cc=[space.other_box.address])
    reply = _patient_writes(space, in_reply_to=message)
    assert reply.to_addrs == [space.doctor_box.address]


def test_a_patient_cannot_reply_after_fin(space: Space) -> None:
    message = space.send(
        space.doctor_box, [space.patient_box.address], extra_headers={"X-MSS-MES": "FIN"}
    )
    assert message.conversation_closed
    with pytest.raises(SubmissionError, match="X-MSS-MES"):
        _patient_writes(space, in_reply_to=message)
    # The forged POST gets the rule's message, and nothing is sent.
    entry = space.entry(space.patient_box, message)
    response = login(space.patient).post(
        reverse("patients:reply", args=[entry.pk]), {"text": "Je réponds quand même."}
    )
    assert response.status_code == 400
    assert "X-MSS-MES" in response.content.decode()
    assert Message.objects.count() == 1


def test_a_patient_cannot_reply_once_the_professional_closed_the_conversation(
    space: Space,
) -> None:
    message = space.send(space.doctor_box, [space.patient_box.address])
    services.close_conversation(
        patient_box=space.patient_box,
        thread_key=message.thread_key,
        by=space.doctor,
        from_mailbox=space.doctor_box,
    )
    assert ConversationClosure.objects.count() == 1
    with pytest.raises(SubmissionError, match="clos cette conversation"):
        _patient_writes(space, in_reply_to=message)


def test_a_message_to_a_patient_records_the_ins(space: Space) -> None:
    message = space.send(space.doctor_box, [space.patient_box.address])
    assert message.patient_ins == space.patient.patient.ins
    assert not message.conversation_closed


def test_a_message_to_an_unknown_ins_is_refused_with_a_clear_message(
    space: Space, settings: Any
) -> None:
    settings.PATIENT_AUTO_CREATE = False
    unknown = f"{make_ins(1, 1960, 3, '13', '055', 42).lower()}@{settings.PATIENT_DOMAIN}"
    with pytest.raises(SubmissionError, match="Aucun espace patient n'existe"):
        space.send(space.doctor_box, [unknown])
    assert not Mailbox.objects.filter(address=unknown).exists()


def test_a_first_message_to_a_valid_ins_creates_the_box_when_allowed(
    space: Space, settings: Any
) -> None:
    settings.PATIENT_AUTO_CREATE = True
    ins = make_ins(1, 1960, 3, "13", "055", 42)
    address = f"{ins.lower()}@{settings.PATIENT_DOMAIN}"
    message = space.send(space.doctor_box, [address])
    box = Mailbox.objects.get(address=address)
    assert box.kind == Mailbox.Kind.PATIENT
    user = User.objects.get(username=ins)
    assert not user.has_usable_password()  # awaiting activation
    assert not user.patient.qualified
    assert space.entry(box, message).folder.role == "inbox"
    bad = f"123@{settings.PATIENT_DOMAIN}"
    with pytest.raises(SubmissionError, match="ne désigne pas un patient"):
        space.send(space.doctor_box, [bad])


def test_a_delivery_to_a_patient_notifies_them_at_most_once_per_period(
    space: Space, settings: Any
) -> None:
    settings.PATIENT_NOTIFY_MINUTES = 60
    mail.outbox.clear()
    space.send(space.doctor_box, [space.patient_box.address], subject="Résultats VIH")
    assert len(mail.outbox) == 1
    assert mail.outbox[0].to == [space.patient.email]
    assert "VIH" not in f"{mail.outbox[0].subject} {mail.outbox[0].body}"
    space.send(space.nurse_box, [space.patient_box.address])
    assert len(mail.outbox) == 1
    # A professional recipient is never notified this way.
    space.send(space.doctor_box, [space.nurse_box.address])
    assert len(mail.outbox) == 1


# Through the pages: the rules reach submit_message from PatientsConfig.ready
# (mailboxes.hooks); unwired, these pages would send.


def test_the_webmail_refuses_a_message_to_an_unknown_patient(space: Space, settings: Any) -> None:
    settings.PATIENT_AUTO_CREATE = False
    unknown = f"{make_ins(2, 1971, 8, '69', '123', 7).lower()}@{settings.PATIENT_DOMAIN}"
    doctor = login(space.doctor)
    draft = start_draft(doctor, space.doctor_box)
    response = space.run(
        doctor.post,
        reverse("webmail_draft_send", args=[draft.pk]),
        {"to": unknown, "cc": "", "subject": "Résultats", "text": "Bonjour."},
    )
    assert response.status_code == 400
    assert "Aucun espace patient n&#x27;existe pour" in response.content.decode()
    assert not Message.objects.exists()
    assert Draft.objects.filter(pk=draft.pk).exists()


def test_the_patient_cannot_answer_over_the_web_once_the_professional_closed_it(
    space: Space,
) -> None:
    message = space.send(space.doctor_box, [space.patient_box.address])
    doctor = login(space.doctor)
    doctor.post(reverse("patients:close", args=[space.entry(space.doctor_box, message).pk]))
    response = space.run(
        login(space.patient).post,
        reverse("patients:reply", args=[space.entry(space.patient_box, message).pk]),
        {"text": "Une dernière question."},
    )
    assert response.status_code == 400
    assert "clos cette conversation" in response.content.decode()
    assert Message.objects.count() == 1
