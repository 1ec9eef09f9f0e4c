"""IHE XDM packages (``IHE_XDM.ZIP``): building them, and reading them back safely.

A package holds ``INDEX.HTM``, ``README.TXT``, ``IHE_XDM/SUBSET01/METADATA.XML``
(an ebRIM SubmitObjectsRequest: one submission set and one document entry per
document) and the documents (CDA XML, PDF). Pure code: no Django.

Reading is hostile-input code. The archive is refused (``XdmError``, never
unpacked) when it has too many entries, too many bytes once uncompressed (read
with a cap, whatever the headers claim), a compression ratio of a bomb, an
absolute or ``..`` path, or a nested archive; its central directory is
bounded before it is read. XML (METADATA.XML, CDA documents) goes through
defusedxml with DTDs forbidden: a byte scan for ``<!DOCTYPE`` misses UTF-16,
where expat still expands entities. METADATA.XML is read up to
``MAX_METADATA_BYTES`` and a CDA's text only up to ``MAX_CDA_TEXT_BYTES``.

Refusals are French templates marked for the catalogue (``XdmError.template`` and
``params``): the Django layer shows them in the reader's language. What goes inside a
package (README.TXT, INDEX.HTM, the LOINC labels in METADATA.XML) stays French: it is
the documents' content, read by the receiving system and the DMP, not our interface.
"""

from __future__ import annotations

import hashlib
import io
import uuid
import xml.etree.ElementTree as ET
import zipfile
from dataclasses import dataclass, field
from datetime import UTC, datetime
from html import escape
from typing import Any, Final

from defusedxml import DefusedXmlException
from defusedxml import ElementTree as DefusedET

from mssante.lib import archives, identifiers

FILENAME = "IHE_XDM.ZIP"
METADATA = "IHE_XDM/SUBSET01/METADATA.XML"
MAX_ENTRIES = 100
MAX_TOTAL_BYTES = 50 * 1024 * 1024
MAX_RATIO = 100
MAX_METADATA_BYTES = 2 * 1024 * 1024
# Past this a CDA document is offered as a file, without its text shown in the page.
MAX_CDA_TEXT_BYTES = 5 * 1024 * 1024
_ARCHIVE_SUFFIXES = (".zip", ".jar", ".7z", ".rar", ".gz", ".tgz", ".tar", ".bz2", ".xz", ".cab")

LOINC = "2.16.840.1.113883.6.1"
RPPS_OID = "1.2.250.1.71.4.2.1"


def gettext_noop(message: str) -> str:
    """Marks a message for the catalogue; the Django layer translates it (see identifiers)."""
    return message


# The short list offered in compose (LOINC document types). The French labels are
# written into METADATA.XML; the interface shows them translated.
DOCUMENT_TYPES: Final = {
    "11502-2": gettext_noop("Compte rendu d'examens de biologie médicale"),
    "18748-4": gettext_noop("Compte rendu d'imagerie médicale"),
    "34133-9": gettext_noop("Synthèse d'épisode de soins"),
    "11490-0": gettext_noop("Lettre de liaison à la sortie d'un établissement de soins"),
    "11488-4": gettext_noop("Compte rendu de consultation"),
    "57833-6": gettext_noop("Prescription de médicaments"),
}
FORMATS = {
    "application/pdf": "urn:ihe:iti:xds-sd:pdf:2008",
    "text/xml": "urn:ihe:iti:xds-sd:text:2008",
}

