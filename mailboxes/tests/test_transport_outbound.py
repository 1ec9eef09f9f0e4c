"""Outbound delivery to other operators: mutual TLS, retries with back-off, DSNs."""

from __future__ import annotations

import email
import email.policy
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
import time_machine
import trustme
from django.utils import timezone

from mailboxes import services
from mailboxes.models import Delivery, Entry, Mailbox, Message
from mailboxes.transport import outbound
from mssante.lib import mime
from tests.personas import submit
from tests.smtp_peers import HERE, PEER, Operator, Sink, free_port, make_operator, sink

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def box(here: Operator, doctor: Mailbox) -> Mailbox:
    """Dr Martin's box, sending from our operator (``here``)."""
    return doctor


@pytest.fixture
def route(settings: Any) -> Iterator[int]:
    port = free_port()
    settings.SMTP_ROUTES = {PEER: ("127.0.0.1", port)}
    yield port


def dsn_for(box: Mailbox) -> Message:
    return Message.objects.get(origin=Message.Origin.SYSTEM, entries__mailbox=box)


def test_backoff_doubles_from_one_minute_up_to_four_hours() -> None:
    waits = [outbound.backoff(n) for n in range(1, 12)]
    assert waits[:4] == [timedelta(minutes=m) for m in (1, 2, 4, 8)]
    assert waits[-1] == timedelta(hours=4)
    assert max(waits) == timedelta(hours=4)


def test_a_message_to_another_operator_leaves_over_mutual_tls(
    route: int, peer: Operator, box: Mailbox
) -> None:
    handler = Sink()
    with sink(peer, handler, port=route):
        message = submit(box, [f"dr.durand@{PEER}", f"secretariat@{PEER}"])

    # One connection and one transaction for both recipients of the domain.
    assert len(handler.messages) == 1
    mail_from, rcpts, raw = handler.messages[0]
    assert mail_from == box.address
    assert sorted(rcpts) == [f"dr.durand@{PEER}", f"secretariat@{PEER}"]
    assert b"X-MSS-NIL: mssante-portal/" in raw
    assert raw.endswith(services.read_raw(message))
    # The peer saw our client certificate.
    assert (("commonName", f"mx.{HERE}"),) in handler.peer_subjects[0]
    deliveries = Delivery.objects.filter(message=message)
    assert {d.status for d in deliveries} == {Delivery.Status.DELIVERED}
    assert all(d.remote and d.mailbox is None for d in deliveries)


def test_a_permanent_refusal_bounces_at_once_with_a_dsn_in_french(
    route: int, peer: Operator, box: Mailbox
) -> None:
    handler = Sink(refuse={f"parti@{PEER}": "550 5.1.1 <parti@clinique.peer.test>: no mailbox"})
    with sink(peer, handler, port=route):
        message = submit(box, [f"parti@{PEER}", f"dr.durand@{PEER}"], subject="Résultats")

    bounced = Delivery.objects.get(message=message, recipient=f"parti@{PEER}")
    assert bounced.status == Delivery.Status.BOUNCED
    assert "550 5.1.1" in bounced.reason_text
    assert Delivery.objects.get(message=message, recipient=f"dr.durand@{PEER}").status == (
        Delivery.Status.DELIVERED
    )
    report = dsn_for(box)
    raw = services.read_raw(report)
    envelope = email.message_from_bytes(raw)
    assert envelope.get_content_type() == "multipart/report"
    assert envelope.get_param("report-type") == "delivery-status"
    assert f"Final-Recipient: rfc822;parti@{PEER}".encode() in raw
    assert b"Status: 5.1.1" in raw
    parsed = mime.parse_message(raw)
    assert parsed.subject == "Non distribué : Résultats"
    assert "n'a pas pu être distribué" in (parsed.text or "")
    assert f"parti@{PEER}" in (parsed.text or "")
    assert f"dr.durand@{PEER}" not in (parsed.text or "")
    # In the same conversation as the original, in the sender's inbox.
    assert report.thread_key == message.thread_key
    assert Entry.objects.get(mailbox=box, message=report).folder.role == "inbox"


def test_a_destination_that_is_down_is_retried_and_delivered_exactly_once(
    route: int, peer: Operator, box: Mailbox
) -> None:
    message = submit(box, [f"dr.durand@{PEER}"])
    delivery = Delivery.objects.get(message=message)
    assert delivery.status == Delivery.Status.DEFERRED
    assert delivery.attempts == 1
    assert "injoignable" in delivery.reason_text
    assert delivery.next_attempt_at - timezone.now() <= timedelta(minutes=1)

    handler = Sink()
    with sink(peer, handler, port=route):
        services.sweep()  # not due yet: nothing is sent
        assert handler.messages == []
        with time_machine.travel(timezone.now() + timedelta(minutes=2)):
            services.sweep()
        with time_machine.travel(timezone.now() + timedelta(hours=1)):
            services.sweep()

    assert len(handler.messages) == 1
    delivery.refresh_from_db()
    assert delivery.status == Delivery.Status.DELIVERED
    assert delivery.attempts == 2


