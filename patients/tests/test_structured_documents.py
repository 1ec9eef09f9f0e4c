"""IHE XDM in the webmail: "Joindre au dossier du patient" in compose, "Documents structurés" when reading."""

from __future__ import annotations

import io
import zipfile

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.http import Http404
from django.test import Client
from django.urls import reverse

from mailboxes import services as mailbox_services
from mailboxes.models import Draft, DraftAttachment, Message
from mssante.lib import mime, xdm
from patients.tests.conftest import PDF, Space
from tests import factories
from tests.personas import login, start_draft

pytestmark = pytest.mark.django_db

CDA = (
    b"<?xml version='1.0' encoding='UTF-8'?><ClinicalDocument xmlns='urn:hl7-org:v3'>"
    b"<component><structuredBody><component><section><title>Conclusion</title>"
    b"<text>Bilan <b>normal</b> &lt;script&gt;alert(1)&lt;/script&gt;</text></section>"
    b"</component></structuredBody></component></ClinicalDocument>"
)


def _draft(space: Space, client: Client, to: str) -> Draft:
    draft = start_draft(client, space.doctor_box)
    client.post(
        reverse("webmail_draft", args=[draft.pk]),
        {"to": to, "cc": "", "subject": "Bilan", "text": "Ci-joint."},
    )
    return draft


TYPED = {
    "patient": "",
    "ins": "279035121518989",
    "oid": "1.2.250.1.213.1.4.10",
    "birth_name": "Durand",
    "first_names": "Paul",
    "birth_date": "1979-03-05",
    "sex": "M",
    "type_code": "11502-2",
}


def _send(space: Space, client: Client, draft: Draft, to: str) -> Message:
    response = space.run(
        client.post,
        reverse("webmail_draft_send", args=[draft.pk]),
        {"to": to, "cc": "", "subject": "Bilan", "text": "Ci-joint."},
    )
    assert response.status_code == 302
    (message,) = [
        m for m in Message.objects.filter(sender_mailbox=space.doctor_box) if m.subject == "Bilan"
    ]
    return message


def test_compose_builds_the_package_and_the_sent_message_carries_it_with_the_headers(
    space: Space,
) -> None:
    doctor = login(space.doctor)
    draft = _draft(space, doctor, space.nurse_box.address)
    doctor.post(
        reverse("webmail_draft_upload", args=[draft.pk]),
        {"files": [SimpleUploadedFile("bilan.pdf", PDF, "application/pdf")]},
    )
    pdf = DraftAttachment.objects.get(draft=draft)
    page = doctor.get(reverse("webmail_draft", args=[draft.pk])).content.decode()
    assert reverse("webmail_draft_xdm", args=[draft.pk]) in page

    form = doctor.get(reverse("webmail_draft_xdm", args=[draft.pk])).content.decode()
    assert "Joindre au dossier du patient" in form and "bilan.pdf" in form
    response = doctor.post(
        reverse("webmail_draft_xdm", args=[draft.pk]),
        {
            **TYPED,
            "qualified": "on",
            "attachments": [str(pdf.pk)],
            "files": [SimpleUploadedFile("bilan.xml", CDA, "text/xml")],
        },
    )
    assert response.status_code == 302
    package = DraftAttachment.objects.get(draft=draft, filename=xdm.FILENAME)
    read = xdm.read(mailbox_services.read_draft_attachment(package))
    assert [d.mime_type for d in read.documents] == ["application/pdf", "text/xml"]
    assert read.patient_id == "279035121518989^^^&1.2.250.1.213.1.4.10&ISO"
    national_id = space.doctor.professional.national_id
    assert read.documents[0].author.startswith(f"{national_id}^")

    # The autosave rewrites the sealed draft: the recorded headers stay.
    doctor.post(
        reverse("webmail_draft_save", args=[draft.pk]),
        {"to": space.nurse_box.address, "subject": "Bilan", "text": "Ci-joint !"},
        headers={"HX-Request": "true"},
    )
    assert mailbox_services.open_draft(Draft.objects.get(pk=draft.pk)).headers == {
        "X-MSS-INS": "O",
        "X-MSS-CODECDA": "11502-2",
    }
    page = doctor.get(reverse("webmail_draft", args=[draft.pk])).content.decode()
    assert "Une archive IHE_XDM.ZIP est jointe" in page

    message = _send(space, doctor, draft, space.nurse_box.address)
    raw = mailbox_services.read_raw(message)
    assert b"X-MSS-INS: O" in raw
    assert b"X-MSS-CODECDA: 11502-2" in raw
    names = [a.filename for a in mime.parse_message(raw).attachments]
    assert names == ["bilan.pdf", xdm.FILENAME]