_RIM = "urn:oasis:names:tc:ebxml-regrep:xsd:rim:3.0"
_LCM = "urn:oasis:names:tc:ebxml-regrep:xsd:lcm:3.0"
_DOC_ENTRY = "urn:uuid:7edca82f-054d-47f2-a032-9b2a5b5186c1"
_SUBMISSION_SET = "urn:uuid:a54d6aa5-d40d-43f9-88c5-b4633d873bdd"
_AUTHOR = "urn:uuid:93606bcf-9494-43ec-9b4e-a7748d1a838d"
_CLASS = "urn:uuid:41a5887f-8865-4c09-adf7-e362475b143a"
_TYPE = "urn:uuid:f0306f51-975f-434e-a61c-c59651d33983"
_FORMAT = "urn:uuid:a09d5840-386c-46f2-b5ad-9c3699a4309d"
_DOC_PATIENT = "urn:uuid:58a6f841-87b3-4a3e-92fd-a8ffeff98427"
_DOC_UNIQUE = "urn:uuid:2e82c1f6-a085-4c72-9da3-8640a32e42ab"
_SET_UNIQUE = "urn:uuid:96fdda7c-d067-4183-912e-bf5ee74998a8"
_SET_SOURCE = "urn:uuid:554ac39e-e3fe-47fe-b233-965d2a147832"
_SET_PATIENT = "urn:uuid:6b5aea1a-874d-4603-a4bc-96a0a7b38446"
_SET_CONTENT = "urn:uuid:aa543740-bdda-424e-8c96-df4873be8500"


TOO_MANY_FILES: Final = gettext_noop("trop de fichiers dans l'archive (au plus %(limit)d)")
TOO_MANY_FILES_COUNTED: Final = gettext_noop(
    "trop de fichiers dans l'archive (%(count)d, au plus %(limit)d)"
)
UNREADABLE_ARCHIVE: Final = gettext_noop("archive illisible (%(error)s)")
TOO_LARGE: Final = gettext_noop("archive trop volumineuse une fois décompressée")
FORBIDDEN_PATH: Final = gettext_noop("chemin interdit dans l'archive : « %(name)s »")
NESTED_ARCHIVE: Final = gettext_noop("archive imbriquée refusée : « %(name)s »")
SUSPECT_RATIO: Final = gettext_noop("taux de compression suspect (bombe ?) : « %(name)s »")
UNREADABLE_FILE: Final = gettext_noop("fichier illisible : « %(name)s » (%(error)s)")
METADATA_DTD: Final = gettext_noop("métadonnées refusées : DTD ou entités")
METADATA_UNREADABLE: Final = gettext_noop("METADATA.XML illisible (%(error)s)")
METADATA_MISSING: Final = gettext_noop("IHE_XDM/SUBSET01/METADATA.XML absent")
METADATA_TOO_LARGE: Final = gettext_noop("METADATA.XML trop volumineux")
NO_SUBMISSION_SET: Final = gettext_noop("lot de soumission (RegistryPackage) absent")


class XdmError(Exception):
    """An archive that is not opened: ``template % params`` says why (French, for gettext)."""

    def __init__(self, template: str, **params: Any) -> None:
        super().__init__(template % params if params else template)
        self.template = template
        self.params = params


@dataclass(frozen=True)
class Patient:
    ins: str  # matricule, 15 characters
    oid: str  # INS-NIR 1.2.250.1.213.1.4.8, NIA …4.9, test …4.10, demo …4.11
    birth_name: str = ""
    first_names: str = ""
    birth_date: str = ""  # AAAAMMJJ
    sex: str = ""  # F | M
    qualified: bool = True

    @property
    def cx(self) -> str:
        return f"{self.ins}^^^&{self.oid}&ISO"


@dataclass(frozen=True)
class Author:
    rpps: str  # national id: "8" + RPPS
    last_name: str
    first_name: str

    @property
    def xcn(self) -> str:
        return f"{self.rpps}^{self.last_name}^{self.first_name}^^^^^^&{RPPS_OID}&ISO"


@dataclass(frozen=True)
class Document:
    filename: str
    content_type: str
    data: bytes
    type_code: str  # LOINC
    title: str = ""


