"""A message another operator gave us (250) and that we then did not deliver: its sender is told.

RFC 3464: a DSN (``multipart/report; report-type=delivery-status``) for every recipient
not delivered, back to the envelope's MAIL FROM through our outbound transport, itself
sent with ``MAIL FROM:<>``; never to a null sender, never about a report. Each test runs
the whole path: the peer's SMTP dialogue with our gateway, our pipeline, and the DSN
arriving at the peer's own server (a sink).
"""

from __future__ import annotations

import email
import email.policy
import uuid
from collections.abc import Iterator
from email.message import EmailMessage
from typing import Any
from unittest import mock

import pytest

from mailboxes.models import Delivery, Entry, Mailbox, Message, Quarantine
from mailboxes.services import queue
from tests import factories
from tests.clamd import ADDRESS as CLAMD
from tests.clamd import EICAR, needs_clamd
from tests.smtp_peers import (
    HERE,
    PEER,
    Operator,
    Sink,
    free_port,
    send,
    sink,
)

pytestmark = pytest.mark.django_db(transaction=True)

SENDER = f"labo@{PEER}"


@pytest.fixture
def box(doctor: Mailbox) -> Mailbox:
    """Dr Martin's box, where the peer's messages arrive."""
    return doctor


@pytest.fixture
def peer_server(peer: Operator, settings: Any) -> Iterator[Sink]:
    """The peer's own inbound server, where our DSNs arrive."""
    port = free_port()
    settings.SMTP_ROUTES = {PEER: ("127.0.0.1", port)}
    handler = Sink()
    with sink(peer, handler, port=port):
        yield handler


def _message(to: str, *, subject: str = "Résultats", attach: bytes | None = None) -> bytes:
    msg = EmailMessage()
    msg["From"], msg["To"], msg["Subject"] = SENDER, to, subject
    msg["Message-ID"] = f"<resultats-{uuid.uuid4().hex}@{PEER}>"
    msg.set_content("Bonjour,\nvoici le compte rendu confidentiel.\n")
    if attach is not None:
        msg.add_attachment(attach, maintype="text", subtype="plain", filename="resultat.txt")
    return msg.as_bytes(policy=msg.policy.clone(linesep="\r\n"))


def _the_dsn(server: Sink) -> tuple[str, list[str], email.message.EmailMessage, bytes]:
    assert len(server.messages) == 1, server.messages
    mail_from, rcpt_tos, raw = server.messages[0]
    parsed = email.message_from_bytes(raw, policy=email.policy.default)
    assert isinstance(parsed, email.message.EmailMessage)
    return mail_from, rcpt_tos, parsed, raw


def _status_blocks(report: email.message.EmailMessage) -> list[Any]:
    assert report.get_content_type() == "multipart/report"
    assert report.get_param("report-type") == "delivery-status"
    for part in report.walk():
        if part.get_content_type() == "message/delivery-status":
            payload = part.get_payload()
            assert isinstance(payload, list)
            return payload
    raise AssertionError("no message/delivery-status part")


def _assert_wire_clean(raw: bytes) -> None:
    assert max(len(line) for line in raw.split(b"\r\n")) <= 998
    assert b"\n" not in raw.replace(b"\r\n", b"")


@needs_clamd
def test_a_virus_we_accepted_and_quarantined_gets_a_dsn_back_to_the_envelope_sender(
    settings: Any, port: int, peer: Operator, peer_server: Sink, box: Mailbox
) -> None:
    settings.CLAMD_ADDRESS = CLAMD
    settings.CLAMD_TIMEOUT = 10
    raw = _message(box.address, attach=EICAR)
    assert send(port, peer, SENDER, [box.address], raw) == {}  # the 250

    message = Message.objects.get(origin=Message.Origin.SMTP)
    assert Delivery.objects.get(message=message).status == Delivery.Status.QUARANTINED
    mail_from, rcpt_tos, report, wire = _the_dsn(peer_server)
    assert mail_from in ("", "<>")  # a DSN travels with a null return path
    assert rcpt_tos == [SENDER]
    blocks = _status_blocks(report)
    assert blocks[1]["Final-Recipient"] == f"rfc822;{box.address}"
    assert blocks[1]["Action"] == "failed"
    assert blocks[1]["Status"].startswith("5.7.")
    assert b"confidentiel" not in wire  # the original's headers only, never its body…
    assert b"EICAR" not in wire and b"X5O!P%" not in wire  # …nor the attachment
    body = report.get_body(("plain",))
    assert body is not None and "quarantaine" in body.get_content()
    _assert_wire_clean(wire)


