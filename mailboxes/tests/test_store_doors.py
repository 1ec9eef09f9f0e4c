"""One way a message is stored: every door gives the same shape, and keeps the same promises.

The doors are the webmail, the API, the SMTP gateway, read receipts, delivery status
notifications (to a sender of ours and to a peer's) and the quarantine notice; all of
them store through ``mailboxes.services.store.store_message``. Each test goes in the
way a user or a peer does (HTTP, an SMTP dialogue) and checks what every stored
message must be: sealed at rest, readable back, journalled, and in the recipient's
webmail inbox. The real pipeline runs (Celery eager, commits for real).
"""

from __future__ import annotations

import smtplib
from collections.abc import Iterator
from datetime import timedelta
from html import unescape
from pathlib import Path
from typing import Any

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from accounts.models import User
from audit.models import AuditEvent
from mailboxes import blobs, services
from mailboxes.models import Entry, Folder, Mailbox, Message
from mssante.lib import mime
from tests import factories
from tests.clamd import ADDRESS as CLAMD
from tests.clamd import EICAR, needs_clamd
from tests.personas import client_for, person, start_draft
from tests.personas import send as send_and_deliver
from tests.smtp_peers import (
    Operator,
    Sink,
    free_port,
    send,
    simple_message,
    sink,
)

pytestmark = pytest.mark.django_db(transaction=True)

HERE = "hopital.mssante.test"  # the ``here`` and ``peer`` fixtures' domains (conftest)
PEER = "clinique.peer.test"
SENDER = f"labo@{PEER}"


@pytest.fixture
def peer_server(here: Operator, peer: Operator, settings: Any) -> Iterator[Sink]:
    """The peer's own inbound server: what we send to the peer arrives here."""
    listening = free_port()
    settings.SMTP_ROUTES = {PEER: ("127.0.0.1", listening)}
    handler = Sink(refuse={f"parti@{PEER}": "550 5.1.1 <parti@clinique.peer.test>: no mailbox"})
    with sink(peer, handler, port=listening):
        yield handler


@pytest.fixture
def claire() -> tuple[User, Mailbox]:
    user = factories.professional(first_name="Claire", last_name="Martin")
    return user, factories.mailbox(user, domain=factories.hosted_domain(HERE))


@pytest.fixture
def julien() -> tuple[User, Mailbox]:
    user = factories.professional(first_name="Julien", last_name="Dupont")
    return user, factories.mailbox(user, domain=factories.hosted_domain(HERE))


def lab_message(to: str, *, body: str) -> bytes:
    """A message as a peer's laboratory software writes it, with its own Message-ID."""
    return simple_message(SENDER, to, subject="Résultats", body=body + "\n")


def text_of(content: bytes) -> str:
    return unescape(content.decode())


def send_from_webmail(
    client: Client,
    box: Mailbox,
    to: str,
    *,
    subject: str,
    text: str,
    receipt: bool = False,
    file: tuple[str, bytes] | None = None,
) -> Message:
    """Compose, attach, send: the clicks of the webmail."""
    draft = start_draft(client, box)
    if file is not None:
        upload = client.post(
            reverse("webmail_draft_upload", args=[draft.pk]),
            {"files": [SimpleUploadedFile(file[0], file[1], "text/plain")]},
            headers={"X-Requested-With": "XMLHttpRequest"},
        )
        assert upload.status_code == 200, upload.content
    fields = {"to": to, "cc": "", "subject": subject, "text": text}
    if receipt:
        fields["read_receipt"] = "1"
    response = client.post(reverse("webmail_draft_send", args=[draft.pk]), fields)
    assert response.status_code == 302, response.content
    return Message.objects.filter(sender_mailbox=box).latest("pk")


def assert_stored(message: Message, *, says: str, event: str) -> bytes:
    """The shape every door gives: sealed at rest, readable back, listed, journalled."""
    message.refresh_from_db()
    raw = services.read_raw(message)  # decrypted and authenticated under its own name
    assert message.size == len(raw)
    assert message.key_id and bytes(message.wrapped_key)
    at_rest = Path(blobs.storage().path(message.blob_name)).read_bytes()
    assert raw not in at_rest and message.message_id.encode() not in at_rest
    parsed = mime.parse_message(raw)
    assert says in " ".join((parsed.text or "").split())
    assert parsed.subject == message.subject
    assert AuditEvent.objects.filter(action=event, object_id=str(message.pk)).exists()
    return raw


def in_the_inbox(user: User, box: Mailbox, message: Message) -> str:
    """The message as ``user`` finds it: listed in ``box``'s webmail inbox, then opened."""
    client = client_for(user)
    inbox = Folder.objects.get(mailbox=box, role=Folder.Role.INBOX)
    listing = client.get(reverse("webmail_folder", args=[inbox.pk]))
    assert listing.status_code == 200
    assert message.subject in text_of(listing.content)
    entry = Entry.objects.get(mailbox=box, message=message)
    assert entry.folder_id == inbox.pk
    page = client.get(reverse("webmail_read", args=[entry.pk]))
    assert page.status_code == 200
    return text_of(page.content)