@dataclass
class DocumentEntry:
    uri: str
    mime_type: str
    title: str
    type_code: str
    type_label: str
    format_code: str
    class_code: str
    unique_id: str
    patient_id: str
    author: str
    creation_time: str
    hash: str
    size: int
    hash_ok: bool = True
    data: bytes = field(default=b"", repr=False)
    # sourcePatientInfo: "PID-5" -> "NOM^Prénoms^^^^^L", "PID-7" -> AAAAMMJJ, "PID-8" -> sex.
    patient_info: dict[str, str] = field(default_factory=dict)


@dataclass
class Package:
    submission_id: str
    submission_time: str
    patient_id: str
    source_id: str
    documents: list[DocumentEntry]


def _oid_uuid() -> str:
    # 2.25.<uuid as integer>: a globally unique OID needing no registered root.
    return f"2.25.{uuid.uuid4().int}"


def _el(parent: ET.Element, tag: str, **attrs: str) -> ET.Element:
    return ET.SubElement(parent, f"{{{_RIM}}}{tag}", attrs)


def _slot(parent: ET.Element, name: str, *values: str) -> None:
    slot = _el(parent, "Slot", name=name)
    value_list = _el(slot, "ValueList")
    for value in values:
        _el(value_list, "Value").text = value


def _name(parent: ET.Element, text: str) -> None:
    _el(_el(parent, "Name"), "LocalizedString", value=text)


def _classify(
    parent: ET.Element, scheme: str, obj: str, code: str, label: str, coding: str
) -> None:
    node = _el(
        parent,
        "Classification",
        id=f"cl{uuid.uuid4().hex[:12]}",
        classificationScheme=scheme,
        classifiedObject=obj,
        nodeRepresentation=code,
    )
    _slot(node, "codingScheme", coding)
    _name(node, label)


def _external(parent: ET.Element, scheme: str, obj: str, value: str, label: str) -> None:
    node = _el(
        parent,
        "ExternalIdentifier",
        id=f"ei{uuid.uuid4().hex[:12]}",
        identificationScheme=scheme,
        registryObject=obj,
        value=value,
    )
    _name(node, label)


def _extension(document: Document) -> str:
    return ".PDF" if document.content_type == "application/pdf" else ".XML"


