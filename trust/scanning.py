"""Antivirus scanning of whole messages with clamd.

The pipeline's scan step calls ``scan_raw_message(raw)`` and delivers only when
``verdict.clean`` is true. ClamdUnavailable is left to propagate: the caller
retries later, so a message is never delivered unscanned and never lost.

Without clamd (``CLAMD_ADDRESS`` empty, the embedded default) messages are "not
scanned", except the EICAR test file, which is recognised without clamd: it exists
so that anyone can try an antivirus chain, and the demo's quarantine needs it.
"""

from __future__ import annotations

import base64
import enum
import hashlib
from dataclasses import dataclass

from django.conf import settings
from django.utils.translation import gettext_lazy as _

from mssante.lib import mime
from mssante.lib.clamd import ClamdClient, ClamdError, ClamdUnavailable

__all__ = [
    "ClamdUnavailable",
    "ScanStatus",
    "ScanVerdict",
    "scan_file",
    "scan_raw_message",
    "scanning_enabled",
]

# The EICAR test file (eicar.org), kept in two halves so that no scanner flags this file.
EICAR = b"X5O!P%@AP[4\\PZX54(P^)7CC)7}$" + b"EICAR-STANDARD-ANTIVIRUS-TEST-FILE!$H+H*"
# How it shows in a raw message: as is (7bit, 8bit, quoted-printable: it has no "=") or
# base64-encoded from the start of a part (60 characters: inside the first line at any
# usual line length).
_EICAR_BASE64 = base64.b64encode(EICAR[:45])
EICAR_SIGNATURE = "EICAR-Test-File"

# A message with more leaf parts than this is not scanned part by part (a MIME
# bomb would otherwise cost one clamd round trip per part): it is unscannable.
MAX_PARTS = 500


class ScanStatus(enum.StrEnum):
    CLEAN = "clean"
    INFECTED = "infected"
    # clamd refused the data (size limit…): never deliverable as clean.
    UNSCANNABLE = "unscannable"
    # Scanning is switched off (CLAMD_ADDRESS empty): said plainly, never "clean".
    NOT_SCANNED = "not_scanned"


_LABELS = {
    ScanStatus.CLEAN: _("sain"),
    ScanStatus.INFECTED: _("infecté"),
    ScanStatus.UNSCANNABLE: _("non analysable"),
    ScanStatus.NOT_SCANNED: _("non analysé"),
}


@dataclass(frozen=True)
class ScanVerdict:
    status: ScanStatus
    signatures: tuple[str, ...] = ()
    parts_scanned: int = 0
    detail: str = ""

    @property
    def clean(self) -> bool:
        return self.status == ScanStatus.CLEAN

    @property
    def infected(self) -> bool:
        return self.status == ScanStatus.INFECTED

    @property
    def label(self) -> str:
        return str(_LABELS[self.status])


def scanning_enabled() -> bool:
    return bool(settings.CLAMD_ADDRESS)


def _client() -> ClamdClient:
    return ClamdClient(settings.CLAMD_ADDRESS, timeout=settings.CLAMD_TIMEOUT)


def _decoded_parts(raw: bytes) -> list[bytes] | None:
    """Every attachment decoded from its transfer encoding (None: too many parts, or past
    the parsing limits: a message stored before them is never parsed unbounded here)."""
    message = mime.parse_tree(raw)
    if message is None:
        return None
    parts: list[bytes] = []
    for part in message.walk():
        if part.is_multipart():
            continue
        if (
            part.get_content_maintype() == "text"
            and part.get_filename() is None
            and part.get_content_disposition() != "attachment"
        ):
            # A body: clamd reads it in the raw message (it decodes MIME itself); scanning
            # its decoded text again doubled the cost of every message for nothing.
            continue
        payload = part.get_payload(decode=True)
        if isinstance(payload, bytes) and payload:
            parts.append(payload)
        if len(parts) > MAX_PARTS:
            return None
    return parts


def scan_raw_message(raw: bytes) -> ScanVerdict:
    """Scan the raw message and each decoded MIME part; raises ClamdUnavailable to retry."""
    if not scanning_enabled():
        # Two substring searches: scanning off stays nearly free.
        if EICAR in raw or _EICAR_BASE64 in raw:
            return ScanVerdict(
                ScanStatus.INFECTED,
                (EICAR_SIGNATURE,),
                detail="fichier de test EICAR reconnu sans clamd",
            )
        return ScanVerdict(ScanStatus.NOT_SCANNED)
    client = _client()
    parts = _decoded_parts(raw)
    if parts is None:
        return ScanVerdict(
            ScanStatus.UNSCANNABLE,
            detail=f"plus de {MAX_PARTS} parties MIME, ou au-delà des limites d'analyse",
        )
    signatures: list[str] = []
    seen: set[bytes] = set()
    scanned = 0
    error = ""
    # clamd decodes MIME and archives itself, but scanning each decoded part too
    # means a part it fails to decode (malformed headers, odd encodings) is still seen.
    for data in [raw, *parts]:
        digest = hashlib.sha256(data).digest()
        if digest in seen:
            continue
        seen.add(digest)
        try:
            result = client.scan_bytes(data)
        except ClamdError as exc:
            error = error or str(exc)
            continue
        scanned += 1
        if not result.clean and result.signature not in signatures:
            signatures.append(result.signature or "?")
    if signatures:
        return ScanVerdict(ScanStatus.INFECTED, tuple(signatures), scanned, error)
    if error:
        return ScanVerdict(ScanStatus.UNSCANNABLE, (), scanned, error)
    return ScanVerdict(ScanStatus.CLEAN, (), scanned)


def scan_file(data: bytes) -> ScanVerdict:
    """Scan one file as uploaded (not a message): raises ClamdUnavailable to retry later."""
    if not scanning_enabled():
        if EICAR in data:
            return ScanVerdict(
                ScanStatus.INFECTED,
                (EICAR_SIGNATURE,),
                detail="fichier de test EICAR reconnu sans clamd",
            )
        return ScanVerdict(ScanStatus.NOT_SCANNED)
    try:
        result = _client().scan_bytes(data)
    except ClamdError as exc:
        return ScanVerdict(ScanStatus.UNSCANNABLE, detail=str(exc))
    if not result.clean:
        return ScanVerdict(ScanStatus.INFECTED, (result.signature or "?",), 1)
    return ScanVerdict(ScanStatus.CLEAN, (), 1)
