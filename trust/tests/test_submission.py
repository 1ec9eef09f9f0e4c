"""Each trust-space rule tried through submit_message: refused with a message naming it, audited."""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Any

import pytest
import time_machine
from django.test import Client
from django.utils import timezone

from accounts import services as accounts
from accounts.models import User
from audit.models import AuditEvent
from mailboxes import services as mailbox_services
from mailboxes.models import Entry, HostedDomain, Mailbox, Message
from mssante.lib import mime
from tests import factories as f
from tests.personas import send, submit
from trust import services

pytestmark = pytest.mark.django_db

PDF = b"%PDF-1.4\n1 0 obj<<>>endobj\ntrailer<<>>\n%%EOF\n"


def refused(rule: str) -> AuditEvent:
    event = AuditEvent.objects.filter(action="message.refused").latest("id")
    assert event.data["rule"] == rule
    return event


def test_it_refuses_a_41st_recipient(doctor: Mailbox) -> None:
    to = [f"dest{i}@hopital.mssante.test" for i in range(41)]
    with pytest.raises(mailbox_services.SubmissionError, match="plus de 40 destinataires"):
        submit(doctor, to)
    event = refused("recipient_limit")
    assert event.object_id == str(doctor.pk) and "Compte rendu" not in str(event.data)
    assert not Message.objects.exists()


def test_it_refuses_a_domain_outside_the_trust_space(doctor: Mailbox) -> None:
    with pytest.raises(
        mailbox_services.SubmissionError,
        match=r"« ami@gmail\.com » est hors de l'espace de confiance",
    ):
        submit(doctor, ["ami@gmail.com"])
    refused("trust_space")


def test_a_deactivated_hosted_domain_is_outside_the_trust_space(doctor: Mailbox) -> None:
    HostedDomain.objects.create(name="ferme.mssante.test", active=False)
    with pytest.raises(
        mailbox_services.SubmissionError, match=r"« x@ferme\.mssante\.test » est hors"
    ):
        submit(doctor, ["x@ferme.mssante.test"])
    refused("trust_space")


def test_an_exception_lets_more_recipients_through_until_it_expires(doctor: Mailbox) -> None:
    boxes = [f.mailbox() for _ in range(41)]
    until = timezone.now() + timedelta(days=2)
    services.grant_recipient_exception(
        doctor, reason="Campagne de vaccination", valid_until=until, by=f.staff()
    )
    message = send(doctor, [b.address for b in boxes])
    assert Entry.objects.filter(message=message).count() == 42  # 41 inboxes and the sent copy
    with (
        time_machine.travel(until + timedelta(minutes=1)),
        pytest.raises(mailbox_services.SubmissionError, match="plus de 40 destinataires"),
    ):
        submit(doctor, [b.address for b in boxes])


# The patient rules are checked by the patient space's hook in submit_message, with the
# trust rules' check_patient_reply (tested on its own in test_recipients.py).
def test_a_patient_cannot_start_a_conversation(doctor: Mailbox) -> None:
    patient_box = f.patient_mailbox()
    with pytest.raises(mailbox_services.SubmissionError, match="ne peut pas écrire le premier"):
        submit(patient_box, [doctor.address])


def test_a_patient_cannot_reply_after_fin(doctor: Mailbox) -> None:
    patient_box = f.patient_mailbox()
    closing = send(
        doctor,
        [patient_box.address],
        extra_headers={"X-MSS-MES": "FIN"},
    )
    with pytest.raises(mailbox_services.SubmissionError, match="clos cette conversation"):
        submit(patient_box, [doctor.address], in_reply_to=closing)


def test_it_refuses_a_second_patient_in_copy(doctor: Mailbox) -> None:
    first, second = f.patient_mailbox(), f.patient_mailbox()
    with pytest.raises(mailbox_services.SubmissionError, match="d'autre patient"):
        submit(doctor, [first.address], cc=[second.address])
    refused("one_patient")