def build(
    documents: list[Document],
    *,
    patient: Patient,
    author: Author,
    source_oid: str,
    now: datetime | None = None,
) -> bytes:
    """The bytes of IHE_XDM.ZIP for these documents about one patient, by one author."""
    if not documents:
        raise ValueError("an XDM package needs at least one document")
    now = now or datetime.now(UTC)
    stamp = now.astimezone(UTC).strftime("%Y%m%d%H%M%S")
    ET.register_namespace("rim", _RIM)
    ET.register_namespace("lcm", _LCM)
    root = ET.Element(f"{{{_LCM}}}SubmitObjectsRequest")
    objects = _el(root, "RegistryObjectList")
    files: list[tuple[str, bytes]] = []
    doc_ids = []
    for n, document in enumerate(documents, start=1):
        uri = f"DOC{n:04d}{_extension(document)}"
        files.append((uri, document.data))
        doc_id = f"Document{n:02d}"
        doc_ids.append(doc_id)
        mime_type = "application/pdf" if uri.endswith(".PDF") else "text/xml"
        entry = _el(
            objects, "ExtrinsicObject", id=doc_id, mimeType=mime_type, objectType=_DOC_ENTRY
        )
        _slot(entry, "creationTime", stamp)
        _slot(entry, "hash", hashlib.sha1(document.data, usedforsecurity=False).hexdigest())
        _slot(entry, "size", str(len(document.data)))
        _slot(entry, "URI", uri)
        _slot(entry, "languageCode", "fr-FR")
        _slot(entry, "sourcePatientId", patient.cx)
        _slot(
            entry,
            "sourcePatientInfo",
            f"PID-3|{patient.cx}",
            f"PID-5|{patient.birth_name}^{patient.first_names}^^^^^L",
            f"PID-7|{patient.birth_date}",
            f"PID-8|{patient.sex}",
        )
        label = DOCUMENT_TYPES.get(document.type_code, document.title or document.type_code)
        _name(entry, document.title or label)
        author_node = _el(
            entry,
            "Classification",
            id=f"cl{uuid.uuid4().hex[:12]}",
            classificationScheme=_AUTHOR,
            classifiedObject=doc_id,
            nodeRepresentation="",
        )
        _slot(author_node, "authorPerson", author.xcn)
        _classify(entry, _CLASS, doc_id, document.type_code, label, LOINC)
        _classify(entry, _TYPE, doc_id, document.type_code, label, LOINC)
        fmt = FORMATS.get(mime_type, "urn:ihe:iti:xds-sd:text:2008")
        _classify(entry, _FORMAT, doc_id, fmt, fmt, "1.3.6.1.4.1.19376.1.2.3")
        _external(entry, _DOC_PATIENT, doc_id, patient.cx, "XDSDocumentEntry.patientId")
        _external(entry, _DOC_UNIQUE, doc_id, _oid_uuid(), "XDSDocumentEntry.uniqueId")
    package = _el(objects, "RegistryPackage", id="SubmissionSet01")
    _slot(package, "submissionTime", stamp)
    author_node = _el(
        package,
        "Classification",
        id=f"cl{uuid.uuid4().hex[:12]}",
        classificationScheme="urn:uuid:a7058bb9-b4e4-4307-ba5b-e3f0ab85e12d",
        classifiedObject="SubmissionSet01",
        nodeRepresentation="",
    )
    _slot(author_node, "authorPerson", author.xcn)
    _classify(
        package,
        _SET_CONTENT,
        "SubmissionSet01",
        documents[0].type_code,
        DOCUMENT_TYPES.get(documents[0].type_code, documents[0].type_code),
        LOINC,
    )
    _external(package, _SET_UNIQUE, "SubmissionSet01", _oid_uuid(), "uniqueId")
    _external(package, _SET_SOURCE, "SubmissionSet01", source_oid, "sourceId")
    _external(package, _SET_PATIENT, "SubmissionSet01", patient.cx, "patientId")
    _el(
        objects,
        "Classification",
        id="clSubmissionSet",
        classifiedObject="SubmissionSet01",
        classificationNode=_SUBMISSION_SET,
    )
    for n, doc_id in enumerate(doc_ids, start=1):
        _el(
            objects,
            "Association",
            id=f"as{n:02d}",
            associationType="urn:oasis:names:tc:ebxml-regrep:AssociationType:HasMember",
            sourceObject="SubmissionSet01",
            targetObject=doc_id,
        )
    metadata = ET.tostring(root, encoding="utf-8", xml_declaration=True)
    listing = "".join(
        f"<li><a href='IHE_XDM/SUBSET01/{uri}'>{escape(uri)}</a></li>" for uri, _d in files
    )
    index = (
        "<!DOCTYPE html><html lang='fr'><head><meta charset='utf-8'><title>IHE XDM</title>"
        f"</head><body><h1>Documents transmis</h1><ul>{listing}</ul></body></html>"
    )
    readme = (
        "Ce support contient des documents médicaux au format IHE XDM.\r\n"
        "Métadonnées : IHE_XDM/SUBSET01/METADATA.XML\r\n"
    )
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("INDEX.HTM", index)
        archive.writestr("README.TXT", readme)
        archive.writestr(METADATA, metadata)
        for uri, data in files:
            archive.writestr(f"IHE_XDM/SUBSET01/{uri}", data)
    return buffer.getvalue()


def headers(patient: Patient, documents: list[Document]) -> dict[str, str]:
    """The MSSanté headers of a message carrying this package (DOMAIN.md)."""
    codes = ",".join(dict.fromkeys(d.type_code for d in documents))
    return {"X-MSS-INS": "O" if patient.qualified else "N", "X-MSS-CODECDA": codes}


