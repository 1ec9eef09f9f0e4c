"""Structured documents (IHE_XDM.ZIP): what the reading view shows of them.

The archive is opened with ``xdm.read`` only, which refuses an unsafe archive
(too many entries or bytes, a bomb, ``..`` or absolute paths, nested archives):
such an archive is shown as a warning and never unpacked.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from django.utils.translation import gettext as _

from accounts.models import PatientIdentity
from mssante.lib import mime, xdm

PDF = "application/pdf"
CDA_TYPES = frozenset({"text/xml", "application/xml", "application/hl7-cda+xml"})


def is_package(filename: str) -> bool:
    return (filename or "").strip().upper() == xdm.FILENAME


@dataclass(slots=True)
class StructuredDocument:
    number: int  # 1-based position in the package (the preview URL uses it)
    title: str
    type_code: str
    type_label: str
    mime_type: str
    created: str
    author: str
    ins: str
    oid: str
    oid_label: str
    patient_name: str
    birth_date: str
    sex: str
    hash_ok: bool
    is_pdf: bool
    text: str


@dataclass(slots=True)
class StructuredPackage:
    index: int  # the attachment's part index
    filename: str
    error: str = ""
    documents: list[StructuredDocument] = field(default_factory=list)


def _stamp(value: str) -> str:
    """AAAAMMJJ[HHMM[SS]] as JJ/MM/AAAA [HH:MM]."""
    digits = value[:14]
    if len(digits) < 8 or not digits.isdigit():
        return value
    day = f"{digits[6:8]}/{digits[4:6]}/{digits[0:4]}"
    if len(digits) >= 12:
        return f"{day} {digits[8:10]}:{digits[10:12]} UTC"
    return day


def _author(xcn: str) -> str:
    parts = xcn.split("^")
    if len(parts) < 3:
        return xcn
    name = " ".join(p for p in (parts[2], parts[1]) if p)
    return f"{name} ({parts[0]})" if name else parts[0]


def _patient(cx: str) -> tuple[str, str]:
    ins = cx.split("^", 1)[0]
    pieces = cx.split("&")
    return ins, pieces[1] if len(pieces) > 1 else ""


def document(entry: xdm.DocumentEntry, number: int) -> StructuredDocument:
    ins, oid = _patient(entry.patient_id)
    names = entry.patient_info.get("PID-5", "").split("^")
    birth_name = names[0] if names else ""
    first_names = names[1] if len(names) > 1 else ""
    is_pdf = entry.mime_type == PDF and entry.data.startswith(b"%PDF-")
    known = xdm.DOCUMENT_TYPES.get(entry.type_code)
    return StructuredDocument(
        number=number,
        title=entry.title,
        type_code=entry.type_code,
        type_label=entry.type_label or (_(known) if known else ""),
        mime_type=entry.mime_type,
        created=_stamp(entry.creation_time),
        author=_author(entry.author),
        ins=ins,
        oid=oid,
        oid_label=str(dict(PatientIdentity.Oid.choices).get(oid, "")),
        patient_name=" ".join(p for p in (first_names, birth_name) if p),
        birth_date=_stamp(entry.patient_info.get("PID-7", "")),
        sex=entry.patient_info.get("PID-8", ""),
        hash_ok=entry.hash_ok,
        is_pdf=is_pdf,
        # Text only: the template escapes it, it is never rendered as HTML.
        text=xdm.cda_text(entry.data) if entry.mime_type in CDA_TYPES else "",
    )


def packages(raw: bytes, parsed: mime.ParsedMessage) -> list[StructuredPackage]:
    """The IHE_XDM.ZIP attachments of a message, read safely (or the reason they are not)."""
    out = []
    for part in parsed.attachments:
        if not is_package(part.filename):
            continue
        package = StructuredPackage(index=part.index, filename=part.filename)
        try:
            data = mime.get_part(raw, part.index).data
            read = xdm.read(data)
        except mime.PartNotFoundError:
            continue
        except xdm.XdmError as exc:
            # The refusal in the reader's language (the archive's name stays as sent).
            package.error = _(exc.template) % exc.params if exc.params else _(exc.template)
        else:
            package.documents = [document(d, n) for n, d in enumerate(read.documents, start=1)]
        out.append(package)
    return out
