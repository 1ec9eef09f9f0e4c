"""Another operator's lab: its results reach the doctor grouped by the patient they name."""

from __future__ import annotations

from email.message import EmailMessage
from email.utils import make_msgid

import pytest

from mailboxes.models import Message
from mssante.lib import xdm
from tests import factories
from tests.smtp_peers import PEER, Operator, send

pytestmark = pytest.mark.django_db(transaction=True)

PDF = b"%PDF-1.4\n1 0 obj<<>>endobj\ntrailer<<>>\n%%EOF\n"


def test_a_peers_result_carries_the_ins_its_package_names(port: int, peer: Operator) -> None:
    doctor = factories.mailbox(factories.professional())
    package = xdm.build(
        [xdm.Document("cr.pdf", "application/pdf", PDF, "11502-2", "Biologie")],
        patient=xdm.Patient("284127512345678", "1.2.250.1.213.1.4.10", "DUPONT", "Jeanne"),
        author=xdm.Author("810000000001", "BERNARD", "Sophie"),
        source_oid="2.25.1",
    )
    msg = EmailMessage()
    msg["From"] = f"labo@{PEER}"
    msg["To"] = doctor.address
    msg["Subject"] = "Résultats"
    msg["Message-ID"] = make_msgid(domain=PEER)
    msg.set_content("Résultats joints.\n")
    msg.add_attachment(package, maintype="application", subtype="zip", filename=xdm.FILENAME)
    send(
        port,
        peer,
        f"labo@{PEER}",
        [doctor.address],
        msg.as_bytes(policy=msg.policy.clone(linesep="\r\n")),
    )
    assert Message.objects.get().patient_ins == "284127512345678"