# --------------------------------------------------------------------------- reading


def _safe_name(name: str) -> bool:
    if not name or name.startswith(("/", "\\")) or "\\" in name or "\x00" in name:
        return False
    if len(name) > 1 and name[1] == ":":
        return False  # C:…
    return ".." not in name.split("/")


def _read_entries(data: bytes) -> dict[str, bytes]:
    directory = archives.central_directory_size(data)
    if directory is not None and directory > archives.MAX_CENTRAL_DIRECTORY:
        # zipfile would read it whole and build an object per entry before we count them.
        raise XdmError(TOO_MANY_FILES, limit=MAX_ENTRIES)
    try:
        archive = zipfile.ZipFile(io.BytesIO(data))
    except (zipfile.BadZipFile, OSError, ValueError) as exc:
        raise XdmError(UNREADABLE_ARCHIVE, error=str(exc)) from None
    with archive:
        infos = archive.infolist()
        if len(infos) > MAX_ENTRIES:
            raise XdmError(TOO_MANY_FILES_COUNTED, count=len(infos), limit=MAX_ENTRIES)
        declared = sum(i.file_size for i in infos)
        if declared > MAX_TOTAL_BYTES:
            raise XdmError(TOO_LARGE)
        for info in infos:
            if not _safe_name(info.filename):
                raise XdmError(FORBIDDEN_PATH, name=info.filename)
            if info.filename.lower().endswith(_ARCHIVE_SUFFIXES):
                raise XdmError(NESTED_ARCHIVE, name=info.filename)
            if info.compress_size and info.file_size / info.compress_size > MAX_RATIO:
                raise XdmError(SUSPECT_RATIO, name=info.filename)
        entries: dict[str, bytes] = {}
        budget = MAX_TOTAL_BYTES
        for info in infos:
            if info.is_dir():
                continue
            try:
                with archive.open(info) as handle:
                    # Read one byte past the budget: headers may lie about sizes.
                    content = handle.read(budget + 1)
            except (zipfile.BadZipFile, OSError, RuntimeError, ValueError) as exc:
                raise XdmError(UNREADABLE_FILE, name=info.filename, error=str(exc)) from None
            budget -= len(content)
            if budget < 0:
                raise XdmError(TOO_LARGE)
            if content[:4] == b"PK\x03\x04":
                raise XdmError(NESTED_ARCHIVE, name=info.filename)
            entries[info.filename] = content
        return entries


def _xml(data: bytes) -> ET.Element:
    try:
        root: ET.Element = DefusedET.fromstring(data, forbid_dtd=True)
    except DefusedXmlException:
        raise XdmError(METADATA_DTD) from None
    except (ET.ParseError, ValueError) as exc:
        raise XdmError(METADATA_UNREADABLE, error=str(exc)) from None
    return root


def _slots(node: ET.Element) -> dict[str, list[str]]:
    return {
        str(slot.get("name")): [v.text or "" for v in slot.iter(f"{{{_RIM}}}Value")]
        for slot in node.findall(f"{{{_RIM}}}Slot")
    }


def _classification(node: ET.Element, scheme: str) -> ET.Element | None:
    for c in node.findall(f"{{{_RIM}}}Classification"):
        if c.get("classificationScheme") == scheme:
            return c
    return None


def _external_value(node: ET.Element, scheme: str) -> str:
    for e in node.findall(f"{{{_RIM}}}ExternalIdentifier"):
        if e.get("identificationScheme") == scheme:
            return e.get("value") or ""
    return ""


def _code(node: ET.Element, scheme: str) -> str:
    found = _classification(node, scheme)
    return (found.get("nodeRepresentation") or "") if found is not None else ""


def _label(node: ET.Element | None) -> str:
    if node is None:
        return ""
    found = node.find(f"{{{_RIM}}}Name/{{{_RIM}}}LocalizedString")
    return (found.get("value") or "") if found is not None else ""