# --------------------------------------------------------------------------- the doors


def test_the_webmail_door(claire: tuple[User, Mailbox], julien: tuple[User, Mailbox]) -> None:
    (doctor, dbox), (nurse, nbox) = claire, julien
    message = send_from_webmail(
        client_for(doctor), dbox, nbox.address, subject="Bilan", text="Bonjour Julien, le bilan."
    )
    assert_stored(message, says="Bonjour Julien, le bilan.", event="message.submitted")
    assert message.origin == Message.Origin.WEB and message.submitted_by == doctor
    sent = Entry.objects.get(mailbox=dbox, message=message)
    assert sent.folder.role == Folder.Role.SENT and sent.seen
    assert "Bonjour Julien, le bilan." in in_the_inbox(nurse, nbox, message)


def test_the_api_door(julien: tuple[User, Mailbox]) -> None:
    nurse, nbox = julien
    app = factories.shared_mailbox(
        factories.professional(), kind=Mailbox.Kind.APPLICATIVE, domain=nbox.domain
    )
    _token, secret = factories.api_token(app)
    response = Client(headers={"Authorization": f"Bearer {secret}"}).post(
        "/api/v1/messages",
        {"to": [nbox.address], "subject": "Résultat", "text": "Glycémie normale."},
        content_type="application/json",
    )
    assert response.status_code == 201
    message = Message.objects.get(public_id=response.json()["id"])
    assert_stored(message, says="Glycémie normale.", event="message.submitted")
    assert message.origin == Message.Origin.API
    assert Entry.objects.get(mailbox=app, message=message).folder.role == Folder.Role.SENT
    assert "Glycémie normale." in in_the_inbox(nurse, nbox, message)


def test_the_smtp_door(port: int, peer: Operator, julien: tuple[User, Mailbox]) -> None:
    nurse, nbox = julien
    raw = lab_message(nbox.address, body="Voici le compte rendu du laboratoire.")
    assert send(port, peer, SENDER, [nbox.address], raw) == {}
    message = Message.objects.get(origin=Message.Origin.SMTP)
    assert (
        assert_stored(
            message, says="Voici le compte rendu du laboratoire.", event="message.received"
        )
        == raw
    )  # kept exactly as received
    assert message.peer_domain == PEER and message.resend_key
    assert "Voici le compte rendu du laboratoire." in in_the_inbox(nurse, nbox, message)


def test_the_read_receipt_door(claire: tuple[User, Mailbox], julien: tuple[User, Mailbox]) -> None:
    (_doctor, dbox), (nurse, nbox) = claire, julien
    # Receipts asked to another box than the sender's (a receipt for the sending box itself
    # is its timeline only: test_read_receipts) are messages like any other.
    secretary, sbox = person("Anne", "Secretariat")
    original = send_and_deliver(
        dbox,
        [nbox.address],
        subject="Avis",
        text="Un avis ?",
        extra_headers={"Disposition-Notification-To": f"<{sbox.address}>"},
    )
    entry = Entry.objects.get(mailbox=nbox, message=original)
    assert client_for(nurse).get(reverse("webmail_read", args=[entry.pk])).status_code == 200
    receipt = Message.objects.get(origin=Message.Origin.SYSTEM, sender_mailbox=nbox)
    assert_stored(receipt, says="a été ouvert le", event="message.mdn_sent")
    assert receipt.null_return_path and receipt.thread_key == original.thread_key
    assert "Message automatique de la plateforme" in in_the_inbox(secretary, sbox, receipt)


def test_the_door_of_a_dsn_to_our_sender(peer_server: Sink, claire: tuple[User, Mailbox]) -> None:
    doctor, dbox = claire
    original = send_from_webmail(
        client_for(doctor), dbox, f"parti@{PEER}", subject="Courrier", text="Bonjour."
    )
    report = Message.objects.get(origin=Message.Origin.SYSTEM, in_reply_to=original.message_id)
    assert_stored(report, says="n'a pas pu être distribué", event="message.dsn_sent")
    assert report.null_return_path and report.scan_status == Message.ScanStatus.NOT_SCANNED
    assert report.thread_key == original.thread_key
    assert f"parti@{PEER}" in in_the_inbox(doctor, dbox, report)