def test_a_message_still_undelivered_after_five_days_bounces_with_a_dsn(
    route: int, peer: Operator, box: Mailbox
) -> None:
    start = timezone.now()
    with time_machine.travel(start, tick=False):
        message = submit(box, [f"dr.durand@{PEER}"])
    # Tries every so often: back-off grows to four hours and stays there.
    for hours in (1, 24, 72):
        with time_machine.travel(start + timedelta(hours=hours), tick=False):
            services.sweep()
    delivery = Delivery.objects.get(message=message)
    assert delivery.status == Delivery.Status.DEFERRED
    assert not Message.objects.filter(origin=Message.Origin.SYSTEM).exists()

    with time_machine.travel(start + timedelta(days=5, minutes=1), tick=False):
        services.sweep()

    delivery.refresh_from_db()
    assert delivery.status == Delivery.Status.BOUNCED
    assert "Non distribué après" in delivery.reason_text
    raw = services.read_raw(dsn_for(box))
    assert b"Status: 4.4.7" in raw
    assert b"Action: failed" in raw


def test_a_temporary_refusal_is_deferred_with_the_reason(
    route: int, peer: Operator, box: Mailbox
) -> None:
    handler = Sink(refuse={f"plein@{PEER}": "452 4.2.2 Mailbox full"})
    with sink(peer, handler, port=route):
        message = submit(box, [f"plein@{PEER}"])
    delivery = Delivery.objects.get(message=message)
    assert delivery.status == Delivery.Status.DEFERRED
    assert "452 4.2.2 Mailbox full" in delivery.reason_text


def test_a_server_whose_certificate_is_not_listed_for_the_domain_gets_nothing(
    ca: trustme.CA, tmp_path: Path, route: int, peer: Operator, box: Mailbox
) -> None:
    impostor = make_operator(ca, "imposteur.test", tmp_path / "impostor")
    handler = Sink()
    with sink(impostor, handler, port=route):
        message = submit(box, [f"dr.durand@{PEER}"])
    assert handler.messages == []
    delivery = Delivery.objects.get(message=message)
    assert delivery.status == Delivery.Status.DEFERRED
    assert "liste blanche" in delivery.reason_text


def test_a_recipient_outside_the_trust_space_is_refused_at_submission(box: Mailbox) -> None:
    with pytest.raises(services.SubmissionError, match="espace de confiance"):
        submit(box, ["quelquun@gmail.com"])
    assert not Message.objects.exists()


def _failure_report(message: Message, recipient: str, reporter: str) -> bytes:
    return (
        f"From: <mailer-daemon@{reporter}>\r\nTo: <{message.from_addr}>\r\n"
        f"Subject: Undelivered\r\nMessage-ID: <dsn1@{reporter}>\r\n"
        f"In-Reply-To: {message.message_id}\r\nMIME-Version: 1.0\r\n"
        'Content-Type: multipart/report; report-type=delivery-status; boundary="R"\r\n\r\n'
        "--R\r\nContent-Type: text/plain\r\n\r\nFailed.\r\n"
        "--R\r\nContent-Type: message/delivery-status\r\n\r\n"
        f"Reporting-MTA: dns; mx.{reporter}\r\n\r\n"
        f"Final-Recipient: rfc822;{recipient}\r\nAction: failed\r\nStatus: 5.2.1\r\n"
        "Diagnostic-Code: smtp; 550 5.2.1 mailbox disabled\r\n\r\n--R--\r\n"
    ).encode()


def test_a_failure_report_from_the_peer_marks_its_recipient_bounced(
    route: int, here: Operator, peer: Operator, box: Mailbox
) -> None:
    from tests.smtp_peers import gateway, send

    with sink(peer, Sink(), port=route):
        message = submit(box, [f"dr.durand@{PEER}"])
    recipient = f"dr.durand@{PEER}"
    with gateway(here) as gw:
        # A report from another domain cannot speak for PEER's recipient…
        send(gw.port, peer, "", [box.address], _failure_report(message, recipient, "autre.test"))
        assert Delivery.objects.get(message=message).status == Delivery.Status.DELIVERED
        # …PEER's own can (null sender: reports travel with MAIL FROM:<>).
        send(gw.port, peer, "", [box.address], _failure_report(message, recipient, PEER))
    delivery = Delivery.objects.get(message=message)
    assert delivery.status == Delivery.Status.BOUNCED
    assert "550 5.2.1 mailbox disabled" in delivery.reason_text


