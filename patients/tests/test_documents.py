"""Mes documents: what professionals send is filed by type and date, and the patient's own."""

from __future__ import annotations

import io
import os
import time
from pathlib import Path
from typing import Any

import pytest
from django.conf import settings
from django.core.files.uploadedfile import SimpleUploadedFile
from django.core.management import call_command
from django.test import Client
from django.urls import reverse

from audit.models import AuditEvent
from mailboxes import blobs
from mailboxes import services as mailbox_services
from mailboxes import tasks as mailbox_tasks
from mailboxes.models import Message, Quarantine
from mailboxes.services import quarantine
from mssante.lib import mime, xdm
from patients import services_documents
from patients.models_documents import FiledMessage, PatientDocument
from patients.tests.conftest import PDF, Space
from patients.tests.test_structured_documents import package
from tests import factories
from tests.personas import login
from trust.scanning import EICAR

pytestmark = pytest.mark.django_db

CDA = (
    b"<?xml version='1.0' encoding='UTF-8'?><ClinicalDocument xmlns='urn:hl7-org:v3'>"
    b"<component><structuredBody><component><section><title>Conclusion</title>"
    b"<text>Bilan <b>normal</b> &lt;script&gt;alert(1)&lt;/script&gt;</text></section>"
    b"</component></structuredBody></component></ClinicalDocument>"
)
PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 64


def _package() -> bytes:
    return package(
        [
            xdm.Document("cr.xml", "text/xml", CDA, "11502-2", "Bilan sanguin"),
            xdm.Document("lettre.pdf", "application/pdf", PDF, "11490-0", "Lettre de liaison"),
        ],
        first_names="Lucie",
    )


def _send_documents(space: Space) -> Message:
    return space.send(
        space.doctor_box,
        [space.patient_box.address],
        subject="Vos documents",
        attachments=[
            mime.Attachment(xdm.FILENAME, "application/zip", _package()),
            mime.Attachment("ordonnance-mars.pdf", "application/pdf", PDF),
        ],
    )


def _docs(space: Space) -> dict[str, PatientDocument]:
    return {d.title: d for d in PatientDocument.objects.filter(patient=space.patient)}


def _list(client: Client, **params: str) -> str:
    response = client.get(reverse("patients:documents"), params)
    assert response.status_code == 200
    return response.content.decode()


def test_a_delivery_files_each_document_by_type_with_its_xdm_metadata(space: Space) -> None:
    _send_documents(space)
    docs = _docs(space)
    assert set(docs) == {"Bilan sanguin", "Lettre de liaison", "Ordonnance mars"}
    assert docs["Bilan sanguin"].family == PatientDocument.Family.RESULTS
    assert docs["Bilan sanguin"].type_code == "11502-2"
    assert docs["Bilan sanguin"].filename == "DOC0001.XML"
    assert docs["Bilan sanguin"].author == "Paul MARTIN"
    assert docs["Lettre de liaison"].family == PatientDocument.Family.LETTER
    assert docs["Ordonnance mars"].family == PatientDocument.Family.PRESCRIPTION
    assert AuditEvent.objects.filter(action="patient.documents_filed").count() == 1


def test_filing_twice_files_nothing_more(space: Space) -> None:
    _send_documents(space)
    assert services_documents.file_received_documents(space.patient_box.pk) == 0
    assert PatientDocument.objects.filter(patient=space.patient).count() == 3


def test_the_list_files_what_the_task_missed(space: Space) -> None:
    _send_documents(space)
    PatientDocument.objects.all().delete()
    FiledMessage.objects.all().delete()
    page = _list(login(space.patient))
    assert "Bilan sanguin" in page and "Lettre de liaison" in page


def test_the_list_filters_by_type_and_searches_sealed_titles(space: Space) -> None:
    _send_documents(space)
    client = login(space.patient)
    page = _list(client, type="ordonnance")
    assert "ordonnance-mars" in page and "Bilan sanguin" not in page
    page = _list(client, q="liaison")
    assert "Lettre de liaison" in page and "ordonnance-mars" not in page
    page = _list(client, q="martin bilan")
    assert "Bilan sanguin" in page and "Lettre de liaison" not in page