def test_a_message_we_cannot_scan_gets_a_dsn_for_each_recipient(
    settings: Any, port: int, peer: Operator, peer_server: Sink, box: Mailbox
) -> None:
    # More leaf parts than the scanner takes: "unscannable", held like a virus.
    from trust.scanning import MAX_PARTS

    settings.CLAMD_ADDRESS = f"127.0.0.1:{free_port()}"  # never reached: judged before
    second = factories.mailbox(domain=factories.hosted_domain(HERE))
    msg = EmailMessage()
    msg["From"], msg["To"], msg["Subject"] = SENDER, box.address, "Lot"
    msg.set_content("Bonjour")
    for n in range(MAX_PARTS + 1):
        msg.add_attachment(f"ligne {n}".encode(), maintype="text", subtype="plain")
    raw = msg.as_bytes(policy=msg.policy.clone(linesep="\r\n"))

    assert send(port, peer, SENDER, [box.address, second.address], raw) == {}

    assert Quarantine.objects.get().verdict == Quarantine.Verdict.UNSCANNABLE
    _mail_from, rcpt_tos, report, wire = _the_dsn(peer_server)
    assert rcpt_tos == [SENDER]
    finals = sorted(b["Final-Recipient"] for b in _status_blocks(report)[1:])
    assert finals == sorted(f"rfc822;{b.address}" for b in (box, second))
    _assert_wire_clean(wire)


def test_a_box_closed_between_the_250_and_the_delivery_bounces_with_a_dsn(
    port: int, peer: Operator, peer_server: Sink, box: Mailbox
) -> None:
    open_box = factories.mailbox(domain=factories.hosted_domain(HERE))
    # The queue is slow today: what the gateway enqueues waits…
    queued: list[tuple[str, Any]] = []
    with mock.patch.object(queue, "enqueue", lambda task, ids: queued.append((task, ids))):
        raw = _message(box.address)
        assert send(port, peer, SENDER, [box.address, open_box.address], raw) == {}
    # …and meanwhile the holder's box is closed.
    Mailbox.objects.filter(pk=box.pk).update(status=Mailbox.Status.CLOSED)
    for task, ids in queued:
        queue.enqueue(task, ids)

    message = Message.objects.get(origin=Message.Origin.SMTP)
    assert Delivery.objects.get(message=message, recipient=box.address).status == (
        Delivery.Status.BOUNCED
    )
    assert Entry.objects.filter(mailbox=open_box, message=message).exists()
    _mail_from, rcpt_tos, report, wire = _the_dsn(peer_server)
    assert rcpt_tos == [SENDER]
    blocks = _status_blocks(report)
    assert [b["Final-Recipient"] for b in blocks[1:]] == [f"rfc822;{box.address}"]
    assert blocks[1]["Status"] == "5.2.1"
    # The DSN names the original so the peer can match it, and carries its headers only.
    assert report["In-Reply-To"] == message.message_id
    assert message.message_id.encode() in wire and b"confidentiel" not in wire
    _assert_wire_clean(wire)


def test_a_null_sender_is_never_sent_a_dsn(
    port: int, peer: Operator, peer_server: Sink, box: Mailbox
) -> None:
    queued: list[tuple[str, Any]] = []
    with mock.patch.object(queue, "enqueue", lambda task, ids: queued.append((task, ids))):
        assert send(port, peer, "", [box.address], _message(box.address)) == {}
    Mailbox.objects.filter(pk=box.pk).update(status=Mailbox.Status.CLOSED)
    for task, ids in queued:
        queue.enqueue(task, ids)

    assert Delivery.objects.get(recipient=box.address).status == Delivery.Status.BOUNCED
    assert peer_server.messages == []
    assert not Message.objects.filter(null_return_path=True).exists()


