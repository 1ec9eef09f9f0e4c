"""The inbound SMTP gateway: mutual TLS, the liste blanche, recipients, size, the charter."""

from __future__ import annotations

import smtplib
import ssl
from pathlib import Path
from typing import Any

import pytest
import trustme
from aiosmtpd.controller import Controller

from audit.models import AuditEvent
from mailboxes import services
from mailboxes.models import Delivery, Entry, Mailbox, Message
from tests import factories
from tests.clamd import ADDRESS as CLAMD
from tests.clamd import EICAR, needs_clamd
from tests.personas import login
from tests.smtp_peers import (
    HERE,
    PEER,
    Operator,
    free_port,
    gateway,
    make_operator,
    send,
    simple_message,
)

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def box(doctor: Mailbox) -> Mailbox:
    """Dr Martin's box, where the peer's messages arrive."""
    return doctor


def test_a_listed_peer_delivers_into_the_recipients_inbox(
    port: int, peer: Operator, box: Mailbox
) -> None:
    raw = simple_message(f"dr.martin@{PEER}", box.address)
    refused = send(port, peer, f"dr.martin@{PEER}", [box.address], raw)

    assert refused == {}
    message = Message.objects.get(origin=Message.Origin.SMTP)
    assert message.from_addr == f"dr.martin@{PEER}"
    assert message.subject == "Compte rendu"
    assert services.read_raw(message) == raw  # stored encrypted, as received
    delivery = Delivery.objects.get(message=message)
    assert delivery.status == Delivery.Status.DELIVERED and not delivery.remote
    assert Entry.objects.filter(mailbox=box, message=message, folder__role="inbox").exists()
    assert AuditEvent.objects.filter(action="message.received").exists()


def test_a_peer_whose_dn_is_not_listed_for_the_sender_domain_is_refused_and_nothing_stored(
    ca: trustme.CA, tmp_path: Path, port: int, peer: Operator, box: Mailbox
) -> None:
    # A genuine certificate of our CA, but the liste blanche names another DN for PEER.
    impostor = make_operator(ca, "imposteur.test", tmp_path / "impostor")
    raw = simple_message(f"dr.martin@{PEER}", box.address)

    with pytest.raises(smtplib.SMTPSenderRefused) as refused:
        send(port, impostor, f"dr.martin@{PEER}", [box.address], raw)

    assert refused.value.smtp_code == 550
    assert b"liste blanche" in refused.value.smtp_error
    assert not Message.objects.exists()
    assert AuditEvent.objects.filter(action="smtp.peer_refused").exists()


def test_a_domain_missing_from_the_liste_blanche_is_refused(
    port: int, peer: Operator, box: Mailbox
) -> None:
    with pytest.raises(smtplib.SMTPSenderRefused):
        send(
            port, peer, "x@absent.test", [box.address], simple_message("x@absent.test", box.address)
        )
    assert not Message.objects.exists()


def test_mail_without_starttls_is_refused(port: int, box: Mailbox) -> None:
    with pytest.raises(smtplib.SMTPSenderRefused) as refused:
        send(port, None, f"a@{PEER}", [box.address], b"Subject: x\r\n\r\nx\r\n", starttls=False)
    assert refused.value.smtp_code == 530
    assert not Message.objects.exists()


def test_a_session_without_client_certificate_is_refused(
    port: int, peer: Operator, box: Mailbox
) -> None:
    # TLS 1.3: the handshake seems to succeed, the refusal shows on the next command.
    with pytest.raises((smtplib.SMTPServerDisconnected, ssl.SSLError, ConnectionError)):
        send(port, peer, f"a@{PEER}", [box.address], b"Subject: x\r\n\r\nx\r\n", client_cert=False)
    assert not Message.objects.exists()


def test_a_certificate_from_another_ca_is_refused(
    tmp_path: Path, port: int, here: Operator, box: Mailbox
) -> None:
    stranger = make_operator(trustme.CA(), PEER, tmp_path / "stranger")
    context = ssl.create_default_context(cafile=str(here.ca_file))
    context.load_cert_chain(str(stranger.cert), str(stranger.key))
    with (
        pytest.raises((smtplib.SMTPServerDisconnected, ssl.SSLError, ConnectionError)),
        smtplib.SMTP("127.0.0.1", port, timeout=10) as client,
    ):
        client.starttls(context=context)
        client.sendmail(f"a@{PEER}", [box.address], b"Subject: x\r\n\r\nx\r\n")
    assert not Message.objects.exists()


