"""The clamd client against the real clamd (local EICAR signatures, see RECIPES.md)."""

from __future__ import annotations

import io
import socket
import struct
import threading
import zipfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from mssante.lib.clamd import (
    ClamdClient,
    ClamdError,
    ClamdUnavailable,
    ScanResult,
    parse_address,
    parse_answer,
)
from tests.clamd import ADDRESS, EICAR, needs_clamd

PDF = b"%PDF-1.4\n1 0 obj << /Type /Catalog >> endobj\n" + bytes(range(256)) * 40 + b"\n%%EOF\n"


# `make test` starts clamd (MSSANTE_TEST_SERVICES=1): there a missing clamd fails.


@pytest.fixture
def clamd() -> ClamdClient:
    return ClamdClient(ADDRESS, timeout=10)


def zipped(name: str, data: bytes) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr(name, data)
    return buffer.getvalue()


@needs_clamd
def test_ping_answers_pong(clamd: ClamdClient) -> None:
    assert clamd.ping() is True


@needs_clamd
def test_a_clean_pdf_like_file_is_clean(clamd: ClamdClient) -> None:
    assert clamd.scan_bytes(PDF) == ScanResult(clean=True, signature=None)


@needs_clamd
def test_empty_data_is_clean(clamd: ClamdClient) -> None:
    assert clamd.scan_bytes(b"").clean


@needs_clamd
@pytest.mark.parametrize(
    "data",
    [
        pytest.param(EICAR, id="eicar"),
        pytest.param(EICAR + b"\n", id="eicar-with-newline"),
        pytest.param(zipped("facture.pdf", EICAR), id="eicar-in-a-zip"),
        pytest.param(PDF + EICAR + PDF, id="eicar-inside-other-bytes"),
    ],
)
def test_eicar_is_found(clamd: ClamdClient, data: bytes) -> None:
    result = clamd.scan_bytes(data)
    assert not result.clean
    # clamd appends ".UNOFFICIAL" to local signatures: only the stem is stable.
    assert result.signature and "EICAR" in result.signature.upper()


@needs_clamd
def test_data_larger_than_one_chunk_is_streamed_whole(clamd: ClamdClient) -> None:
    big = PDF * 200 + EICAR  # EICAR far past the first 64 kB chunk
    assert len(big) > 3 * 64 * 1024
    assert not clamd.scan_bytes(big).clean


def test_a_wrong_port_raises_clamd_unavailable() -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        free_port = probe.getsockname()[1]
    with pytest.raises(ClamdUnavailable):
        ClamdClient(f"127.0.0.1:{free_port}", timeout=2).scan_bytes(b"x")
    with pytest.raises(ClamdUnavailable):
        ClamdClient(f"127.0.0.1:{free_port}", timeout=2).ping()


def test_a_missing_unix_socket_raises_clamd_unavailable(tmp_path: Path) -> None:
    with pytest.raises(ClamdUnavailable):
        ClamdClient(str(tmp_path / "clamd.sock"), timeout=2).ping()


@pytest.fixture
def fake_clamd(tmp_path: Path) -> Iterator[tuple[str, list[bytes], list[bytes]]]:
    """A Unix-socket server speaking just enough INSTREAM to check the framing."""
    path = str(tmp_path / "clamd.sock")
    answers: list[bytes] = []
    received: list[bytes] = []
    server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    server.bind(path)
    server.listen()

    def serve() -> None:
        while True:
            try:
                conn, _ = server.accept()
            except OSError:
                return
            with conn, conn.makefile("rb") as stream:
                command = b""
                while not command.endswith(b"\0"):
                    command += stream.read(1)
                body = b""
                if command == b"zINSTREAM\0":
                    while size := struct.unpack(">I", stream.read(4))[0]:
                        body += stream.read(size)
                received.append(command + body)
                if answers:
                    conn.sendall(answers.pop(0))

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    yield path, answers, received
    server.close()


def test_it_speaks_instream_over_a_unix_socket(
    fake_clamd: tuple[str, list[bytes], list[bytes]],
) -> None:
    path, answers, received = fake_clamd
    answers.append(b"stream: Win.Test.Thing FOUND\0")
    data = bytes(range(256)) * 1000  # several chunks
    result = ClamdClient(path, timeout=5).scan_bytes(data)
    assert result == ScanResult(clean=False, signature="Win.Test.Thing")
    assert received == [b"zINSTREAM\0" + data]


def test_an_error_answer_raises_clamd_error(
    fake_clamd: tuple[str, list[bytes], list[bytes]],
) -> None:
    path, answers, _received = fake_clamd
    answers.append(b"INSTREAM size limit exceeded. ERROR\0")
    with pytest.raises(ClamdError, match="size limit"):
        ClamdClient(path, timeout=5).scan_bytes(b"data")


def test_a_silent_hang_up_raises_clamd_unavailable(
    fake_clamd: tuple[str, list[bytes], list[bytes]],
) -> None:
    path, _answers, _received = fake_clamd
    with pytest.raises(ClamdUnavailable):
        ClamdClient(path, timeout=5).scan_bytes(b"data")


def test_a_clamd_that_never_answers_times_out_as_unavailable() -> None:
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen()
        port = server.getsockname()[1]
        with pytest.raises(ClamdUnavailable):
            ClamdClient(f"127.0.0.1:{port}", timeout=0.3).ping()


@pytest.mark.parametrize(
    ("address", "parsed"),
    [
        ("127.0.0.1:3310", ("127.0.0.1", 3310)),
        ("clamav:3310", ("clamav", 3310)),
        ("[::1]:3310", ("::1", 3310)),
        ("/run/clamav/clamd.ctl", "/run/clamav/clamd.ctl"),
        ("unix:/run/clamd.sock", "/run/clamd.sock"),
    ],
)
def test_addresses_are_tcp_or_unix(address: str, parsed: object) -> None:
    assert parse_address(address) == parsed


@pytest.mark.parametrize("address", ["clamav", "clamav:port", ":3310"])
def test_a_malformed_address_is_refused(address: str) -> None:
    with pytest.raises(ValueError, match="host:port"):
        parse_address(address)


def test_answers_are_parsed() -> None:
    assert parse_answer("stream: OK") == ScanResult(True)
    assert parse_answer("stream: Eicar-Test-Signature FOUND") == ScanResult(
        False, "Eicar-Test-Signature"
    )
    with pytest.raises(ClamdError):
        parse_answer("stream: lstat() failed. ERROR")
    with pytest.raises(ClamdError):
        parse_answer("garbage")
