"""A small clamd client: PING and INSTREAM over TCP or a Unix socket. No Django here.

Protocol (clamd(8)): commands prefixed with ``z`` are NUL-terminated, and so are
the answers. INSTREAM sends the data as chunks, each preceded by its length as
a 4-byte big-endian integer, and ends with a zero length. The answer is
``stream: OK``, ``stream: <signature> FOUND`` or ``... ERROR`` (for instance
``INSTREAM size limit exceeded. ERROR`` past clamd's StreamMaxLength).
"""

from __future__ import annotations

import socket
import struct
from dataclasses import dataclass

CHUNK_SIZE = 64 * 1024
_MAX_ANSWER = 64 * 1024


class ClamdUnavailable(Exception):
    """clamd could not be reached or dropped the connection: retry later, never deliver."""


class ClamdError(Exception):
    """clamd answered with an error (size limit, unreadable stream…): the data was not scanned."""


@dataclass(frozen=True)
class ScanResult:
    clean: bool
    signature: str | None = None


def parse_address(address: str) -> tuple[str, int] | str:
    """``host:port`` (``[v6]:port`` for IPv6) for TCP, or an absolute path for a Unix socket."""
    address = address.strip()
    if address.startswith("/"):
        return address
    if address.startswith("unix:"):
        return address[len("unix:") :]
    host, sep, port = address.rpartition(":")
    if not sep or not host or not port.isdigit():
        raise ValueError(f"clamd address must be host:port or a socket path, not {address!r}")
    return host.strip("[]"), int(port)


class ClamdClient:
    """One connection per command: clamd closes INSTREAM connections after answering."""

    def __init__(self, address: str, *, timeout: float = 30.0) -> None:
        self.address = parse_address(address)
        self.timeout = timeout

    def _connect(self) -> socket.socket:
        try:
            if isinstance(self.address, str):
                sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
                sock.settimeout(self.timeout)
                try:
                    sock.connect(self.address)
                except BaseException:
                    sock.close()
                    raise
                return sock
            return socket.create_connection(self.address, timeout=self.timeout)
        except OSError as exc:
            raise ClamdUnavailable(f"cannot connect to clamd at {self._label()}: {exc}") from exc

    def _label(self) -> str:
        if isinstance(self.address, str):
            return self.address
        return f"{self.address[0]}:{self.address[1]}"

    def _command(self, command: bytes, payload: bytes | None = None) -> str:
        with self._connect() as sock:
            try:
                sock.sendall(b"z" + command + b"\0")
                if payload is not None:
                    view = memoryview(payload)
                    for start in range(0, len(view), CHUNK_SIZE):
                        chunk = view[start : start + CHUNK_SIZE]
                        sock.sendall(struct.pack(">I", len(chunk)))
                        sock.sendall(chunk)
                    sock.sendall(struct.pack(">I", 0))
                return self._read_answer(sock)
            except (BrokenPipeError, ConnectionResetError) as exc:
                # clamd hangs up mid-stream when the data passes StreamMaxLength;
                # it may still have written its reason before closing.
                answer = self._try_read_answer(sock)
                if answer and answer.endswith("ERROR"):
                    raise ClamdError(answer) from exc
                raise ClamdUnavailable(f"clamd at {self._label()} closed the connection") from exc
            except OSError as exc:  # timeouts included
                raise ClamdUnavailable(f"clamd at {self._label()}: {exc}") from exc

    def _read_answer(self, sock: socket.socket) -> str:
        data = bytearray()
        while not data.endswith(b"\0"):
            chunk = sock.recv(4096)
            if not chunk:
                break
            data += chunk
            if len(data) > _MAX_ANSWER:
                raise ClamdError("answer from clamd too long")
        if not data:
            raise ClamdUnavailable(
                f"clamd at {self._label()} closed the connection without answering"
            )
        return data.rstrip(b"\0").decode("utf-8", "replace").strip()

    def _try_read_answer(self, sock: socket.socket) -> str:
        try:
            return self._read_answer(sock)
        except (OSError, ClamdUnavailable, ClamdError):
            return ""

    def ping(self) -> bool:
        """True when clamd answers PONG; raises ClamdUnavailable when it cannot be reached."""
        return self._command(b"PING") == "PONG"

    def version(self) -> str:
        return self._command(b"VERSION")

    def scan_bytes(self, data: bytes) -> ScanResult:
        """Scan ``data`` with INSTREAM."""
        answer = self._command(b"INSTREAM", data)
        return parse_answer(answer)


def parse_answer(answer: str) -> ScanResult:
    _name, sep, verdict = answer.partition(": ")
    if not sep:
        verdict = answer
    if verdict == "OK":
        return ScanResult(clean=True)
    if verdict.endswith(" FOUND"):
        return ScanResult(clean=False, signature=verdict[: -len(" FOUND")].strip())
    if verdict.endswith("ERROR"):
        raise ClamdError(verdict)
    raise ClamdError(f"unexpected answer from clamd: {answer!r}")