def test_an_unknown_recipient_is_refused_naming_the_address(
    port: int, peer: Operator, box: Mailbox
) -> None:
    with pytest.raises(smtplib.SMTPRecipientsRefused) as refused:
        send(
            port, peer, f"a@{PEER}", [f"personne@{HERE}"], simple_message(f"a@{PEER}", box.address)
        )
    code, text = refused.value.recipients[f"personne@{HERE}"]
    assert code == 550 and f"personne@{HERE}".encode() in text


def test_a_closed_mailbox_is_refused_and_the_others_get_the_message(
    port: int, peer: Operator, box: Mailbox
) -> None:
    closed = factories.mailbox(domain=factories.hosted_domain(HERE))
    Mailbox.objects.filter(pk=closed.pk).update(status=Mailbox.Status.CLOSED)
    refused = send(
        port,
        peer,
        f"a@{PEER}",
        [box.address, closed.address],
        simple_message(f"a@{PEER}", box.address),
    )
    assert list(refused) == [closed.address]
    assert Delivery.objects.get().recipient == box.address


def test_a_message_over_the_size_limit_gets_552(
    settings: Any, here: Operator, peer: Operator, box: Mailbox
) -> None:
    settings.SMTP_MAX_MESSAGE_BYTES = 2048
    raw = simple_message(f"a@{PEER}", box.address, body="x" * 5000)
    # smtplib announces SIZE=: the refusal comes at MAIL, before any data is sent.
    with (
        gateway(here) as controller,
        pytest.raises((smtplib.SMTPSenderRefused, smtplib.SMTPDataError)) as refused,
    ):
        send(controller.port, peer, f"a@{PEER}", [box.address], raw)
    assert refused.value.smtp_code == 552
    assert not Message.objects.exists()


def test_a_blocked_attachment_is_refused_with_the_charter_sentence(
    port: int, peer: Operator, box: Mailbox
) -> None:
    from email.message import EmailMessage

    msg = EmailMessage()
    msg["From"], msg["To"], msg["Subject"] = f"a@{PEER}", box.address, "Facture"
    msg.set_content("ci-joint")
    msg.add_attachment(
        b"MZ\x90\x00" + b"\x00" * 100,
        maintype="application",
        subtype="octet-stream",
        filename="facture.pdf.exe",
    )
    with pytest.raises(smtplib.SMTPDataError) as refused:
        send(port, peer, f"a@{PEER}", [box.address], msg.as_bytes())
    assert refused.value.smtp_code == 550
    assert b"facture.pdf.exe" in refused.value.smtp_error
    assert not Message.objects.exists()


def test_broken_mime_is_stored_as_received(port: int, peer: Operator, box: Mailbox) -> None:
    raw = (
        b"From: a@" + PEER.encode() + b"\r\nSubject: =?utf-8?q?cass=C3=A9?=\r\n"
        b'Content-Type: multipart/mixed; boundary="nope"\r\n\r\n'
        b"--nope\r\nContent-Type: text/plain\r\nContent-Transfer-Encoding: base64\r\n\r\n"
        b"@@@not base64\xff\r\n"
    )
    send(port, peer, f"a@{PEER}", [box.address], raw)
    message = Message.objects.get()
    assert services.read_raw(message) == raw
    assert message.subject == "cassé"
    assert Entry.objects.filter(mailbox=box, message=message).exists()


def test_a_message_sent_again_after_a_lost_reply_is_delivered_once(
    port: int, peer: Operator, box: Mailbox
) -> None:
    raw = simple_message(f"a@{PEER}", box.address)
    send(port, peer, f"a@{PEER}", [box.address], raw)
    send(port, peer, f"a@{PEER}", [box.address], raw)
    assert Message.objects.count() == 1
    assert Entry.objects.filter(mailbox=box).count() == 1


def test_the_gateway_command_builds_a_gateway_from_settings(settings: Any, here: Operator) -> None:
    from mailboxes.transport.inbound import make_controller

    controller = make_controller(port=0)
    assert isinstance(controller, Controller)
    assert controller.SMTP_kwargs["require_starttls"] is True
    assert controller.SMTP_kwargs["tls_context"].verify_mode == ssl.CERT_REQUIRED


