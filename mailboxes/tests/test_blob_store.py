"""The blob store failing to write: a clear temporary error at each door, nothing half-stored,
and no orphan file kept for ever (the scheduled collection).

"Disk full" is real here: RLIMIT_FSIZE makes every write of this process stop at a
few hundred bytes (EFBIG, Python ignores SIGXFSZ), as a file system that fills up
midway through a file. The fault-injection suite (tests/faults) does the same to
the real web and gateway processes, and makes the store read-only.
"""

from __future__ import annotations

import contextlib
import os
import resource
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from django.conf import settings
from django.test import Client
from django.urls import reverse

from mailboxes import blobs, services, tasks
from mailboxes.models import Draft, Mailbox, Message
from tests.personas import Lab, login, start_draft
from tests.smtp_peers import Operator, gateway, send, simple_message


@contextlib.contextmanager
def disk_full(after: int = 256) -> Iterator[None]:
    """Every file of this process stops growing at ``after`` bytes while inside."""
    soft, hard = resource.getrlimit(resource.RLIMIT_FSIZE)
    resource.setrlimit(resource.RLIMIT_FSIZE, (after, hard))
    try:
        yield
    finally:
        resource.setrlimit(resource.RLIMIT_FSIZE, (soft, hard))


def stored_files() -> list[str]:
    root = Path(blobs.storage().path(""))
    return sorted(p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file())


@pytest.mark.django_db
def test_a_write_cut_short_by_a_full_disk_leaves_no_file_and_is_a_temporary_error() -> None:
    with disk_full(), pytest.raises(blobs.BlobStoreUnavailable):
        blobs.write(blobs.new_name("messages"), os.urandom(4000))
    assert stored_files() == []


@pytest.mark.django_db
def test_sending_from_the_webmail_on_a_full_disk_says_so_in_french_and_keeps_the_draft(
    doctor: Mailbox, nurse: Mailbox
) -> None:
    client = login(doctor.owner)
    draft = start_draft(client, doctor)
    fields = {"to": nurse.address, "subject": "Bilan", "text": "Texte " * 200}
    with disk_full():
        response = client.post(reverse("webmail_draft_send", args=[draft.pk]), fields)
    page = response.content.decode()
    assert response.status_code == 503
    assert response["Retry-After"]
    assert "momentanément indisponible" in page and "Réessayez dans quelques minutes" in page
    assert services.open_draft(Draft.objects.get(pk=draft.pk)).to == [nurse.address]
    assert not Message.objects.exists()
    assert stored_files() == []
    # Once there is room again, the same click sends it.
    response = client.post(reverse("webmail_draft_send", args=[draft.pk]), fields)
    assert response.status_code == 302
    assert [m.subject for m in Message.objects.all()].count("Bilan") == 1


@pytest.mark.django_db
def test_a_file_added_to_a_draft_on_a_full_disk_is_refused_plainly(doctor: Mailbox) -> None:
    from django.core.files.uploadedfile import SimpleUploadedFile

    client = login(doctor.owner)
    draft = start_draft(client, doctor)
    with disk_full():
        response = client.post(
            reverse("webmail_draft_upload", args=[draft.pk]),
            {"files": [SimpleUploadedFile("bilan.pdf", os.urandom(3000), "application/pdf")]},
            headers={"X-Requested-With": "XMLHttpRequest"},
        )
    assert response.status_code == 503
    assert "momentanément indisponible" in response.content.decode()
    assert not draft.files.exists() and stored_files() == []


