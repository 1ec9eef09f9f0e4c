"""Mail from another operator to our patients: one patient per message, whatever the envelope.

A peer may send one message to two patients as two SMTP transactions, one recipient
each: every envelope then names one patient, yet the To: header shows each patient
the other's address. The charter rule ("a message to a patient is not mixed with
other patients") holds on what the patient reads, so the header counts too.
"""

from __future__ import annotations

import smtplib

import pytest

from mailboxes.models import Message
from tests import factories
from tests.smtp_peers import PEER, Operator, send, simple_message

pytestmark = pytest.mark.django_db(transaction=True)


def test_a_peer_cannot_show_one_patient_another_patients_address(port: int, peer: Operator):
    first, second = factories.patient_mailbox(), factories.patient_mailbox()
    raw = simple_message(f"dr.martin@{PEER}", f"{first.address}, {second.address}")
    for box in (first, second):
        with pytest.raises(smtplib.SMTPDataError) as refused:
            send(port, peer, f"dr.martin@{PEER}", [box.address], raw)
        assert refused.value.smtp_code == 550
        assert b"autre patient" in refused.value.smtp_error
    assert not Message.objects.exists()


def test_a_patient_named_in_the_header_and_the_envelope_is_one_patient(port: int, peer: Operator):
    box = factories.patient_mailbox()
    raw = simple_message(f"dr.martin@{PEER}", f"{box.address}, confrere@{PEER}")
    send(port, peer, f"dr.martin@{PEER}", [box.address], raw)
    assert Message.objects.count() == 1