@needs_clamd
def test_eicar_arriving_from_a_peer_is_quarantined(
    settings: Any, port: int, peer: Operator, box: Mailbox
) -> None:
    from email.message import EmailMessage

    settings.CLAMD_ADDRESS = CLAMD
    # The DSN owed to the sender goes to a closed port (the DSN tests follow it further).
    settings.SMTP_ROUTES = {PEER: ("127.0.0.1", free_port())}
    msg = EmailMessage()
    msg["From"], msg["To"], msg["Subject"] = f"a@{PEER}", box.address, "Analyse"
    msg.set_content("ci-joint")
    msg.add_attachment(EICAR, maintype="text", subtype="plain", filename="resultat.txt")
    send(port, peer, f"a@{PEER}", [box.address], msg.as_bytes())

    message = Message.objects.get(origin=Message.Origin.SMTP)
    assert message.scan_status == Message.ScanStatus.INFECTED
    assert Delivery.objects.get(message=message).status == Delivery.Status.QUARANTINED
    assert not Entry.objects.filter(mailbox=box, message=message).exists()


def test_the_gateway_offers_starttls_and_no_password_authentication(
    port: int, peer: Operator
) -> None:
    with smtplib.SMTP("127.0.0.1", port, timeout=10) as client:
        client.ehlo("mx.peer.test")
        assert client.has_extn("starttls")
        client.starttls(context=peer.client_context())
        client.ehlo("mx.peer.test")
        # aiosmtpd still prints the AUTH keyword, with no mechanism after it.
        assert client.esmtp_features.get("auth", "").strip() == ""
        assert client.has_extn("size")


# --------------------------------------------------------------------------- resends (issue 11)

OTHER = "cabinet.autre.test"


@pytest.fixture
def other(ca: trustme.CA, tmp_path: Path) -> Operator:
    operator = make_operator(ca, OTHER, tmp_path / "other")
    operator.list()
    return operator


def _with_id(raw: bytes, message_id: str) -> bytes:
    head, sep, body = raw.partition(b"\r\n\r\n")
    lines = [ln for ln in head.split(b"\r\n") if not ln.lower().startswith(b"message-id:")]
    return b"\r\n".join([*lines, f"Message-ID: {message_id}".encode()]) + sep + body


def test_another_peer_reusing_message_id_and_from_cannot_get_the_stored_message_into_its_box(
    port: int, peer: Operator, other: Operator, box: Mailbox
) -> None:
    target = factories.mailbox(domain=factories.hosted_domain(HERE))
    original = _with_id(
        simple_message(f"dr.martin@{PEER}", box.address, body="Résultat : HbA1c 9,1 %."),
        "<resultat-1@clinique.peer.test>",
    )
    send(port, peer, f"dr.martin@{PEER}", [box.address], original)
    # Operator B copies the Message-ID and From: it has seen (a forward, a leak) and
    # names another of our mailboxes in its own envelope.
    forged = _with_id(
        simple_message(f"dr.martin@{PEER}", target.address, body="Autre chose."),
        "<resultat-1@clinique.peer.test>",
    )
    send(port, other, f"secretariat@{OTHER}", [target.address], forged)

    received = Entry.objects.get(mailbox=target).message
    assert services.read_raw(received) == forged
    assert b"HbA1c" not in services.read_raw(received)
    assert not Entry.objects.filter(mailbox=target, message__entries__mailbox=box).exists()
    assert Entry.objects.filter(mailbox=box).count() == 1


def test_two_different_messages_sharing_message_id_and_from_are_both_delivered(
    port: int, peer: Operator, box: Mailbox
) -> None:
    first = _with_id(
        simple_message(f"labo@{PEER}", box.address, subject="Résultat 1", body="Normal."),
        "<lab@clinique.peer.test>",
    )
    second = _with_id(
        simple_message(f"labo@{PEER}", box.address, subject="Résultat 2", body="Critique."),
        "<lab@clinique.peer.test>",
    )
    send(port, peer, f"labo@{PEER}", [box.address], first)
    send(port, peer, f"labo@{PEER}", [box.address], second)

    subjects = sorted(Entry.objects.filter(mailbox=box).values_list("message__subject", flat=True))
    assert subjects == ["Résultat 1", "Résultat 2"]


def test_the_same_bytes_from_another_peer_are_a_new_message(
    port: int, peer: Operator, other: Operator, box: Mailbox
) -> None:
    raw = simple_message(f"dr.martin@{PEER}", box.address)
    send(port, peer, f"dr.martin@{PEER}", [box.address], raw)
    target = factories.mailbox(domain=factories.hosted_domain(HERE))
    send(port, other, f"secretariat@{OTHER}", [target.address], raw)

    mine, theirs = Entry.objects.get(mailbox=box).message, Entry.objects.get(mailbox=target).message
    assert mine.pk != theirs.pk
    assert Entry.objects.filter(mailbox=box).count() == 1


