"""IHE XDM packages: built and read back with the same metadata; unsafe archives refused."""

from __future__ import annotations

import io
import zipfile

import pytest

from mssante.lib import xdm

PATIENT = xdm.Patient(
    ins="279035121518989",
    oid="1.2.250.1.213.1.4.10",
    birth_name="MOREAU",
    first_names="Lucie Anne",
    birth_date="19900502",
    sex="F",
)
AUTHOR = xdm.Author(rpps="810000000001", last_name="MARTIN", first_name="Paul")
CDA = (
    b"<?xml version='1.0' encoding='UTF-8'?><ClinicalDocument xmlns='urn:hl7-org:v3'>"
    b"<component><structuredBody><component><section><title>Conclusion</title>"
    b"<text>Bilan <b>normal</b>.</text></section></component></structuredBody>"
    b"</component></ClinicalDocument>"
)
PDF = b"%PDF-1.4\n1 0 obj<<>>endobj\ntrailer<<>>\n%%EOF\n"


def package() -> bytes:
    return xdm.build(
        [
            xdm.Document("cr.xml", "text/xml", CDA, "11502-2", "Bilan sanguin"),
            xdm.Document("cr.pdf", "application/pdf", PDF, "11502-2", "Bilan sanguin (PDF)"),
        ],
        patient=PATIENT,
        author=AUTHOR,
        source_oid="1.2.250.1.999.1",
    )


def zip_of(entries: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, data in entries.items():
            archive.writestr(name, data)
    return buffer.getvalue()


def test_a_package_read_back_gives_the_metadata_it_was_built_with() -> None:
    read = xdm.read(package())

    assert read.patient_id == PATIENT.cx
    assert read.source_id == "1.2.250.1.999.1"
    assert read.submission_id.startswith("2.25.")
    cda, pdf = read.documents
    assert (cda.uri, cda.mime_type, cda.title) == ("DOC0001.XML", "text/xml", "Bilan sanguin")
    assert (pdf.uri, pdf.mime_type) == ("DOC0002.PDF", "application/pdf")
    for entry, data in ((cda, CDA), (pdf, PDF)):
        assert entry.type_code == entry.class_code == "11502-2"
        assert entry.type_label == "Compte rendu d'examens de biologie médicale"
        assert entry.patient_id == PATIENT.cx
        assert entry.author == AUTHOR.xcn
        assert entry.size == len(data) and entry.hash_ok and entry.data == data
        assert entry.unique_id.startswith("2.25.")
    assert pdf.format_code == "urn:ihe:iti:xds-sd:pdf:2008"
    names = zipfile.ZipFile(io.BytesIO(package())).namelist()
    assert {"INDEX.HTM", "README.TXT", xdm.METADATA} <= set(names)


def test_the_message_headers_say_the_ins_is_qualified_and_list_the_document_types() -> None:
    documents = [xdm.Document("a.xml", "text/xml", CDA, "11502-2")]
    assert xdm.headers(PATIENT, documents) == {"X-MSS-INS": "O", "X-MSS-CODECDA": "11502-2"}


def test_the_readable_text_of_a_cda_is_extracted() -> None:
    assert xdm.cda_text(CDA) == "Conclusion\nBilan normal ."


def test_a_zip_bomb_is_refused() -> None:
    bomb = zip_of({xdm.METADATA: b"<x/>", "IHE_XDM/SUBSET01/DOC0001.XML": b"\0" * 20_000_000})
    with pytest.raises(xdm.XdmError, match="bombe"):
        xdm.read(bomb)


@pytest.mark.parametrize("name", ["../../etc/passwd", "/etc/passwd", "IHE_XDM/../../x", "C:/x"])
def test_a_path_leaving_the_archive_is_refused(name: str) -> None:
    with pytest.raises(xdm.XdmError, match="chemin interdit"):
        xdm.read(zip_of({xdm.METADATA: b"<x/>", name: b"x"}))


def test_a_nested_archive_is_refused_not_expanded() -> None:
    inner = zip_of({"a.txt": b"a"})
    for name in ("IHE_XDM/SUBSET01/DOC0002.ZIP", "IHE_XDM/SUBSET01/DOC0002.XML"):
        with pytest.raises(xdm.XdmError, match="imbriquée"):
            xdm.read(zip_of({xdm.METADATA: b"<x/>", name: inner}))


def test_metadata_with_entities_is_refused() -> None:
    evil = b'<?xml version="1.0"?><!DOCTYPE x [<!ENTITY a "aaaa">]><x>&a;</x>'
    with pytest.raises(xdm.XdmError, match="DTD"):
        xdm.read(zip_of({xdm.METADATA: evil}))


def test_too_many_entries_are_refused() -> None:
    many = {f"IHE_XDM/SUBSET01/F{i}.TXT": b"x" for i in range(xdm.MAX_ENTRIES + 1)}
    with pytest.raises(xdm.XdmError, match="trop de fichiers"):
        xdm.read(zip_of(many))