def test_it_refuses_a_blocked_type_disguised_with_another_extension(
    doctor: Mailbox, nurse: Mailbox
) -> None:
    program = b"MZ\x90\x00" + b"\x00" * 200
    with pytest.raises(
        mailbox_services.SubmissionError, match=r"« compte-rendu\.pdf » est refusée : son contenu"
    ):
        submit(
            doctor,
            [nurse.address],
            attachments=[mime.Attachment("compte-rendu.pdf", "application/pdf", program)],
        )
    refused("attachment_content")
    assert not Message.objects.exists()


def test_it_refuses_an_oversize_attachment(doctor: Mailbox, nurse: Mailbox, settings: Any) -> None:
    settings.ATTACHMENT_MAX_BYTES = 1024
    with pytest.raises(mailbox_services.SubmissionError, match="dépasse la taille maximale"):
        submit(
            doctor,
            [nurse.address],
            attachments=[mime.Attachment("irm.pdf", "application/pdf", PDF + b"0" * 2000)],
        )
    refused("attachment_size")


# --- Suspended and closed accounts, closed boxes -----------------------------------------


def test_a_suspended_user_cannot_send_and_is_told_why(doctor: Mailbox, nurse: Mailbox) -> None:
    assert doctor.owner is not None
    accounts.suspend_account(doctor.owner, reason="Envois non sollicités", by=None)
    doctor.owner.refresh_from_db()
    with pytest.raises(
        mailbox_services.SubmissionError, match=r"compte est suspendu.*Envois non sollicités"
    ):
        submit(doctor, [nurse.address])
    refused("sender_suspended")


def test_a_suspended_user_cannot_log_in(doctor: Mailbox) -> None:
    assert doctor.owner is not None
    doctor.owner.set_password(f.PASSWORD)
    doctor.owner.save()
    accounts.suspend_account(doctor.owner, reason="Envois non sollicités", by=None)
    page = Client().post(
        "/connexion/", {"identifier": doctor.owner.username, "password": f.PASSWORD}
    )
    assert page.status_code == 403
    assert "suspendu" in page.content.decode() and "Envois non sollicités" in page.content.decode()


# A sanction closing an account also closes its boxes: charter/tests/test_abuse.py.
def test_the_box_of_a_closed_account_refuses_new_mail(doctor: Mailbox, nurse: Mailbox) -> None:
    assert nurse.owner is not None
    accounts.close_account(nurse.owner, reason="Départ à la retraite", by=f.staff())
    nurse.refresh_from_db()
    assert nurse.status == Mailbox.Status.CLOSED  # the holder's box closes with the account
    with pytest.raises(mailbox_services.SubmissionError, match="cette boîte est fermée"):
        submit(doctor, [nurse.address])
    refused("mailbox_closed")


def test_an_open_box_whose_account_is_closed_still_refuses_new_mail(
    doctor: Mailbox, nurse: Mailbox
) -> None:
    # An account closed before its boxes followed it (data from before issue 12, or a
    # box restored by hand): the rule reads the account too.
    assert nurse.owner is not None
    User.objects.filter(pk=nurse.owner.pk).update(status=User.Status.CLOSED)
    assert Mailbox.objects.get(pk=nurse.pk).status == Mailbox.Status.ACTIVE
    with pytest.raises(mailbox_services.SubmissionError, match="cette boîte est fermée"):
        submit(doctor, [nurse.address])
    refused("mailbox_closed")


def test_a_closed_mailbox_refuses_new_mail(doctor: Mailbox, nurse: Mailbox) -> None:
    nurse.status = Mailbox.Status.CLOSED
    nurse.save()
    with pytest.raises(
        mailbox_services.SubmissionError,
        match=rf"{re.escape(nurse.address)} ne peut plus recevoir.*cette boîte est fermée",
    ):
        submit(doctor, [nurse.address])