# --------------------------------------------------------------------------- long lines, bare LF


def _download(box: Mailbox, message: Message, index: int) -> bytes:
    from django.urls import reverse

    entry = Entry.objects.get(mailbox=box, message=message)
    response = login(box.owner).get(reverse("webmail_download", args=[entry.pk, index]))
    assert response.status_code == 200
    return b"".join(response.streaming_content) if response.streaming else response.content


def _one_line_attachment(sender: str, to: str, payload: bytes) -> bytes:
    """A message whose attachment is base64 on ONE line, as some mailers write it."""
    import base64

    return (
        (
            f"From: {sender}\r\nTo: {to}\r\nSubject: Imagerie\r\n"
            "Message-ID: <long-line@clinique.peer.test>\r\nMIME-Version: 1.0\r\n"
            'Content-Type: multipart/mixed; boundary="B"\r\n\r\n'
            "--B\r\nContent-Type: text/plain; charset=utf-8\r\n\r\nCompte rendu joint.\r\n"
            "--B\r\nContent-Type: application/pdf\r\nContent-Transfer-Encoding: base64\r\n"
            'Content-Disposition: attachment; filename="irm.pdf"\r\n\r\n'
        ).encode()
        + base64.b64encode(payload)
        + b"\r\n--B--\r\n"
    )


PDF_BYTES = b"%PDF-1.4\n" + bytes(range(256)) * 40 + b"\n%%EOF\n"


def test_a_line_over_1000_bytes_is_accepted_stored_as_received_and_readable(
    port: int, peer: Operator, doctor: Mailbox
) -> None:
    box = doctor
    raw = _one_line_attachment(f"a@{PEER}", box.address, PDF_BYTES)
    assert max(len(line) for line in raw.split(b"\r\n")) > 10_000

    assert send(port, peer, f"a@{PEER}", [box.address], raw) == {}

    message = Entry.objects.get(mailbox=box).message
    assert services.read_raw(message) == raw
    assert [a["filename"] for a in message.attachments] == ["irm.pdf"]
    assert _download(box, message, message.attachments[0]["index"]) == PDF_BYTES


def test_an_attachment_with_bare_lf_line_ends_is_stored_as_received_and_readable(
    port: int, peer: Operator, doctor: Mailbox
) -> None:
    import base64

    box = doctor
    encoded = base64.encodebytes(PDF_BYTES)  # 76-character lines ended by a bare LF
    assert len(encoded) > 1001 and b"\r" not in encoded
    raw = (
        (
            f"From: a@{PEER}\r\nTo: {box.address}\r\nSubject: Bare LF\r\n"
            "Message-ID: <bare-lf@clinique.peer.test>\r\nMIME-Version: 1.0\r\n"
            'Content-Type: multipart/mixed; boundary="B"\r\n\r\n'
            "--B\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n"
        ).encode()
        + (
            # A text written with bare LF, one of its lines starting with a dot.
            b"Ligne 1\n.ligne avec un point\n..deux points\nfin\r\n"
            b"--B\r\nContent-Type: application/pdf\r\nContent-Transfer-Encoding: base64\r\n"
            b'Content-Disposition: attachment; filename="scan.pdf"\r\n\r\n'
        )
        + encoded
        + b"--B--\r\n"
    )

    assert send(port, peer, f"a@{PEER}", [box.address], raw) == {}

    message = Entry.objects.get(mailbox=box).message
    assert services.read_raw(message) == raw
    assert _download(box, message, message.attachments[0]["index"]) == PDF_BYTES
    assert ".ligne avec un point\n..deux points" in (services.parse(message).text or "")


def _raw_dialogue(port: int, peer: Operator, mail_from: str, rcpt: str, data: bytes) -> bytes:
    """MAIL, RCPT and DATA written by hand: the bytes after DATA go out exactly as given."""
    with smtplib.SMTP("127.0.0.1", port, timeout=10) as client:
        client.ehlo("mx.peer.test")
        client.starttls(context=peer.client_context())
        client.ehlo("mx.peer.test")
        assert client.mail(mail_from)[0] == 250
        assert client.rcpt(rcpt)[0] == 250
        client.putcmd("data")
        assert client.getreply()[0] == 354
        assert client.sock is not None
        client.sock.sendall(data)
        code, text = client.getreply()
        return f"{code} ".encode() + text