def test_preview_is_sandboxed_and_download_is_an_attachment(space: Space) -> None:
    _send_documents(space)
    docs = _docs(space)
    client = login(space.patient)
    preview = client.get(reverse("patients:document_preview", args=[docs["Lettre de liaison"].pk]))
    assert preview.status_code == 200
    assert b"".join(preview.streaming_content) == PDF
    assert "sandbox" in preview["Content-Security-Policy"]
    download = client.get(reverse("patients:document_download", args=[docs["Bilan sanguin"].pk]))
    assert download["Content-Type"] == "application/octet-stream"
    assert download["Content-Disposition"].startswith("attachment;")
    assert b"".join(download.streaming_content) == CDA
    # A CDA is never previewed raw: its text is shown escaped in the page.
    assert (
        client.get(
            reverse("patients:document_preview", args=[docs["Bilan sanguin"].pk])
        ).status_code
        == 404
    )
    read = client.get(reverse("patients:document_read", args=[docs["Bilan sanguin"].pk])).content
    assert b"&lt;script&gt;" in read and b"<script>alert" not in read


def test_another_patients_document_is_not_found(space: Space) -> None:
    _send_documents(space)
    doc = _docs(space)["Lettre de liaison"]
    other = login(space.other)
    for name in ("document_preview", "document_download", "document_read"):
        assert other.get(reverse(f"patients:{name}", args=[doc.pk])).status_code == 404
    assert other.post(reverse("patients:document_hide", args=[doc.pk])).status_code == 404
    assert "Lettre de liaison" not in _list(other)
    doc.refresh_from_db()
    assert doc.hidden_at is None


def test_a_professional_cannot_open_the_patient_space_documents(space: Space) -> None:
    _send_documents(space)
    doc = _docs(space)["Lettre de liaison"]
    response = login(space.doctor).get(reverse("patients:document_download", args=[doc.pk]))
    assert response.status_code in (302, 403, 404)


def test_hiding_moves_a_document_under_documents_masques_and_back(space: Space) -> None:
    _send_documents(space)
    doc = _docs(space)["Ordonnance mars"]
    client = login(space.patient)
    response = client.post(reverse("patients:document_hide", args=[doc.pk]))
    assert response.status_code == 302
    assert "ordonnance-mars" not in _list(client)
    assert "ordonnance-mars" in _list(client, masques="1")
    client.post(reverse("patients:document_show", args=[doc.pk]))
    assert "ordonnance-mars" in _list(client)
    actions = list(
        AuditEvent.objects.filter(action__startswith="patient.document_")
        .order_by("pk")
        .values_list("action", flat=True)
    )
    assert actions == ["patient.document_hidden", "patient.document_shown"]


def test_hiding_needs_a_post_with_the_csrf_token(space: Space) -> None:
    _send_documents(space)
    doc = _docs(space)["Ordonnance mars"]
    client = login(space.patient, enforce_csrf_checks=True)
    assert client.get(reverse("patients:document_hide", args=[doc.pk])).status_code == 405
    assert client.post(reverse("patients:document_hide", args=[doc.pk])).status_code == 403
    doc.refresh_from_db()
    assert doc.hidden_at is None


def test_a_document_of_a_message_in_the_trash_is_neither_listed_nor_handed_out(
    space: Space,
) -> None:
    message = _send_documents(space)
    doc = _docs(space)["Lettre de liaison"]
    mailbox_services.trash_entries([space.entry(space.patient_box, message)], by=space.patient)
    client = login(space.patient)
    assert "Lettre de liaison" not in _list(client)
    assert client.get(reverse("patients:document_download", args=[doc.pk])).status_code == 404


def test_a_message_in_the_trash_before_filing_is_not_filed(space: Space) -> None:
    message = _send_documents(space)
    PatientDocument.objects.all().delete()
    FiledMessage.objects.all().delete()
    mailbox_services.trash_entries([space.entry(space.patient_box, message)], by=space.patient)
    assert services_documents.file_received_documents(space.patient_box.pk) == 0


def test_an_unsafe_package_is_filed_as_the_archive_never_unpacked(space: Space) -> None:
    space.send(
        space.doctor_box,
        [space.patient_box.address],
        attachments=[mime.Attachment(xdm.FILENAME, "application/zip", b"PK\x03\x04 pas un zip")],
    )
    (doc,) = PatientDocument.objects.filter(patient=space.patient)
    assert doc.package_number == 0 and doc.filename == xdm.FILENAME