def test_a_report_is_never_answered_by_a_report(
    port: int, peer: Operator, peer_server: Sink, box: Mailbox
) -> None:
    # A peer's delivery report that arrives with a (wrong) non-null return path.
    report = (
        f"From: <mailer-daemon@{PEER}>\r\nTo: <{box.address}>\r\nSubject: Undelivered\r\n"
        f"Message-ID: <report@{PEER}>\r\nMIME-Version: 1.0\r\n"
        'Content-Type: multipart/report; report-type=delivery-status; boundary="R"\r\n\r\n'
        "--R\r\nContent-Type: text/plain\r\n\r\nFailed.\r\n"
        "--R\r\nContent-Type: message/delivery-status\r\n\r\n"
        f"Reporting-MTA: dns; mx.{PEER}\r\n\r\n"
        f"Final-Recipient: rfc822;x@{PEER}\r\nAction: failed\r\nStatus: 5.1.1\r\n\r\n--R--\r\n"
    ).encode()
    queued: list[tuple[str, Any]] = []
    with mock.patch.object(queue, "enqueue", lambda task, ids: queued.append((task, ids))):
        assert send(port, peer, f"mailer-daemon@{PEER}", [box.address], report) == {}
    Mailbox.objects.filter(pk=box.pk).update(status=Mailbox.Status.CLOSED)
    for task, ids in queued:
        queue.enqueue(task, ids)

    assert Delivery.objects.get(recipient=box.address).status == Delivery.Status.BOUNCED
    assert peer_server.messages == []


def test_long_lines_from_the_original_never_reach_the_wire_in_our_dsn(
    port: int, peer: Operator, peer_server: Sink, box: Mailbox
) -> None:
    raw = (
        f"From: {SENDER}\r\nTo: {box.address}\r\nSubject: Long\r\n"
        f"Message-ID: <long@{PEER}>\r\nX-Trace: {'t' * 3000}\r\n\r\n" + "corps " * 500 + "\r\n"
    ).encode()
    queued: list[tuple[str, Any]] = []
    with mock.patch.object(queue, "enqueue", lambda task, ids: queued.append((task, ids))):
        assert send(port, peer, SENDER, [box.address], raw) == {}
    Mailbox.objects.filter(pk=box.pk).update(status=Mailbox.Status.CLOSED)
    for task, ids in queued:
        queue.enqueue(task, ids)

    _mail_from, _rcpt, report, wire = _the_dsn(peer_server)
    _assert_wire_clean(wire)
    headers = [p for p in report.walk() if p.get_content_type() == "text/rfc822-headers"]
    assert "t" * 3000 in headers[0].get_content().replace("\n", "").replace(" ", "")


def test_a_box_closed_between_rcpt_and_data_costs_the_other_recipients_nothing(
    port: int, peer: Operator, peer_server: Sink, box: Mailbox
) -> None:
    import smtplib

    open_box = factories.mailbox(domain=factories.hosted_domain(HERE))
    with smtplib.SMTP("127.0.0.1", port, timeout=10) as client:
        client.ehlo("mx.peer.test")
        client.starttls(context=peer.client_context())
        client.ehlo("mx.peer.test")
        assert client.mail(SENDER)[0] == 250
        assert client.rcpt(box.address)[0] == 250
        assert client.rcpt(open_box.address)[0] == 250
        Mailbox.objects.filter(pk=box.pk).update(status=Mailbox.Status.CLOSED)
        assert client.data(_message(box.address))[0] == 250

    message = Message.objects.get(origin=Message.Origin.SMTP)
    assert Entry.objects.filter(mailbox=open_box, message=message).exists()
    assert Delivery.objects.get(message=message, recipient=box.address).status == (
        Delivery.Status.BOUNCED
    )
    _mail_from, rcpt_tos, report, _wire = _the_dsn(peer_server)
    assert rcpt_tos == [SENDER]
    assert [b["Final-Recipient"] for b in _status_blocks(report)[1:]] == [f"rfc822;{box.address}"]


def test_our_own_sender_is_told_too_when_a_box_closes_before_delivery(box: Mailbox) -> None:
    from mailboxes import services

    colleague = factories.mailbox(domain=factories.hosted_domain(HERE))
    queued: list[tuple[str, Any]] = []
    with mock.patch.object(queue, "enqueue", lambda task, ids: queued.append((task, ids))):
        sent = services.submit_message(
            mailbox=box,
            author=box.owner,
            to=[colleague.address],
            cc=[],
            subject="Relais",
            text="Bonjour.",
        )
    Mailbox.objects.filter(pk=colleague.pk).update(status=Mailbox.Status.CLOSED)
    for task, ids in queued:
        queue.enqueue(task, ids)

    assert Delivery.objects.get(message=sent).status == Delivery.Status.BOUNCED
    report = Message.objects.get(origin=Message.Origin.SYSTEM, entries__mailbox=box)
    assert report.subject == "Non distribué : Relais"
    assert report.thread_key == sent.thread_key