def test_a_report_from_another_operator_cannot_speak_for_the_peers_recipient(
    ca: trustme.CA, tmp_path: Path, route: int, here: Operator, peer: Operator, box: Mailbox
) -> None:
    from tests.smtp_peers import gateway, send

    other = make_operator(ca, "autre-operateur.test", tmp_path / "other")
    other.list()
    with sink(peer, Sink(), port=route):
        message = submit(box, [f"dr.durand@{PEER}"])
    recipient = f"dr.durand@{PEER}"
    with gateway(here) as gw:
        # Another listed operator writes PEER's From: on a report of its own.
        send(gw.port, other, "", [box.address], _failure_report(message, recipient, PEER))
    assert Delivery.objects.get(message=message).status == Delivery.Status.DELIVERED


def test_what_leaves_has_crlf_line_ends_and_no_line_over_998_bytes() -> None:
    # Stored messages keep a peer's long lines and bare LF; nothing we send may have them.
    import base64

    payload = bytes(range(256)) * 30
    stored = (
        b"Subject: " + "é".encode() * 700 + b"\nX-Trace: " + b"t" * 2500 + b"\r\n"
        b'Content-Type: multipart/mixed; boundary="B"\n\n--B\nContent-Type: text/plain; '
        b"charset=utf-8\n\n" + "é".encode() * 800 + b"\n--B\r\nContent-Type: "
        b"application/octet-stream\r\nContent-Transfer-Encoding: base64\r\n\r\n"
        + base64.b64encode(payload)
        + b"\n--B--\n"
    )
    wire = outbound.for_the_wire(stored)

    assert max(len(line) for line in wire.split(b"\r\n")) <= 998
    assert b"\n" not in wire.replace(b"\r\n", b"") and b"\r" not in wire.replace(b"\r\n", b"")
    parsed = email.message_from_bytes(wire, policy=email.policy.default)
    assert "".join(str(parsed["Subject"]).split()) == "é" * 700
    parts = list(parsed.iter_attachments())
    assert parts[0].get_payload(decode=True) == payload
    text = parsed.get_body(("plain",))
    assert text is not None
    assert "".join(text.get_content().split()) == "é" * 800  # no character cut in two


def test_a_read_receipt_leaves_with_a_null_sender_and_its_failure_is_never_reported(
    route: int, here: Operator, peer: Operator, box: Mailbox
) -> None:
    from tests.smtp_peers import gateway, send, simple_message

    raw = simple_message(f"dr.durand@{PEER}", box.address).replace(
        b"\r\n\r\n", f"\r\nDisposition-Notification-To: <dr.durand@{PEER}>\r\n\r\n".encode(), 1
    )
    with gateway(here) as gw:
        send(gw.port, peer, f"dr.durand@{PEER}", [box.address], raw)
    entry = Entry.objects.get(mailbox=box)
    # The peer's server refuses the receipt for good.
    handler = Sink(refuse={f"dr.durand@{PEER}": "550 5.1.1 no such user"})
    with sink(peer, handler, port=route):
        services.open_entry(entry, by=box.owner)

    receipt = Message.objects.get(origin=Message.Origin.SYSTEM, to_addrs=[f"dr.durand@{PEER}"])
    assert Delivery.objects.get(message=receipt).status == Delivery.Status.BOUNCED
    # RFC 8098: MAIL FROM:<>, so no DSN about it comes back to the reader's inbox.
    assert not Entry.objects.filter(mailbox=box, message__origin=Message.Origin.SYSTEM).exists()


def test_a_read_receipt_is_sent_with_mail_from_null(
    route: int, here: Operator, peer: Operator, box: Mailbox
) -> None:
    from tests.smtp_peers import gateway, send, simple_message

    raw = simple_message(f"dr.durand@{PEER}", box.address).replace(
        b"\r\n\r\n", f"\r\nDisposition-Notification-To: <dr.durand@{PEER}>\r\n\r\n".encode(), 1
    )
    with gateway(here) as gw:
        send(gw.port, peer, f"dr.durand@{PEER}", [box.address], raw)
    handler = Sink()
    with sink(peer, handler, port=route):
        services.open_entry(Entry.objects.get(mailbox=box), by=box.owner)

    assert len(handler.messages) == 1
    mail_from, rcpt_tos, _raw = handler.messages[0]
    assert mail_from in ("", "<>") and rcpt_tos == [f"dr.durand@{PEER}"]
