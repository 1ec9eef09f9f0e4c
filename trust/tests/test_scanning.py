"""Scanning whole messages with the real clamd (local EICAR signatures, see RECIPES.md)."""

from __future__ import annotations

import base64
import io
import socket
import zipfile
from email.message import EmailMessage
from email.policy import SMTP
from typing import Any

import pytest

from tests.clamd import ADDRESS, EICAR, needs_clamd
from trust.scanning import ClamdUnavailable, ScanStatus, scan_file, scan_raw_message

PDF = b"%PDF-1.4\n1 0 obj << /Type /Catalog >> endobj\n" + bytes(range(256)) * 40 + b"\n%%EOF\n"


@pytest.fixture
def clamd(settings: Any) -> None:
    settings.CLAMD_ADDRESS = ADDRESS
    settings.CLAMD_TIMEOUT = 10


def message(
    *attachments: tuple[str, str, bytes], body: str = "Bonjour,\nci-joint le compte rendu."
) -> bytes:
    msg = EmailMessage()
    msg["From"] = "elodie.muller@medecin.mssante.fr"
    msg["To"] = "cardiologie@ch-xyz.mssante.fr"
    msg["Subject"] = "Compte rendu"
    msg.set_content(body)
    for filename, content_type, data in attachments:
        maintype, subtype = content_type.split("/")
        msg.add_attachment(data, maintype=maintype, subtype=subtype, filename=filename)
    return msg.as_bytes(policy=SMTP)


def zipped(name: str, data: bytes) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr(name, data)
    return buffer.getvalue()


@needs_clamd
def test_a_message_with_a_clean_pdf_is_clean(clamd: None) -> None:
    verdict = scan_raw_message(message(("cr.pdf", "application/pdf", PDF)))
    assert verdict.status == ScanStatus.CLEAN and verdict.clean
    # The whole message and the PDF (the text is read in the whole message).
    assert verdict.parts_scanned == 2
    assert verdict.label == "sain"


@needs_clamd
def test_eicar_as_an_attachment_is_infected(clamd: None) -> None:
    verdict = scan_raw_message(
        message(("cr.pdf", "application/pdf", PDF), ("x.bin", "application/octet-stream", EICAR))
    )
    assert verdict.infected and not verdict.clean
    assert any("EICAR" in s.upper() for s in verdict.signatures)


@needs_clamd
def test_eicar_inside_a_zip_attachment_is_infected(clamd: None) -> None:
    verdict = scan_raw_message(
        message(("IHE_XDM.ZIP", "application/zip", zipped("DOC0001.PDF", EICAR)))
    )
    assert verdict.infected


@needs_clamd
def test_eicar_base64_encoded_in_a_text_part_is_infected(clamd: None) -> None:
    encoded = base64.encodebytes(EICAR).decode()
    raw = (
        "From: a@medecin.mssante.fr\r\nTo: b@ch-xyz.mssante.fr\r\nSubject: x\r\n"
        "MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=XX\r\n\r\n"
        "--XX\r\nContent-Type: text/plain; charset=utf-8\r\n\r\nBonjour\r\n"
        "--XX\r\nContent-Type: text/plain; charset=us-ascii\r\n"
        f"Content-Transfer-Encoding: base64\r\n\r\n{encoded}\r\n--XX--\r\n"
    ).encode()
    assert EICAR not in raw
    assert scan_raw_message(raw).infected


@needs_clamd
def test_eicar_in_a_forwarded_message_is_infected(clamd: None) -> None:
    inner = EmailMessage()
    inner["Subject"] = "transféré"
    inner.set_content("voir pièce jointe")
    inner.add_attachment(EICAR, maintype="application", subtype="octet-stream", filename="a.bin")
    outer = EmailMessage()
    outer["Subject"] = "Tr: transféré"
    outer.set_content("Pour information")
    outer.add_attachment(inner)
    assert scan_raw_message(outer.as_bytes(policy=SMTP)).infected


def test_with_scanning_off_the_verdict_says_not_scanned_never_clean(settings: Any) -> None:
    settings.CLAMD_ADDRESS = ""
    # Anything but the EICAR test file (recognised without clamd, below).
    verdict = scan_raw_message(message(("x.bin", "application/octet-stream", PDF)))
    assert verdict.status == ScanStatus.NOT_SCANNED
    assert not verdict.clean and verdict.label == "non analysé"


def test_an_unreachable_clamd_raises_so_the_message_waits(settings: Any) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        free_port = probe.getsockname()[1]
    settings.CLAMD_ADDRESS = f"127.0.0.1:{free_port}"
    settings.CLAMD_TIMEOUT = 2
    with pytest.raises(ClamdUnavailable):
        scan_raw_message(message())


@pytest.mark.parametrize(
    "attachment",
    [
        ("essai.txt", "text/plain", EICAR),
        ("essai.bin", "application/octet-stream", EICAR),
        ("essai.txt", "text/plain", EICAR + b"\r\n"),
    ],
    ids=["as text", "base64", "with a newline"],
)
def test_without_clamd_the_eicar_test_file_is_still_held(
    settings: Any, attachment: tuple[str, str, bytes]
) -> None:
    settings.CLAMD_ADDRESS = ""
    verdict = scan_raw_message(message(attachment))
    assert verdict.status == ScanStatus.INFECTED and not verdict.clean
    assert verdict.signatures == ("EICAR-Test-File",)


# --- One uploaded file (a patient's own document, issue 17) -------------------------------


@needs_clamd
def test_scan_file_finds_eicar_in_an_uploaded_file_and_passes_a_pdf(clamd: None) -> None:
    assert scan_file(b"scan de l'ordonnance\n" + EICAR).infected
    assert scan_file(PDF).status == ScanStatus.CLEAN


def test_scan_file_without_clamd_says_not_scanned_but_still_knows_eicar(settings: Any) -> None:
    settings.CLAMD_ADDRESS = ""
    assert scan_file(PDF).status == ScanStatus.NOT_SCANNED
    assert scan_file(EICAR).infected


def test_scan_file_with_clamd_down_raises_to_try_later(settings: Any) -> None:
    settings.CLAMD_ADDRESS = "127.0.0.1:9"
    settings.CLAMD_TIMEOUT = 1
    with pytest.raises(ClamdUnavailable):
        scan_file(PDF)
