"""Attachment policy and the recipient limit: each rule, each refusal message."""

from __future__ import annotations

import io
import os
import struct
import zipfile
from typing import Any

import pytest
from django.utils import translation

from trust.policy import PolicyError, check_attachments, check_recipient_count, sniff

PDF = b"%PDF-1.4\n" + bytes(range(256)) * 4
PE = b"MZ\x90\x00\x03\x00\x00\x00" + b"\x00" * 200 + b"PE\x00\x00"


def zipped(*members: tuple[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for name, data in members:
            archive.writestr(name, data)
    return buffer.getvalue()


def ole(clsid: bytes) -> bytes:
    """A minimal OLE compound file: header, then a directory sector with the root entry."""
    header = bytearray(512)
    header[:8] = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"
    header[30:32] = (9).to_bytes(2, "little")  # 512-byte sectors
    header[48:52] = (0).to_bytes(4, "little")  # directory starts at sector 0
    directory = bytearray(512)
    directory[:10] = "Root Entry".encode("utf-16-le")[:10]
    directory[80:96] = clsid
    return bytes(header + directory)


MSI_CLSID = bytes.fromhex("84100c0000000000c000000000000046")
WORD_CLSID = bytes.fromhex("0609020000000000c000000000000046")


def refusal(*attachments: tuple[str, str, bytes]) -> str:
    with pytest.raises(PolicyError) as caught:
        check_attachments(list(attachments))
    return str(caught.value)


def test_ordinary_medical_attachments_pass() -> None:
    check_attachments(
        [
            ("compte-rendu.pdf", "application/pdf", PDF),
            (
                "IHE_XDM.ZIP",
                "application/zip",
                zipped(("INDEX.HTM", b"<html/>"), ("IHE_XDM/SUBSET01/METADATA.XML", b"<x/>")),
            ),
            ("courrier.doc", "application/msword", ole(WORD_CLSID)),
            ("notes.txt", "text/plain", b"#include <stdio.h>"),
        ]
    )


def test_it_refuses_an_oversize_attachment_naming_it(settings: Any) -> None:
    settings.ATTACHMENT_MAX_BYTES = 1000
    message = refusal(("irm.pdf", "application/pdf", PDF[:8] + b"\x00" * 1001))
    assert "« irm.pdf »" in message and "taille maximale" in message and "1 ko" in message


def test_an_attachment_at_the_size_limit_passes(settings: Any) -> None:
    settings.ATTACHMENT_MAX_BYTES = 1000
    check_attachments([("irm.pdf", "application/pdf", b"%PDF" + b"\x00" * 996)])


def test_it_refuses_attachments_larger_together_than_a_message(settings: Any) -> None:
    settings.ATTACHMENT_MAX_BYTES = 1000
    settings.MESSAGE_MAX_BYTES = 1500
    message = refusal(
        ("a.pdf", "application/pdf", b"%PDF" + b"\x00" * 900),
        ("b.pdf", "application/pdf", b"%PDF" + b"\x00" * 900),
    )
    assert "ensemble" in message


@pytest.mark.parametrize(
    "filename",
    [
        "setup.exe",
        "SETUP.EXE",
        "lettre.pdf.exe",
        "virus.exe. ",
        "macro.vbs",
        "x.ps1",
        "app.jar",
        "install.msi",
        "run.bat",
    ],
)
def test_it_refuses_a_blocked_extension(filename: str) -> None:
    message = refusal((filename, "application/octet-stream", b"harmless"))
    assert f"« {filename} »" in message and "ne sont pas autorisés" in message


def test_blocked_extensions_are_a_setting(settings: Any) -> None:
    settings.BLOCKED_EXTENSIONS = ["pdf"]
    assert "« a.pdf »" in refusal(("a.pdf", "application/pdf", PDF))
    check_attachments([("setup.exe", "application/octet-stream", b"harmless")])


@pytest.mark.parametrize(
    ("data", "kind"),
    [
        pytest.param(PE, "exécutable Windows", id="windows-exe"),
        pytest.param(b"\x7fELF\x02\x01\x01" + b"\x00" * 50, "ELF", id="elf"),
        pytest.param(b"#!/bin/sh\nrm -rf ~\n", "script", id="shebang"),
        pytest.param(b"\xca\xfe\xba\xbe\x00\x00\x00\x41", "Java", id="java-class"),
        pytest.param(b"\xcf\xfa\xed\xfe\x07\x00\x00\x01", "macOS", id="mach-o"),
        pytest.param(
            zipped(("META-INF/MANIFEST.MF", b"Main-Class: X\n"), ("X.class", b"\xca\xfe\xba\xbe")),
            "jar",
            id="jar",
        ),
        pytest.param(ole(MSI_CLSID), "installation", id="msi"),
        pytest.param(b"L\x00\x00\x00\x01\x14\x02\x00" + b"\x00" * 60, "raccourci", id="lnk"),
        pytest.param(
            zipped(("facture.pdf", PDF), ("facture.pdf.exe", PE)),
            "facture.pdf.exe",
            id="zip-with-exe",
        ),
    ],
)
def test_it_refuses_a_blocked_type_disguised_with_another_extension(data: bytes, kind: str) -> None:
    message = refusal(("resultats.pdf", "application/pdf", data))
    assert "« resultats.pdf »" in message and "quelle que soit son extension" in message
    assert kind in message


def test_a_corrupt_zip_is_left_to_the_antivirus() -> None:
    assert sniff(b"PK\x03\x04" + b"\x00" * 100) is None


def test_a_short_ole_file_is_not_mistaken_for_an_installer() -> None:
    assert sniff(b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + b"\x00" * 10) is None


def test_it_accepts_40_recipients() -> None:
    check_recipient_count(40, exception_active=False)


def test_it_refuses_a_41st_recipient_stating_the_limit() -> None:
    with pytest.raises(PolicyError, match="plus de 40 destinataires"):
        check_recipient_count(41, exception_active=False)


def test_an_active_exception_lifts_the_recipient_limit() -> None:
    check_recipient_count(500, exception_active=True)


def test_the_recipient_limit_is_a_setting(settings: Any) -> None:
    settings.MAX_RECIPIENTS = 5
    with pytest.raises(PolicyError, match="plus de 5 destinataires"):
        check_recipient_count(6, exception_active=False)


def test_refusals_are_translated_for_english_users() -> None:
    with translation.override("en"), pytest.raises(PolicyError, match=r"is refused: \.exe files"):
        check_attachments([("setup.exe", "application/octet-stream", b"x")])


# --- Disk images, macros, archives in archives, zip bombs (issue 11) -------------------------


def iso_image() -> bytes:
    data = bytearray(0x9000)
    data[0x8001:0x8006] = b"CD001"
    return bytes(data)


def ooxml(*extra: tuple[str, bytes], macro_type: bool = False) -> bytes:
    content_type = (
        b"application/vnd.ms-word.document.macroEnabled.main+xml"
        if macro_type
        else b"application/vnd.openxmlformats-officedocument.wordprocessingml.document.main+xml"
    )
    return zipped(
        ("[Content_Types].xml", b'<Types><Override ContentType="' + content_type + b'"/></Types>'),
        ("word/document.xml", b"<w:document/>"),
        *extra,
    )


@pytest.mark.parametrize(
    "filename", ["dvd.iso", "DISQUE.IMG", "machine.vhd", "machine.vhdx", "installeur.dmg"]
)
def test_it_refuses_a_disk_image_by_extension(filename: str) -> None:
    message = refusal((filename, "application/octet-stream", b"harmless"))
    assert f"« {filename} »" in message and "images disque" in message


@pytest.mark.parametrize(
    "filename",
    [
        *("lettre.docm", "modele.dotm", "tableau.xlsm", "modele.xltm", "macro.xlam"),
        *("diapo.pptm", "diapo.ppsm", "modele.potm", "complement.ppam", "diapo.sldm"),
    ],
)
def test_it_refuses_a_macro_enabled_office_file_by_extension(filename: str) -> None:
    message = refusal((filename, "application/octet-stream", ooxml(macro_type=True)))
    assert f"« {filename} »" in message and "macros" in message and ".docx" in message


@pytest.mark.parametrize(
    ("data", "kind"),
    [
        pytest.param(iso_image(), "image disque", id="iso-renamed"),
        pytest.param(b"vhdxfile" + b"\x00" * 600, "image disque", id="vhdx-renamed"),
        pytest.param(
            ooxml(("word/vbaProject.bin", b"\xd0\xcf\x11\xe0")), "macros", id="docm-renamed"
        ),
        pytest.param(ooxml(macro_type=True), "macros", id="macro-content-type"),
        pytest.param(
            ole(WORD_CLSID) + "_VBA_PROJECT".encode("utf-16-le"), "macros", id="legacy-doc-macros"
        ),
        pytest.param(
            zipped(("resultats.zip", zipped(("a.pdf", PDF)))), "autre archive", id="zip-in-zip"
        ),
        pytest.param(
            zipped(("resultats.pdf", zipped(("a.pdf", PDF)))),
            "autre archive",
            id="zip-in-zip-renamed",
        ),
        pytest.param(zipped(("a.7z", b"7z\xbc\xaf\x27\x1c")), "autre archive", id="7z-in-zip"),
        pytest.param(
            zipped(("data.bin", b"Rar!\x1a\x07\x01\x00")), "autre archive", id="rar-renamed"
        ),
        pytest.param(zipped(("cd.iso", iso_image())), "cd.iso", id="iso-in-zip"),
        pytest.param(zipped(("lettre.docm", ooxml())), "lettre.docm", id="docm-in-zip"),
    ],
)
def test_it_refuses_disk_images_macros_and_nested_archives_whatever_their_name(
    data: bytes, kind: str
) -> None:
    message = refusal(("resultats.pdf", "application/pdf", data))
    assert "« resultats.pdf »" in message and kind in message


def test_an_office_document_embedding_a_workbook_passes() -> None:
    # A chart in a Word report carries its workbook: a zip in a zip, but a document.
    check_attachments(
        [
            (
                "rapport.docx",
                "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
                ooxml(("word/embeddings/Microsoft_Excel_Worksheet.xlsx", ooxml())),
            )
        ]
    )


def bomb(size: int) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("zero.txt", b"\x00" * size)
    return buffer.getvalue()


def test_it_refuses_a_zip_bomb_without_inflating_it() -> None:
    message = refusal(("resultats.zip", "application/zip", bomb(size=30 * 1024 * 1024)))
    assert "bombe de décompression" in message


def test_it_refuses_an_archive_that_expands_past_the_bound() -> None:
    # Eleven members declaring 50 MB each (550 MB), none compressed past 1000:1.
    data = bytearray(zipped(*((f"f{i}.bin", os.urandom(100_000)) for i in range(11))))
    at = data.find(b"PK\x01\x02")
    while at >= 0:
        struct.pack_into("<I", data, at + 24, 50 * 1024 * 1024)
        at = data.find(b"PK\x01\x02", at + 4)
    assert "bombe de décompression" in refusal(("resultats.zip", "application/zip", bytes(data)))


def test_it_refuses_an_archive_with_too_many_members() -> None:
    data = zipped(*((f"f{i}.txt", b"x") for i in range(1001)))
    assert "trop de fichiers" in refusal(("resultats.zip", "application/zip", data))