def test_only_crlf_dot_crlf_ends_the_data_so_no_second_message_can_be_smuggled(
    port: int, peer: Operator, box: Mailbox
) -> None:
    victim = factories.mailbox(domain=factories.hosted_domain(HERE))
    smuggled = (
        f"MAIL FROM:<a@{PEER}>\r\nRCPT TO:<{victim.address}>\r\nDATA\r\n"
        "Subject: faux\r\n\r\nfaux\r\n"
    ).encode()
    data = (
        f"From: a@{PEER}\r\nSubject: vrai\r\n\r\nvrai\n.\r\n".encode()
        + smuggled
        + b"\r\n.\n"
        + smuggled
        + b".\r\n"
    )
    reply = _raw_dialogue(port, peer, f"a@{PEER}", box.address, data)

    assert reply.startswith(b"250")
    assert Message.objects.count() == 1
    assert not Entry.objects.filter(mailbox=victim).exists()
    stored = services.read_raw(Message.objects.get())
    assert stored.startswith(f"From: a@{PEER}".encode()) and b"faux" in stored


def test_a_long_line_still_counts_against_the_size_limit(
    settings: Any, here: Operator, peer: Operator, box: Mailbox
) -> None:
    settings.SMTP_MAX_MESSAGE_BYTES = 4096
    data = b"Subject: gros\r\n\r\n" + b"A" * 20_000 + b"\r\n.\r\n"
    with gateway(here) as controller:
        # No SIZE= announced: the limit is found while reading.
        reply = _raw_dialogue(controller.port, peer, f"a@{PEER}", box.address, data)
    assert reply.startswith(b"552")
    assert not Message.objects.exists()


def test_a_message_of_many_small_attachments_is_judged_in_seconds(
    port: int, peer: Operator, box: Mailbox
) -> None:
    import time
    from email.message import EmailMessage

    msg = EmailMessage()
    msg["From"], msg["To"], msg["Subject"] = f"a@{PEER}", box.address, "Lot"
    msg.set_content("Bonjour")
    for n in range(300):
        msg.add_attachment(f"ligne {n}".encode(), maintype="text", subtype="plain")
    raw = msg.as_bytes(policy=msg.policy.clone(linesep="\r\n"))
    assert len(raw) < 60_000

    started = time.monotonic()
    assert send(port, peer, f"a@{PEER}", [box.address], raw) == {}
    # Each attachment used to cost a parse of the whole message: minutes for this one.
    assert time.monotonic() - started < 10
    assert len(Message.objects.get().attachments) == 300


@pytest.mark.parametrize(
    "date",
    [
        "Fri, 31 Dec 9999 23:59:59 -2359",
        "Mon, 1 Jan 2024 10:00:00 +2300",
        "Mon, 1 Jan 0001 00:00:00 +0100",
    ],
)
def test_a_date_with_an_out_of_range_zone_is_stored_not_answered_451_for_ever(
    port: int, peer: Operator, box: Mailbox, date: str
) -> None:
    raw = f"From: a@{PEER}\r\nDate: {date}\r\nSubject: Daté\r\n\r\nx\r\n".encode()
    assert send(port, peer, f"a@{PEER}", [box.address], raw) == {}
    assert Entry.objects.filter(mailbox=box).count() == 1


def test_a_slow_transfer_is_not_cut_off_while_data_keeps_coming(
    here: Operator, peer: Operator, box: Mailbox
) -> None:
    import time

    raw = simple_message(f"a@{PEER}", box.address, body="ligne\r\n" * 200)
    with (
        gateway(here, timeout=1) as controller,
        smtplib.SMTP("127.0.0.1", controller.port, timeout=10) as client,
    ):
        client.ehlo("mx.peer.test")
        client.starttls(context=peer.client_context())
        client.ehlo("mx.peer.test")
        assert client.mail(f"a@{PEER}")[0] == 250
        assert client.rcpt(box.address)[0] == 250
        client.putcmd("data")
        assert client.getreply()[0] == 354
        assert client.sock is not None
        # Three seconds of transfer, never a second of silence.
        for start in range(0, len(raw), len(raw) // 6 + 1):
            client.sock.sendall(raw[start : start + len(raw) // 6 + 1])
            time.sleep(0.5)
        client.sock.sendall(b".\r\n")
        assert client.getreply()[0] == 250
    assert Entry.objects.filter(mailbox=box).count() == 1