def test_a_patient_written_to_can_be_picked_and_an_unqualified_ins_says_n(space: Space) -> None:
    identity = space.patient.patient
    identity.qualified = False
    identity.save()
    space.send(space.doctor_box, [space.patient_box.address])
    doctor = login(space.doctor)
    draft = _draft(space, doctor, space.nurse_box.address)
    form = doctor.get(reverse("webmail_draft_xdm", args=[draft.pk])).content.decode()
    assert f"INS {identity.ins}" in form
    response = doctor.post(
        reverse("webmail_draft_xdm", args=[draft.pk]),
        {
            "patient": str(identity.pk),
            "type_code": "18748-4",
            "files": [SimpleUploadedFile("irm.pdf", PDF, "application/pdf")],
        },
    )
    assert response.status_code == 302
    message = _send(space, doctor, draft, space.nurse_box.address)
    raw = mailbox_services.read_raw(message)
    assert b"X-MSS-INS: N" in raw and b"X-MSS-CODECDA: 18748-4" in raw
    package = mime.get_part(raw, mime.parse_message(raw).attachments[0].index).data
    assert xdm.read(package).patient_id == f"{identity.ins}^^^&{identity.oid}&ISO"


def test_a_removed_package_takes_its_headers_with_it(space: Space) -> None:
    doctor = login(space.doctor)
    draft = _draft(space, doctor, space.nurse_box.address)
    doctor.post(
        reverse("webmail_draft_xdm", args=[draft.pk]),
        {**TYPED, "files": [SimpleUploadedFile("cr.pdf", PDF, "application/pdf")]},
    )
    package = DraftAttachment.objects.get(draft=draft, filename=xdm.FILENAME)
    doctor.post(reverse("webmail_draft_attachment_delete", args=[draft.pk, package.pk]))
    raw = mailbox_services.read_raw(_send(space, doctor, draft, space.nurse_box.address))
    assert b"X-MSS-INS" not in raw and b"X-MSS-CODECDA" not in raw


@pytest.mark.parametrize(
    ("changes", "error"),
    [
        ({"ins": "12"}, "15 caractères"),
        ({"birth_name": ""}, "obligatoire"),
    ],
)
def test_a_wrong_identity_is_refused(space: Space, changes: dict[str, str], error: str) -> None:
    doctor = login(space.doctor)
    draft = _draft(space, doctor, space.nurse_box.address)
    response = doctor.post(
        reverse("webmail_draft_xdm", args=[draft.pk]),
        {**TYPED, **changes, "files": [SimpleUploadedFile("cr.pdf", PDF, "application/pdf")]},
    )
    assert response.status_code == 400
    assert error in response.content.decode()
    assert not DraftAttachment.objects.filter(draft=draft).exists()


def test_no_document_or_a_file_that_is_not_pdf_nor_cda_is_refused(space: Space) -> None:
    doctor = login(space.doctor)
    draft = _draft(space, doctor, space.nurse_box.address)
    url = reverse("webmail_draft_xdm", args=[draft.pk])
    assert "au moins un document" in doctor.post(url, TYPED).content.decode()
    response = doctor.post(
        url, {**TYPED, "files": [SimpleUploadedFile("x.pdf", b"MZ\x90\x00", "application/pdf")]}
    )
    assert response.status_code == 400
    assert "ni un PDF ni un document CDA" in response.content.decode()


def _received(space: Space, data: bytes) -> int:
    message = space.send(
        space.doctor_box,
        [space.nurse_box.address],
        attachments=[mime.Attachment(xdm.FILENAME, "application/zip", data)],
    )
    return space.entry(space.nurse_box, message).pk


def package(documents: list[xdm.Document], first_names: str = "Lucie Anne") -> bytes:
    """An IHE_XDM.ZIP for the test patient Lucie MOREAU, written by Dr Paul MARTIN."""
    return xdm.build(
        documents,
        patient=xdm.Patient(
            ins="279035121518989",
            oid="1.2.250.1.213.1.4.10",
            birth_name="MOREAU",
            first_names=first_names,
            birth_date="19900502",
            sex="F",
        ),
        author=xdm.Author(rpps="810000000001", last_name="MARTIN", first_name="Paul"),
        source_oid="1.2.250.1.999.1",
    )


def _package() -> bytes:
    return package(
        [
            xdm.Document("cr.xml", "text/xml", CDA, "11502-2", "Bilan sanguin"),
            xdm.Document("cr.pdf", "application/pdf", PDF, "11502-2", "Bilan sanguin (PDF)"),
        ]
    )