def test_the_door_of_a_dsn_to_a_peers_sender(
    port: int, peer: Operator, peer_server: Sink, julien: tuple[User, Mailbox]
) -> None:
    _nurse, nbox = julien
    # Two recipients, one closing after RCPT: the message is accepted, that one bounces.
    colleague = factories.mailbox(domain=nbox.domain)
    with smtplib.SMTP("127.0.0.1", port, timeout=10) as client:
        client.ehlo("mx.peer.test")
        client.starttls(context=peer.client_context())
        client.ehlo("mx.peer.test")
        assert client.mail(SENDER)[0] == 250
        assert client.rcpt(nbox.address)[0] == 250
        assert client.rcpt(colleague.address)[0] == 250
        Mailbox.objects.filter(pk=nbox.pk).update(status=Mailbox.Status.CLOSED)
        assert client.data(lab_message(nbox.address, body="Confidentiel."))[0] == 250

    report = Message.objects.get(origin=Message.Origin.SYSTEM, to_addrs=[SENDER])
    raw = assert_stored(report, says="n'a pas été distribué", event="message.dsn_sent")
    assert report.null_return_path and report.scan_status == Message.ScanStatus.NOT_SCANNED
    ((mail_from, rcpt_tos, wire),) = peer_server.messages
    assert mail_from in ("", "<>") and rcpt_tos == [SENDER]
    assert wire.endswith(raw)


@needs_clamd
def test_the_door_of_the_quarantine_notice(
    settings: Any, claire: tuple[User, Mailbox], julien: tuple[User, Mailbox]
) -> None:
    settings.CLAMD_ADDRESS = CLAMD
    settings.CLAMD_TIMEOUT = 10
    (doctor, dbox), (_nurse, nbox) = claire, julien
    held = send_from_webmail(
        client_for(doctor),
        dbox,
        nbox.address,
        subject="Analyse",
        text="Ci-joint.",
        file=("note.txt", EICAR),
    )
    held.refresh_from_db()
    assert held.scan_status == Message.ScanStatus.INFECTED
    notice = Message.objects.get(origin=Message.Origin.SYSTEM, to_addrs=[dbox.address])
    assert_stored(notice, says="virus détecté dans une pièce jointe", event="message.notice")
    assert notice.scan_status == Message.ScanStatus.NOT_SCANNED
    page = in_the_inbox(doctor, dbox, notice)
    assert "Message automatique de la plateforme" in page and "EICAR" not in page


# --------------------------------------------------------------------------- promises


def broken(*args: Any, **kwargs: Any) -> None:
    raise RuntimeError("delivery failed")


def test_a_failure_after_the_commit_never_takes_a_received_messages_blob(
    port: int, peer: Operator, julien: tuple[User, Mailbox], monkeypatch: pytest.MonkeyPatch
) -> None:
    # Tasks run eagerly (the embedded default): the delivery runs inside the commit's
    # callbacks and its failure comes back through the gateway, which answers 451.
    nurse, nbox = julien
    raw = lab_message(nbox.address, body="Le message est enregistré.")
    monkeypatch.setattr(services, "process", broken)
    with pytest.raises(smtplib.SMTPDataError) as answer:
        send(port, peer, SENDER, [nbox.address], raw)
    assert answer.value.smtp_code == 451
    message = Message.objects.get(origin=Message.Origin.SMTP)
    assert services.read_raw(message) == raw
    # The peer tries again (a 4xx): the same bytes find the stored message, delivered once.
    monkeypatch.undo()
    assert send(port, peer, SENDER, [nbox.address], raw) == {}
    assert Message.objects.get(origin=Message.Origin.SMTP) == message
    assert "Le message est enregistré." in in_the_inbox(nurse, nbox, message)


def test_a_failure_after_the_commit_never_takes_a_read_receipts_blob(
    claire: tuple[User, Mailbox], julien: tuple[User, Mailbox], monkeypatch: pytest.MonkeyPatch
) -> None:
    (_doctor, dbox), (nurse, nbox) = claire, julien
    # A receipt stored as a message: asked to another box than the sender's (the sender's
    # own receipt is its timeline only).
    secretary, sbox = person("Anne", "Secretariat")
    original = send_and_deliver(
        dbox,
        [nbox.address],
        subject="Avis",
        text="Un avis ?",
        extra_headers={"Disposition-Notification-To": f"<{sbox.address}>"},
    )
    entry = Entry.objects.get(mailbox=nbox, message=original)
    monkeypatch.setattr(services, "process", broken)
    with pytest.raises(RuntimeError):
        client_for(nurse).get(reverse("webmail_read", args=[entry.pk]))
    receipt = Message.objects.get(origin=Message.Origin.SYSTEM, sender_mailbox=nbox)
    assert "a été ouvert le" in (mime.parse_message(services.read_raw(receipt)).text or "")
    # The sweeper delivers it once the pipeline works again.
    monkeypatch.undo()
    services.sweep(now=timezone.now() + timedelta(minutes=5))
    assert "Message automatique de la plateforme" in in_the_inbox(secretary, sbox, receipt)