def read(data: bytes) -> Package:
    """Open an IHE_XDM.ZIP safely and return its metadata with each document's bytes."""
    entries = _read_entries(data)
    metadata = next((v for k, v in entries.items() if k.upper() == METADATA), None)
    if metadata is None:
        raise XdmError(METADATA_MISSING)
    if len(metadata) > MAX_METADATA_BYTES:
        raise XdmError(METADATA_TOO_LARGE)
    root = _xml(metadata)
    folder = {k.upper(): v for k, v in entries.items()}
    documents = []
    for node in root.iter(f"{{{_RIM}}}ExtrinsicObject"):
        slots = _slots(node)
        uri = (slots.get("URI") or [""])[0]
        content = folder.get(f"IHE_XDM/SUBSET01/{uri}".upper(), b"")
        declared_hash = (slots.get("hash") or [""])[0].lower()
        type_node = _classification(node, _TYPE)
        author_node = _classification(node, _AUTHOR)
        documents.append(
            DocumentEntry(
                uri=uri,
                mime_type=node.get("mimeType") or "",
                title=_label(node),
                type_code=_code(node, _TYPE),
                type_label=_label(type_node),
                format_code=_code(node, _FORMAT),
                class_code=_code(node, _CLASS),
                unique_id=_external_value(node, _DOC_UNIQUE),
                patient_id=_external_value(node, _DOC_PATIENT),
                author=(_slots(author_node).get("authorPerson") or [""])[0]
                if author_node is not None
                else "",
                creation_time=(slots.get("creationTime") or [""])[0],
                hash=declared_hash,
                size=int((slots.get("size") or ["0"])[0] or 0),
                hash_ok=bool(content)
                and hashlib.sha1(content, usedforsecurity=False).hexdigest() == declared_hash,
                data=content,
                patient_info=dict(
                    v.split("|", 1) for v in slots.get("sourcePatientInfo", []) if "|" in v
                ),
            )
        )
    package_node = root.find(f".//{{{_RIM}}}RegistryPackage")
    if package_node is None:
        raise XdmError(NO_SUBMISSION_SET)
    return Package(
        submission_id=_external_value(package_node, _SET_UNIQUE),
        submission_time=(_slots(package_node).get("submissionTime") or [""])[0],
        patient_id=_external_value(package_node, _SET_PATIENT),
        source_id=_external_value(package_node, _SET_SOURCE),
        documents=documents,
    )


def cda_text(data: bytes, limit: int = 200_000) -> str:
    """The human-readable text of a CDA document: section titles and narrative blocks."""
    if len(data) > MAX_CDA_TEXT_BYTES:
        return ""
    try:
        root = _xml(data)
    except XdmError:
        return ""
    lines: list[str] = []
    for element in root.iter():
        tag = element.tag.rsplit("}", 1)[-1]
        if tag == "title" and element.text:
            lines.append(element.text.strip())
        elif tag == "text":
            text = " ".join(" ".join(element.itertext()).split())
            if text:
                lines.append(text)
    return "\n".join(lines)[:limit]


def patient_ins(package: Package) -> str:
    """The patient's INS matricule a package names (submission set first), or "".

    The CX value is ``<matricule>^^^&<OID>&ISO``; only an identifier under one of the INS
    OIDs (NIR, NIA, test, demo) and of the matricule's form (15 letters or digits) is kept:
    the column it fills groups a doctor's results by patient.
    """
    for value in [package.patient_id, *(d.patient_id for d in package.documents)]:
        matricule, _sep, rest = (value or "").partition("^^^&")
        oid = rest.partition("&")[0]
        matricule = matricule.strip().upper()
        if oid in identifiers.INS_OID_LABELS and len(matricule) == 15 and matricule.isalnum():
            return matricule
    return ""
