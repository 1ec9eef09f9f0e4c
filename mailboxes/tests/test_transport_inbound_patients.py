"""Mail from another operator to our patients: one patient per message, whatever the envelope.

A peer may send one message to two patients as two SMTP transactions, one recipient
each: every envelope then names one patient, yet the To: header shows each patient
the other's address. The charter rule ("a message to a patient is not mixed with
other patients") holds on what the patient reads, so the header counts too.
"""

from __future__ import annotations

import smtplib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import trustme

from mailboxes.models import Message
from tests import factories
from tests.smtp_peers import Operator, gateway, make_operator, send, simple_message

pytestmark = pytest.mark.django_db(transaction=True)

HERE = "hopital.mssante.test"
PEER = "clinique.peer.test"


@pytest.fixture(scope="module")
def ca() -> trustme.CA:
    return trustme.CA()


@pytest.fixture
def here(ca: trustme.CA, tmp_path: Path, settings: Any) -> Operator:
    operator = make_operator(ca, HERE, tmp_path / "here")
    operator.settings_for(settings)
    return operator


@pytest.fixture
def peer(ca: trustme.CA, tmp_path: Path) -> Operator:
    operator = make_operator(ca, PEER, tmp_path / "peer")
    operator.list()
    return operator


@pytest.fixture
def port(here: Operator) -> Iterator[int]:
    with gateway(here) as controller:
        yield controller.port


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