@pytest.mark.django_db
def test_the_api_answers_503_on_a_full_disk_and_the_retry_sends_once(
    laboratoire: Lab, nurse: Mailbox
) -> None:
    secret = laboratoire.raw
    client = Client(headers={"Authorization": f"Bearer {secret}", "Idempotency-Key": "lab-1"})
    body = {"to": [nurse.address], "subject": "Résultat", "text": "Texte " * 200}
    with disk_full():
        refused = client.post("/api/v1/messages", body, content_type="application/json")
    assert refused.status_code == 503
    assert refused.json()["code"] == "storage_unavailable"
    assert "momentanément indisponible" in refused.json()["message"]
    assert refused["Retry-After"]
    assert not Message.objects.exists() and stored_files() == []
    accepted = client.post("/api/v1/messages", body, content_type="application/json")
    again = client.post("/api/v1/messages", body, content_type="application/json")
    assert accepted.status_code == again.status_code == 201
    assert [m.subject for m in Message.objects.all()].count("Résultat") == 1


@pytest.mark.django_db(transaction=True)
def test_the_gateway_answers_452_on_a_full_disk_and_stores_nothing(
    here: Operator, peer: Operator, nurse: Mailbox
) -> None:
    raw = simple_message("dr.durand@clinique.peer.test", nurse.address, body="Ligne\n" * 400)
    with gateway(here) as controller:
        with disk_full(), pytest.raises(Exception) as refused:
            send(controller.port, peer, "dr.durand@clinique.peer.test", [nurse.address], raw)
        assert getattr(refused.value, "smtp_code", None) == 452
        assert refused.value.smtp_error.startswith(b"4.3.1 ")
        assert not Message.objects.exists() and stored_files() == []
        # The peer's next try goes through.
        assert (
            send(controller.port, peer, "dr.durand@clinique.peer.test", [nurse.address], raw) == {}
        )
    assert Message.objects.count() == 1


@pytest.mark.django_db
def test_the_scheduled_collection_removes_old_orphans_and_temporary_files_only(
    doctor: Mailbox, nurse: Mailbox
) -> None:
    kept = services.submit_message(
        mailbox=doctor, author=doctor.owner, to=[nurse.address], cc=[], subject="Gardé", text="x"
    )
    root = Path(blobs.storage().path(""))
    folder = root / kept.blob_name.rpartition("/")[0]
    old_orphan = folder / f"{uuid.uuid4().hex}.bin"
    new_orphan = folder / f"{uuid.uuid4().hex}.bin"
    old_temp = folder / f".tmp-{uuid.uuid4().hex}"
    not_ours = folder / "notes.txt"
    for path in (old_orphan, new_orphan, old_temp, not_ours):
        path.write_bytes(b"left behind")
    past = time.time() - settings.BLOB_ORPHAN_GRACE_SECONDS - 60
    for path in (old_orphan, old_temp, not_ours, root / kept.blob_name):
        os.utime(path, (past, past))

    tasks.collect_orphan_blobs.delay()

    assert not old_orphan.exists() and not old_temp.exists()
    # Younger than the grace period: maybe a blob whose row is being committed right now.
    assert new_orphan.exists()
    assert not_ours.exists()
    assert services.read_raw(Message.objects.get(pk=kept.pk))  # still readable
    schedule = settings.CELERY_BEAT_SCHEDULE["collect-orphan-blobs"]
    assert schedule["task"] == "mailboxes.tasks.collect_orphan_blobs"


@pytest.mark.django_db(transaction=True)
def test_a_failure_after_the_commit_never_takes_the_committed_messages_blob(
    doctor: Mailbox, nurse: Mailbox, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Tasks run eagerly (the embedded default): the delivery runs inside the commit's
    # callbacks, and its failure comes back through submit_message.
    def broken(*args: Any, **kwargs: Any) -> None:
        raise RuntimeError("delivery failed")

    monkeypatch.setattr(services, "process", broken)
    with pytest.raises(RuntimeError):
        services.submit_message(
            mailbox=doctor, author=doctor.owner, to=[nurse.address], cc=[], subject="Gardé",
            text="Le message est enregistré : son contenu doit le rester.",
        )  # fmt: skip
    (message,) = [m for m in Message.objects.all() if m.subject == "Gardé"]
    assert b"son contenu doit le rester" in services.read_raw(message).replace(b"=\r\n", b"")