def _add(client: Client, name: str, data: bytes, content_type: str, **fields: str) -> Any:
    return client.post(
        reverse("patients:document_add"),
        {
            "file": SimpleUploadedFile(name, data, content_type),
            "family": "ordonnance",
            **fields,
        },
    )


def test_the_patient_adds_a_scanned_prescription_sealed_at_rest(space: Space) -> None:
    client = login(space.patient)
    response = _add(client, "scan.png", PNG, "image/png", title="Ordonnance du Dr Petit")
    assert response.status_code == 302
    doc = PatientDocument.objects.get(patient=space.patient)
    assert doc.source == PatientDocument.Source.ADDED
    assert doc.content_type == "image/png"
    stored = blobs.storage().open(doc.blob_name).read()
    assert PNG not in stored
    assert "Ordonnance du Dr Petit" in _list(client)
    preview = client.get(reverse("patients:document_preview", args=[doc.pk]))
    assert b"".join(preview.streaming_content) == PNG
    assert AuditEvent.objects.filter(action="patient.document_added").count() == 1


def test_a_forged_upload_of_eicar_is_refused_and_nothing_is_stored(space: Space) -> None:
    client = login(space.patient)
    before = {
        name
        for name, _m in blobs._stored(blobs.storage(), [*blobs.KINDS, services_documents.BLOB_KIND])
    }
    response = _add(client, "ordonnance.pdf", EICAR, "application/pdf")
    assert response.status_code == 400
    assert "antivirus" in response.content.decode()
    assert not PatientDocument.objects.exists()
    assert {
        name
        for name, _m in blobs._stored(blobs.storage(), [*blobs.KINDS, services_documents.BLOB_KIND])
    } == before
    assert AuditEvent.objects.filter(action="patient.document_refused").count() == 1


@pytest.mark.parametrize(
    ("name", "data", "said"),
    [
        ("programme.exe", b"MZ" + b"\x00" * 100, "ne sont pas autorisés"),
        ("photo.png", b"MZ" + b"\x00" * 100, "type bloqué"),
    ],
)
def test_a_forbidden_type_is_refused_in_french(
    space: Space, name: str, data: bytes, said: str
) -> None:
    response = _add(login(space.patient), name, data, "image/png")
    assert response.status_code == 400
    assert said in response.content.decode()
    assert not PatientDocument.objects.exists()


def test_an_oversized_file_is_refused_in_french(space: Space, settings: Any) -> None:
    settings.ATTACHMENT_MAX_BYTES = 1000
    response = _add(login(space.patient), "scan.png", PNG + b"\x00" * 2000, "image/png")
    assert response.status_code == 400
    assert "dépasse la taille maximale" in response.content.decode()
    assert not PatientDocument.objects.exists()


def test_an_added_document_declared_pdf_but_not_one_is_only_downloadable(space: Space) -> None:
    client = login(space.patient)
    _add(client, "scan.pdf", b"<html><script>alert(1)</script></html>", "application/pdf")
    doc = PatientDocument.objects.get(patient=space.patient)
    assert doc.content_type == "application/octet-stream"
    assert client.get(reverse("patients:document_preview", args=[doc.pk])).status_code == 404


def test_a_message_held_by_the_antivirus_is_filed_only_once_staff_release_it(
    space: Space,
) -> None:
    message = space.send(
        space.doctor_box,
        [space.patient_box.address],
        attachments=[mime.Attachment("resultats.txt", "text/plain", EICAR)],
    )
    assert not PatientDocument.objects.filter(patient=space.patient).exists()
    record = Quarantine.objects.get(message=message)
    space.run(
        quarantine.release_quarantined, record, reason="Faux positif vérifié", by=factories.staff()
    )
    (doc,) = PatientDocument.objects.filter(patient=space.patient)
    assert doc.family == PatientDocument.Family.RESULTS


