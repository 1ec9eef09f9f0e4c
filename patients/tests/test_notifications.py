"""Notifications: a fixed text, no health content, at most one per period, over real SMTP."""

from __future__ import annotations

import email
import socket
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import timedelta
from email import policy
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from django.core import mail
from django.urls import reverse
from django.utils import timezone

from mailboxes.models import Delivery, Message
from mssante.lib import mime
from patients import services
from patients.models import NotificationPreference
from patients.tests.conftest import PDF, Space
from tests.personas import login, start_draft

pytestmark = pytest.mark.django_db


@dataclass
class Received:
    mail_from: str
    rcpt_tos: list[str]
    data: bytes


@dataclass
class Sink:
    """What the SMTP server received, byte for byte."""

    messages: list[Received] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        with self.lock:
            self.messages.append(
                Received(envelope.mail_from, list(envelope.rcpt_tos), bytes(envelope.content))
            )
        return "250 Message accepted for delivery"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def smtp_sink(settings: Any) -> Iterator[Sink]:
    """A real SMTP server on 127.0.0.1 and Django's SMTP backend pointed at it."""
    sink = Sink()
    port = _free_port()
    controller = Controller(sink, hostname="127.0.0.1", port=port)
    controller.start()
    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    settings.EMAIL_HOST = "127.0.0.1"
    settings.EMAIL_PORT = port
    settings.EMAIL_HOST_USER = ""
    settings.EMAIL_HOST_PASSWORD = ""
    settings.EMAIL_USE_TLS = False
    settings.EMAIL_USE_SSL = False
    settings.EMAIL_TIMEOUT = 10
    try:
        yield sink
    finally:
        controller.stop()


def test_the_notification_on_the_wire_carries_no_subject_sender_or_body(
    space: Space, smtp_sink: Sink
) -> None:
    message = space.send(
        space.doctor_box,
        [space.patient_box.address],
        subject="Résultat VIH positif",
        text="Votre charge virale est de 12000 copies.",
        attachments=[mime.Attachment("serologie-vih.pdf", "application/pdf", PDF)],
    )
    assert isinstance(message, Message)
    # The delivery itself enqueued the notification (eager here), sent over real SMTP.
    assert len(smtp_sink.messages) == 1
    received = smtp_sink.messages[0]
    assert received.rcpt_tos == [space.patient.email]
    raw = received.data
    parsed = email.message_from_bytes(raw, policy=policy.default)
    text = parsed.get_body(preferencelist=("plain",)).get_content()
    assert "Un nouveau message vous attend" in str(parsed["Subject"])
    assert "/patient/" in text
    assert not any(part.get_filename() for part in parsed.walk())
    # Neither on the wire (raw bytes, any encoding) nor in the decoded text.
    for secret in (
        "VIH",
        "charge virale",
        "12000",
        "serologie",
        "Claire",
        "Martin",
        space.doctor_box.address,
        "hopital",
    ):
        assert secret.lower() not in text.lower(), secret
        assert secret.lower().encode() not in raw.lower(), secret


def test_at_most_one_notification_per_period(space: Space, settings: Any) -> None:
    settings.PATIENT_NOTIFY_MINUTES = 60
    mail.outbox.clear()
    assert services.notify(space.patient_box.pk)
    assert not services.notify(space.patient_box.pk)
    assert len(mail.outbox) == 1
    later = timezone.now() + timedelta(minutes=61)
    assert services.notify(space.patient_box.pk, now=later)
    assert len(mail.outbox) == 2


def test_daily_and_never_preferences_are_honoured(space: Space, settings: Any) -> None:
    settings.PATIENT_NOTIFY_MINUTES = 60
    services.update_preferences(space.patient, frequency="daily")
    mail.outbox.clear()
    assert services.notify(space.patient_box.pk)
    assert not services.notify(space.patient_box.pk, now=timezone.now() + timedelta(hours=2))
    assert services.notify(space.patient_box.pk, now=timezone.now() + timedelta(hours=25))
    services.update_preferences(space.patient, frequency="never")
    assert not services.notify(space.patient_box.pk, now=timezone.now() + timedelta(days=3))
    assert len(mail.outbox) == 2


def test_no_notification_without_a_personal_address_or_for_a_professional_box(
    space: Space,
) -> None:
    mail.outbox.clear()
    space.patient.email = ""
    space.patient.save()
    assert not services.notify(space.patient_box.pk)
    assert not services.notify(space.doctor_box.pk)
    assert mail.outbox == []


def test_a_mail_server_down_neither_blocks_the_delivery_nor_counts_as_notified(
    space: Space, settings: Any
) -> None:
    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    settings.EMAIL_HOST, settings.EMAIL_PORT = "127.0.0.1", _free_port()
    settings.EMAIL_USE_TLS = settings.EMAIL_USE_SSL = False
    settings.EMAIL_TIMEOUT = 5
    message = space.send(space.doctor_box, [space.patient_box.address])
    assert space.entry(space.patient_box, message).folder.role == "inbox"
    pref = NotificationPreference.objects.filter(user=space.patient).first()
    assert pref is None or pref.last_notified_at is None


def test_a_message_sent_from_the_webmail_notifies_the_patient_once_delivered(
    space: Space, settings: Any
) -> None:
    # The whole way: the compose page, submission, scan, delivery, then the patients app
    # told by mailboxes.hooks.delivered (connected in PatientsConfig.ready).
    settings.PATIENT_NOTIFY_MINUTES = 60
    mail.outbox.clear()
    doctor = login(space.doctor)
    draft = start_draft(doctor, space.doctor_box)
    response = space.run(
        doctor.post,
        reverse("webmail_draft_send", args=[draft.pk]),
        {"to": space.patient_box.address, "cc": "", "subject": "Résultats VIH", "text": "Bonjour."},
    )
    assert response.status_code == 302
    delivery = Delivery.objects.get(mailbox=space.patient_box)
    assert delivery.status == Delivery.Status.DELIVERED
    assert [m.to for m in mail.outbox] == [[space.patient.email]]
    assert "VIH" not in f"{mail.outbox[0].subject} {mail.outbox[0].body}"