def test_reading_shows_the_structured_documents_with_the_patient_identity(space: Space) -> None:
    entry_id = _received(space, _package())
    nurse = login(space.nurse)
    page = nurse.get(reverse("webmail_read", args=[entry_id])).content.decode()
    assert "Documents structurés" in page
    assert "Bilan sanguin" in page and "LOINC 11502-2" in page
    assert "Lucie Anne MOREAU" in page and "née le 02/05/1990" in page
    assert "279035121518989" in page and "1.2.250.1.213.1.4.10" in page
    assert "INS de test" in page
    assert "Paul MARTIN (810000000001)" in page
    # The CDA's text is escaped, never rendered as HTML.
    assert "Bilan normal &lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert "<script>alert(1)" not in page

    index = (
        mime.parse_message(mailbox_services.read_raw(titled("Résultats d'analyse")))
        .attachments[0]
        .index
    )
    url = reverse("webmail_structured_document", args=[entry_id, index, 2])
    assert url in page
    response = nurse.get(url)
    assert response.status_code == 200
    assert b"".join(response.streaming_content) == PDF
    assert response["Content-Type"] == "application/pdf"
    assert response["Content-Disposition"].startswith("inline;")
    assert response["X-Content-Type-Options"] == "nosniff"
    assert "sandbox" in response["Content-Security-Policy"]
    # The CDA (document 1) is not served; nor is a document that does not exist.
    assert (
        nurse.get(reverse("webmail_structured_document", args=[entry_id, index, 1])).status_code
        == 404
    )
    assert (
        nurse.get(reverse("webmail_structured_document", args=[entry_id, index, 9])).status_code
        == 404
    )


def _zip(entries: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, data in entries.items():
            archive.writestr(name, data)
    return buffer.getvalue()


@pytest.mark.parametrize(
    ("entries", "reason"),
    [
        ({xdm.METADATA: b"<x/>", "IHE_XDM/SUBSET01/DOC0001.XML": b"\0" * 5_000_000}, "bombe"),
        ({xdm.METADATA: b"<x/>", "../../etc/passwd": b"x"}, "chemin interdit"),
        ({xdm.METADATA: b"<x/>", "IHE_XDM/SUBSET01/DOC0002.ZIP": b"PK\x03\x04"}, "imbriquée"),
    ],
    ids=["bomb", "dotdot", "nested"],
)
def test_an_unsafe_archive_is_a_warning_never_unpacked(
    space: Space, entries: dict[str, bytes], reason: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The attachment policy now refuses bombs and nested archives at every door (issue 11);
    # such archives may still be in the store from before, and are never unpacked.
    monkeypatch.setattr("trust.policy.sniff", lambda data, blocked=(): None)
    entry_id = _received(space, _zip(entries))
    nurse = login(space.nurse)
    response = nurse.get(reverse("webmail_read", args=[entry_id]))
    assert response.status_code == 200
    page = response.content.decode()
    assert "Documents structurés" in page
    assert "n&#x27;a pas été ouverte" in page or "n'a pas été ouverte" in page
    assert reason in page
    raw = mailbox_services.read_raw(titled("Résultats d'analyse"))
    index = mime.parse_message(raw).attachments[0].index
    url = reverse("webmail_structured_document", args=[entry_id, index, 1])
    assert nurse.get(url).status_code == 404


def test_outsiders_get_404_on_the_new_urls(space: Space) -> None:
    entry_id = _received(space, _package())
    raw = mailbox_services.read_raw(titled("Résultats d'analyse"))
    index = mime.parse_message(raw).attachments[0].index
    doctor = login(space.doctor)
    draft = _draft(space, doctor, space.nurse_box.address)
    outsider = login(factories.professional(first_name="Eve", last_name="Dehors"))
    assert (
        outsider.get(reverse("webmail_structured_document", args=[entry_id, index, 2])).status_code
        == 404
    )
    url = reverse("webmail_draft_xdm", args=[draft.pk])
    assert outsider.get(url).status_code == 404
    assert outsider.post(url, TYPED).status_code == 404


def test_the_patient_among_the_recipients_is_proposed_first(space: Space) -> None:
    doctor = login(space.doctor)
    draft = _draft(space, doctor, space.patient_box.address)
    form = doctor.get(reverse("webmail_draft_xdm", args=[draft.pk])).content.decode()
    identity = space.patient.patient
    assert f'<option value="{identity.pk}" selected>' in form


def test_the_package_service_refuses_another_authors_draft_and_a_non_identified_author(
    space: Space,
) -> None:
    # The view resolves the draft in the author's boxes first; the service checks again.
    doctor = login(space.doctor)
    draft = _draft(space, doctor, space.patient_box.address)
    patient = xdm.Patient(ins="279035121518989", oid="1.2.250.1.213.1.4.10")
    upload = SimpleUploadedFile("bilan.pdf", PDF, content_type="application/pdf")
    with pytest.raises(Http404):
        mailbox_services.attach_xdm_package(
            draft, by=space.nurse, patient=patient, type_code="11502-2", uploads=[upload]
        )
    space.doctor.professional.delete()
    space.doctor.refresh_from_db()
    with pytest.raises(mailbox_services.DraftError, match="professionnel identifié"):
        mailbox_services.attach_xdm_package(
            draft, by=space.doctor, patient=patient, type_code="11502-2", uploads=[upload]
        )
    assert not DraftAttachment.objects.filter(draft=draft).exists()


def titled(subject: str) -> Message:
    """The one message with this subject (sealed in the database: compared in Python)."""
    (message,) = [m for m in Message.objects.all() if m.subject == subject]
    return message
