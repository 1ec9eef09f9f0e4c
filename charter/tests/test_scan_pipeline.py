"""The pipeline's scan step with the real clamd (local EICAR signatures): submit → scan → deliver.

`make test` runs clamd on 127.0.0.1:53310; elsewhere these tests skip when it is not there.
"""

from __future__ import annotations

import io
import socket
import zipfile
from collections.abc import Callable
from contextlib import AbstractContextManager
from datetime import timedelta
from typing import Any

import pytest
from django.test import Client
from django.utils import timezone

from audit.models import AuditEvent
from mailboxes import services
from mailboxes.models import Delivery, Entry, Folder, Mailbox, Message, Quarantine
from mssante.lib import mime
from tests.clamd import ADDRESS, EICAR, needs_clamd
from tests.personas import send
from trust.scanning import ClamdUnavailable

Capture = Callable[..., AbstractContextManager[Any]]

pytestmark = pytest.mark.django_db

PDF = b"%PDF-1.4\n1 0 obj<<>>endobj\ntrailer<<>>\n%%EOF\n"


@pytest.fixture
def clamd(settings: Any) -> None:
    settings.CLAMD_ADDRESS = ADDRESS
    settings.CLAMD_TIMEOUT = 10


@pytest.fixture
def boxes(doctor: Mailbox, nurse: Mailbox) -> tuple[Mailbox, Mailbox]:
    return doctor, nurse


def zipped(name: str, data: bytes) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr(name, data)
    return buffer.getvalue()


def closed_port() -> str:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return f"127.0.0.1:{s.getsockname()[1]}"


@needs_clamd
def test_a_clean_message_is_scanned_clean_and_delivered(
    clamd: None, boxes: tuple[Mailbox, Mailbox]
) -> None:
    doctor, nurse = boxes
    message = send(
        doctor,
        [nurse.address],
        attachments=[mime.Attachment("cr.pdf", "application/pdf", PDF)],
    )
    message.refresh_from_db()
    assert message.scan_status == Message.ScanStatus.CLEAN
    assert Entry.objects.filter(mailbox=nurse, message=message).exists()
    # Scanned and delivered by one task: the verdict rides on the delivery's event.
    event = AuditEvent.objects.get(action="message.delivered", object_id=str(message.pk))
    assert event.data["verdict"] == "clean"


@needs_clamd
@pytest.mark.parametrize(
    ("attachment", "how"),
    [
        (mime.Attachment("note.txt", "text/plain", EICAR), "as a plain attachment"),
        (mime.Attachment("archive.zip", "application/zip", zipped("note.txt", EICAR)), "in a zip"),
        (mime.Attachment("donnees.bin", "application/octet-stream", EICAR + b"\n"), "as base64"),
    ],
)
def test_eicar_is_quarantined_never_delivered(
    clamd: None,
    boxes: tuple[Mailbox, Mailbox],
    attachment: mime.Attachment,
    how: str,
) -> None:
    doctor, nurse = boxes
    message = send(doctor, [nurse.address], attachments=[attachment])
    if how == "as base64":
        raw = services.read_raw(message)
        assert EICAR not in raw and b"Content-Transfer-Encoding: base64" in raw
    message.refresh_from_db()
    assert message.scan_status == Message.ScanStatus.INFECTED, how
    assert Delivery.objects.get(message=message).status == Delivery.Status.QUARANTINED
    assert not Entry.objects.filter(mailbox=nurse, message=message).exists()
    record = Quarantine.objects.get(message=message)
    assert record.verdict == Quarantine.Verdict.INFECTED and record.signatures
    # The sender is told in French, from a system address, without the signature.
    notice = Entry.objects.get(mailbox=doctor, folder__role=Folder.Role.INBOX).message
    text = services.parse(notice).text or ""
    assert "virus détecté dans une pièce jointe" in text and "EICAR" not in text
    assert AuditEvent.objects.filter(action="message.quarantined", object_id=str(message.pk))
    # A second scan (a duplicate task) changes nothing.
    services.scan(message.pk)
    assert Quarantine.objects.count() == 1
    assert Entry.objects.filter(mailbox=doctor, folder__role=Folder.Role.INBOX).count() == 1


@needs_clamd
def test_clamd_down_the_message_waits_then_is_delivered_once(
    settings: Any, boxes: tuple[Mailbox, Mailbox], django_capture_on_commit_callbacks: Capture
) -> None:
    doctor, nurse = boxes
    settings.CLAMD_ADDRESS = closed_port()
    message = send(doctor, [nurse.address])
    message.refresh_from_db()
    assert message.scan_status == Message.ScanStatus.PENDING
    assert Delivery.objects.get(message=message).status == Delivery.Status.QUEUED
    assert not Entry.objects.filter(mailbox=nurse, message=message).exists()
    with pytest.raises(ClamdUnavailable):
        services.scan(message.pk)
    # The sweeper finds nothing to deliver while the scan has not run.
    later = timezone.now() + timedelta(minutes=5)
    with django_capture_on_commit_callbacks(execute=True):
        services.sweep(now=later)
    assert not Entry.objects.filter(mailbox=nurse, message=message).exists()
    # clamd is back: the sweeper re-enqueues the scan, which delivers.
    settings.CLAMD_ADDRESS = ADDRESS
    with django_capture_on_commit_callbacks(execute=True):
        services.sweep(now=later)
    message.refresh_from_db()
    assert message.scan_status == Message.ScanStatus.CLEAN
    with django_capture_on_commit_callbacks(execute=True):
        services.sweep(now=later + timedelta(minutes=5))
        services.scan(message.pk)
    assert Entry.objects.filter(mailbox=nurse, message=message).count() == 1
    assert AuditEvent.objects.filter(action="message.delivered").count() == 1


def test_scanning_off_means_not_scanned_never_clean(boxes: tuple[Mailbox, Mailbox]) -> None:
    doctor, nurse = boxes
    message = send(doctor, [nurse.address])
    message.refresh_from_db()
    assert message.scan_status == Message.ScanStatus.NOT_SCANNED
    assert Entry.objects.filter(mailbox=nurse, message=message).exists()


@needs_clamd
def test_staff_release_a_held_message_and_it_is_delivered_once(
    clamd: None,
    boxes: tuple[Mailbox, Mailbox],
    django_capture_on_commit_callbacks: Capture,
    staff_client: Client,
) -> None:
    doctor, nurse = boxes
    message = send(
        doctor,
        [nurse.address],
        attachments=[mime.Attachment("note.txt", "text/plain", EICAR)],
    )
    record = Quarantine.objects.get(message=message)
    url = "/admin/mailboxes/quarantine/"
    form = {"action": "release", "_selected_action": [record.pk]}
    with django_capture_on_commit_callbacks(execute=True):
        staff_client.post(url, {**form, "apply": "1", "reason": "Faux positif vérifié"})
    record.refresh_from_db()
    assert record.status == Quarantine.Status.RELEASED
    assert Entry.objects.filter(mailbox=nurse, message=message).count() == 1
    assert Delivery.objects.get(message=message).status == Delivery.Status.DELIVERED
    event = AuditEvent.objects.get(action="quarantine.released")
    assert event.data["reason"] == "Faux positif vérifié"
    # The released message is never called clean.
    message.refresh_from_db()
    assert message.scan_status == Message.ScanStatus.INFECTED
