"""Quarantine: what the sender and recipients see, the notice, and the staff actions."""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractContextManager
from typing import Any

import pytest
from django.test import Client
from django.urls import reverse

from audit.models import AuditEvent
from mailboxes import blobs, services
from mailboxes.models import Delivery, Entry, Folder, Message, Quarantine
from mailboxes.services import quarantine
from mssante.lib import mime
from tests import factories as f
from tests.personas import Person, login, send
from trust.scanning import ScanStatus, ScanVerdict

Capture = Callable[..., AbstractContextManager[Any]]
pytestmark = pytest.mark.django_db

PDF = b"%PDF-1.4\n1 0 obj<<>>endobj\ntrailer<<>>\n%%EOF\n"


@pytest.fixture
def boxes(claire: Person, julien: Person) -> dict[str, Any]:
    return {"doctor": claire.user, "nurse": julien.user, "dbox": claire.box, "nbox": julien.box}


def held_message(boxes: dict[str, Any], capture: Capture) -> Message:
    """A message stored as submitted, then held as the scan step does on a virus."""
    # Without running its on-commit work: stored, not scanned yet.
    message = services.submit_message(
        mailbox=boxes["dbox"],
        author=boxes["doctor"],
        to=[boxes["nbox"].address],
        cc=[],
        subject="Compte rendu",
        text="Bonjour.",
        attachments=[mime.Attachment("cr.pdf", "application/pdf", PDF)],
    )
    with capture(execute=True):
        message.scan_status = Message.ScanStatus.INFECTED
        message.save(update_fields=["scan_status"])
        quarantine.quarantine_message(
            message, ScanVerdict(ScanStatus.INFECTED, ("Win.Test.EICAR_HDB-1",), parts_scanned=3)
        )
    return message


def test_a_held_message_is_recorded_with_its_envelope_only(
    boxes: dict[str, Any], django_capture_on_commit_callbacks: Capture
) -> None:
    message = held_message(boxes, django_capture_on_commit_callbacks)
    record = Quarantine.objects.get(message=message)
    assert record.status == Quarantine.Status.HELD
    assert record.recipients == [boxes["nbox"].address]
    assert record.signatures == ["Win.Test.EICAR_HDB-1"]
    assert set(Delivery.objects.filter(message=message).values_list("status", flat=True)) == {
        Delivery.Status.QUARANTINED
    }
    assert not Entry.objects.filter(mailbox=boxes["nbox"], message=message).exists()
    assert AuditEvent.objects.filter(action="message.quarantined", object_id=str(message.pk))


def test_the_sender_is_told_in_french_without_the_signature(
    boxes: dict[str, Any], django_capture_on_commit_callbacks: Capture
) -> None:
    message = held_message(boxes, django_capture_on_commit_callbacks)
    inbox = Folder.objects.get(mailbox=boxes["dbox"], role=Folder.Role.INBOX)
    (notice_entry,) = Entry.objects.filter(folder=inbox)
    notice = notice_entry.message
    assert notice.origin == Message.Origin.SYSTEM
    assert notice.from_addr == "ne-pas-repondre@hopital.mssante.test"
    parsed = mime.parse_message(blobs.read(notice.blob_name, notice.key_id, notice.wrapped_key))
    text = parsed.text or ""
    assert "virus détecté dans une pièce jointe" in text
    assert message.subject in text
    assert "EICAR" not in text and "Win.Test" not in text
    page = login(boxes["doctor"]).get(reverse("webmail_read", args=[notice_entry.pk]))
    assert "Message automatique de la plateforme" in page.content.decode()


def test_the_senders_copy_says_quarantine_and_offers_no_attachment(
    boxes: dict[str, Any], django_capture_on_commit_callbacks: Capture
) -> None:
    message = held_message(boxes, django_capture_on_commit_callbacks)
    sent = Entry.objects.get(mailbox=boxes["dbox"], message=message)
    client = login(boxes["doctor"])
    page = client.get(reverse("webmail_read", args=[sent.pk])).content.decode()
    assert "mis en quarantaine" in page
    assert reverse("webmail_download", args=[sent.pk, 1]) not in page
    assert client.get(reverse("webmail_download", args=[sent.pk, 1])).status_code == 404


def test_a_message_not_scanned_says_so_and_never_clean(boxes: dict[str, Any]) -> None:
    message = send(boxes["dbox"], [boxes["nbox"].address])
    assert Message.objects.get(pk=message.pk).scan_status == Message.ScanStatus.NOT_SCANNED
    entry = Entry.objects.get(mailbox=boxes["nbox"], message=message)
    page = login(boxes["nurse"]).get(reverse("webmail_read", args=[entry.pk])).content.decode()
    assert "Non analysé" in page and "n'ont pas été analysés" in page
    assert "Aucun virus détecté" not in page and "sain" not in page.lower().split("<body")[1]


def test_staff_see_the_quarantine_in_the_admin_without_content(
    boxes: dict[str, Any], django_capture_on_commit_callbacks: Capture, staff_client: Client
) -> None:
    message = held_message(boxes, django_capture_on_commit_callbacks)
    page = staff_client.get("/admin/mailboxes/quarantine/")
    assert page.status_code == 200
    text = page.content.decode()
    assert message.subject in text
    record = Quarantine.objects.get()
    detail = staff_client.get(f"/admin/mailboxes/quarantine/{record.pk}/change/").content.decode()
    assert boxes["dbox"].address in detail  # the recipients: on the record's page
    assert "Win.Test.EICAR_HDB-1" in detail and "Bonjour." not in detail


def test_staff_delete_a_held_message_with_a_reason(
    boxes: dict[str, Any], django_capture_on_commit_callbacks: Capture, staff_client: Client
) -> None:
    message = held_message(boxes, django_capture_on_commit_callbacks)
    record = Quarantine.objects.get()
    url = "/admin/mailboxes/quarantine/"
    form = {"action": "delete_for_good", "_selected_action": [record.pk]}
    asked = staff_client.post(url, form)
    assert asked.status_code == 200 and "Motif" in asked.content.decode()
    staff_client.post(url, {**form, "apply": "1", "reason": ""})
    assert Message.objects.filter(pk=message.pk).exists()
    staff_client.post(url, {**form, "apply": "1", "reason": "Virus avéré"})
    assert not Message.objects.filter(pk=message.pk).exists()
    record.refresh_from_db()
    assert record.status == Quarantine.Status.DELETED and record.decision_reason == "Virus avéré"
    assert record.from_addr == boxes["dbox"].address
    event = AuditEvent.objects.get(action="quarantine.deleted")
    assert event.data["reason"] == "Virus avéré" and event.actor_id is not None


def test_release_needs_a_reason(
    boxes: dict[str, Any], django_capture_on_commit_callbacks: Capture
) -> None:
    held_message(boxes, django_capture_on_commit_callbacks)
    with pytest.raises(quarantine.QuarantineError, match="motif"):
        quarantine.release_quarantined(Quarantine.objects.get(), reason=" ", by=f.staff())


def test_only_staff_decide_on_the_quarantine(
    boxes: dict[str, Any], django_capture_on_commit_callbacks: Capture
) -> None:
    held_message(boxes, django_capture_on_commit_callbacks)
    record = Quarantine.objects.get()
    for decide in (quarantine.release_quarantined, quarantine.delete_quarantined):
        with pytest.raises(quarantine.QuarantineError, match="équipe"):
            decide(record, reason="Je le veux", by=boxes["nurse"])
    record.refresh_from_db()
    assert record.status == Quarantine.Status.HELD