@pytest.mark.django_db(transaction=True)
def test_the_demo_patient_finds_her_documents_filed_once_however_often_seeded() -> None:
    from mssante import demo

    call_command("seed_demo", stdout=io.StringIO())
    call_command("seed_demo", stdout=io.StringIO())
    patient = demo.patient_identity().user
    docs = list(PatientDocument.objects.filter(patient=patient))
    assert {d.family for d in docs} == {
        PatientDocument.Family.REPORT,
        PatientDocument.Family.RESULTS,
        PatientDocument.Family.IMAGING,
        PatientDocument.Family.PRESCRIPTION,
    }
    assert len(docs) == 5
    assert sum(d.source == PatientDocument.Source.ADDED for d in docs) == 1
    page = _list(login(patient))
    assert "Compte rendu de consultation" in page and "Radiographie thoracique" in page


def test_without_the_antivirus_an_upload_waits_and_nothing_is_stored(
    space: Space, settings: Any
) -> None:
    settings.CLAMD_ADDRESS = "127.0.0.1:9"  # nothing listens: clamd unavailable
    settings.CLAMD_TIMEOUT = 1
    response = _add(login(space.patient), "scan.png", PNG, "image/png")
    assert response.status_code == 400
    assert "momentanément indisponible" in response.content.decode()
    assert not PatientDocument.objects.exists()


def test_an_altered_blob_is_unavailable_not_an_error(space: Space) -> None:
    client = login(space.patient)
    _add(client, "scan.png", PNG, "image/png")
    doc = PatientDocument.objects.get(patient=space.patient)
    path = blobs.storage().path(doc.blob_name)
    with open(path, "r+b") as handle:
        handle.seek(40)
        handle.write(b"\x00\x01\x02\x03")
    assert client.get(reverse("patients:document_download", args=[doc.pk])).status_code == 404


def test_the_list_reads_in_a_fixed_number_of_queries(space: Space) -> None:
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    client = login(space.patient)
    _send_documents(space)
    _list(client)
    with CaptureQueriesContext(connection) as few:
        _list(client)
    _send_documents(space)
    _add(client, "scan.png", PNG, "image/png")
    _list(client)
    with CaptureQueriesContext(connection) as more:
        _list(client)
    assert PatientDocument.objects.filter(patient=space.patient).count() == 7
    assert len(more) == len(few)


def test_a_result_sent_through_the_api_is_filed_as_well(space: Space) -> None:
    token, _raw = factories.api_token(space.doctor_box, scope="send")
    space.run(
        mailbox_services.send_api_message,
        token,
        to=[space.patient_box.address],
        cc=[],
        subject="Résultats",
        text="Ci-joint.",
        html=None,
        attachments=[mime.Attachment(xdm.FILENAME, "application/zip", _package())],
        idempotency_key="resultat-1",
    )
    titles = {d.title for d in PatientDocument.objects.filter(patient=space.patient)}
    assert titles == {"Bilan sanguin", "Lettre de liaison"}


def test_titles_names_and_authors_are_sealed_in_the_database(space: Space) -> None:
    from django.db import connection

    _send_documents(space)
    with connection.cursor() as cursor:
        cursor.execute("SELECT title, filename, author FROM patients_patientdocument")
        stored = b"".join(bytes(value) for row in cursor.fetchall() for value in row)
    for clear in (b"Bilan sanguin", b"Lettre de liaison", b"ordonnance-mars", b"MARTIN"):
        assert clear not in stored


def test_the_scheduled_collection_judges_the_patients_own_files_too(space: Space) -> None:
    """A file written for an upload whose row never committed (a process killed between the
    two) is collected once past the grace period; the documents' files stay; a kind of blob
    nobody vouches for is never deleted."""
    client = login(space.patient)
    assert _add(client, "scan.png", PNG, "image/png").status_code == 302
    kept = PatientDocument.objects.get(patient=space.patient).blob_name
    root = Path(blobs.storage().path(""))
    orphan = root / blobs.new_name(services_documents.BLOB_KIND)
    unknown = root / blobs.new_name("inconnu")
    for path in (orphan, unknown):
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(b"cut off before its row")
    past = time.time() - settings.BLOB_ORPHAN_GRACE_SECONDS - 60
    for path in (orphan, unknown, root / kept):
        os.utime(path, (past, past))

    mailbox_tasks.collect_orphan_blobs.delay()

    assert not orphan.exists()
    assert (root / kept).exists() and unknown.exists()
    assert "scan.png" in _list(client)
