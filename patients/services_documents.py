"""Mes documents: filing what professionals send, adding, hiding and reading documents.

Filing takes every message received in the patient's box (outside the Trash, not held by
the antivirus) once: each attachment becomes a document, and an IHE_XDM.ZIP becomes the
documents it carries, with their metadata (type, date, author). It runs after commit of
every delivery to a patient box (``mailboxes.hooks.delivered``, whatever the door), and
again when the patient opens the list (for messages delivered before this existed, or a
lost task): ``FiledMessage`` makes it run once per message.

A document the patient adds goes through the trust space's attachment policy and the
antivirus before anything is stored; its bytes are sealed in the blob store like a
draft's file.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from datetime import UTC, date, datetime, time
from email.parser import HeaderParser

from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import Exists, OuterRef
from django.http import HttpRequest
from django.utils import timezone
from django.utils.translation import gettext as _

from accounts.models import User
from audit import journal
from mailboxes import blobs
from mailboxes import services as mailbox_services
from mailboxes.models import Entry, Folder, Mailbox, Message
from mailboxes.services import quarantine
from mailboxes.services import reading as mail_reading
from mailboxes.services.messages import header_bytes
from mssante.lib import crypto, mime, xdm
from mssante.lib.mime import human_size
from patients.models_documents import FiledMessage, PatientDocument
from trust import scanning
from trust.policy import PolicyError, check_attachments

log = logging.getLogger(__name__)

Family = PatientDocument.Family

# A patient's list is read whole (sealed titles are searched in Python): it stays bounded.
MAX_ADDED = 200
# Messages examined per filing run: a box full of old mail is filed over a few visits.
FILING_BATCH = 200
BLOB_KIND = "documents"


def referenced_blobs(names: list[str]) -> list[str]:
    """Those of ``names`` a patient's own document still points to (the orphan collection)."""
    return list(
        PatientDocument.objects.filter(blob_name__in=names).values_list("blob_name", flat=True)
    )


# LOINC document types (XDM typeCode / classCode, X-MSS-CODECDA) by family.
LOINC_FAMILIES: dict[str, str] = {
    # Résultats (biologie, examens)
    "11502-2": Family.RESULTS,
    "26436-6": Family.RESULTS,
    "30954-2": Family.RESULTS,
    # Imagerie
    "18748-4": Family.IMAGING,
    "18747-6": Family.IMAGING,
    "18782-3": Family.IMAGING,
    "52040-3": Family.IMAGING,
    # Ordonnances et prescriptions
    "57833-6": Family.PRESCRIPTION,
    "57828-6": Family.PRESCRIPTION,
    "57832-8": Family.PRESCRIPTION,
    "29551-9": Family.PRESCRIPTION,
    # Courriers
    "11490-0": Family.LETTER,
    "57830-2": Family.LETTER,
    "34140-4": Family.LETTER,
    "51851-4": Family.LETTER,
    # Comptes rendus
    "11488-4": Family.REPORT,
    "34133-9": Family.REPORT,
    "11506-3": Family.REPORT,
    "34112-3": Family.REPORT,
    "34874-8": Family.REPORT,
    "11504-8": Family.REPORT,
    "18842-5": Family.REPORT,
    "28570-0": Family.REPORT,
}

# Words of a file name, folded, when the sender gave no code.
_NAME_FAMILIES: tuple[tuple[tuple[str, ...], str], ...] = (
    (("ordonnance", "prescription", "ordo"), Family.PRESCRIPTION),
    (("resultat", "bilan", "biolog", "analyse", "labo"), Family.RESULTS),
    (("radio", "irm", "scanner", "echograph", "imagerie", "mammograph", "dicom"), Family.IMAGING),
    (("lettre", "courrier", "liaison", "adressage"), Family.LETTER),
    (("compte-rendu", "compte_rendu", "compte rendu", "cr-", "cr_", "synthese"), Family.REPORT),
)
_FOLD = str.maketrans("éèêëàâäîïôöùûüç", "eeeeaaaiioouuuc")


class DocumentError(Exception):
    """A document the patient may not add: ``str(exc)`` is the French reason."""


def family_of(type_code: str = "", filename: str = "", content_type: str = "") -> str:
    """The family of a document: from its LOINC code, else its file name, else its type."""
    found = LOINC_FAMILIES.get((type_code or "").strip())
    if found:
        return found
    name = (filename or "").lower().translate(_FOLD)
    for words, family in _NAME_FAMILIES:
        if any(w in name for w in words):
            return family
    if (content_type or "").lower() == "application/dicom":
        return Family.IMAGING
    return Family.OTHER


def _stamp(value: str) -> datetime | None:
    """XDM's AAAAMMJJ[HHMM[SS]] (UTC) as a datetime, or None."""
    digits = (value or "")[:14]
    if len(digits) < 8 or not digits.isdigit():
        return None
    digits = digits.ljust(14, "0")
    try:
        return datetime(
            int(digits[0:4]),
            int(digits[4:6]),
            int(digits[6:8]),
            int(digits[8:10]),
            int(digits[10:12]),
            int(digits[12:14]),
            tzinfo=UTC,
        )
    except ValueError:
        return None


def _author(xcn: str) -> str:
    """An XCN (``id^NOM^Prénom^…``) as "Prénom NOM"."""
    parts = (xcn or "").split("^")
    if len(parts) < 3:
        return xcn or ""
    return " ".join(p for p in (parts[2], parts[1]) if p) or parts[0]


def _codes(message: Message) -> list[str]:
    """The LOINC codes of the message's X-MSS-CODECDA header (sealed header block)."""
    block = header_bytes(message)
    headers = HeaderParser().parsestr(block[: 64 * 1024].decode("latin-1"), headersonly=True)
    value = str(headers.get("X-MSS-CODECDA") or "")
    return [c.strip() for c in value.split(",") if c.strip()][:20]


def _title_of(filename: str) -> str:
    """A title from a file name: "ordonnance-mars.pdf" gives "Ordonnance mars"."""
    stem = os.path.splitext(filename)[0].replace("_", " ").replace("-", " ")
    stem = " ".join(stem.split())
    return (stem[:1].upper() + stem[1:]) if stem else filename


def _documents_of(user: User, message: Message) -> list[PatientDocument]:
    """The documents a received message carries (unsaved), read from its metadata."""
    # A calendar invitation is an appointment (Mon agenda), not a document to file.
    parts = [
        a
        for a in (message.attachments or [])
        if isinstance(a, dict)
        and str(a.get("content_type", "")).lower() not in mail_reading.CALENDAR_TYPES
    ]
    if not parts:
        return []
    codes = _codes(message)
    single_code = codes[0] if len(codes) == 1 else ""
    sender = message.from_name or message.from_addr
    out: list[PatientDocument] = []
    raw: bytes | None = None
    for part in parts:
        index = int(part.get("index", -1))
        filename = str(part.get("filename", ""))[:255]
        content_type = str(part.get("content_type", "application/octet-stream")).lower()[:127]
        common = {
            "patient": user,
            "source": PatientDocument.Source.RECEIVED,
            "message": message,
            "part_index": index,
        }
        if filename.strip().upper() == xdm.FILENAME:
            try:
                if raw is None:
                    raw = mailbox_services.read_raw(message)
                package = xdm.read(mime.get_part(raw, index).data)
            except (xdm.XdmError, mime.PartNotFoundError, crypto.BlobIntegrityError):
                # Filed as the archive itself, never unpacked (an altered blob is logged
                # by read_raw; downloading it later says it is unavailable).
                package = None
            if package is not None and package.documents:
                for number, entry in enumerate(package.documents, start=1):
                    code = entry.type_code or entry.class_code
                    known = xdm.DOCUMENT_TYPES.get(entry.type_code)
                    out.append(
                        PatientDocument(
                            **common,
                            package_number=number,
                            family=family_of(code, entry.title or entry.uri, entry.mime_type),
                            type_code=code[:32],
                            title=entry.title or entry.type_label or (_(known) if known else ""),
                            filename=os.path.basename(entry.uri)[:255] or f"document-{number}",
                            author=_author(entry.author) or sender,
                            content_type=(entry.mime_type or "application/octet-stream").lower()[
                                :127
                            ],
                            size=len(entry.data),
                            document_date=_stamp(entry.creation_time) or message.date,
                        )
                    )
                continue
        code = single_code if single_code in LOINC_FAMILIES else ""
        by_name = family_of("", filename, content_type)
        out.append(
            PatientDocument(
                **common,
                family=by_name if by_name != Family.OTHER else family_of(code),
                type_code=code,
                title=_title_of(filename),
                filename=filename,
                author=sender,
                content_type=content_type,
                size=int(part.get("size", 0) or 0),
                document_date=message.date,
            )
        )
    return out


def _pending_entries(user: User, box: Mailbox) -> list[Entry]:
    filed = FiledMessage.objects.filter(patient=user, message=OuterRef("message_id"))
    return list(
        Entry.objects.select_related("message")
        .filter(mailbox=box)
        .exclude(folder__role=Folder.Role.TRASH)
        .exclude(message__sender_mailbox=box)
        .exclude(message__scan_status=Message.ScanStatus.PENDING)
        .filter(~Exists(filed))
        .order_by("pk")[:FILING_BATCH]
    )


def file_received_documents(mailbox_id: int) -> int:
    """File the documents of the messages not yet filed in a patient box; how many filed."""
    box = Mailbox.objects.select_related("owner").filter(pk=mailbox_id).first()
    if box is None or box.kind != Mailbox.Kind.PATIENT or box.owner is None:
        return 0
    user = box.owner
    entries = _pending_entries(user, box)
    if not entries:
        return 0
    released = quarantine.released_ids(
        [e.message_id for e in entries if e.message.scan_status == Message.ScanStatus.INFECTED]
    )
    filed = 0
    for entry in entries:
        message = entry.message
        if message.scan_status == Message.ScanStatus.INFECTED and message.pk not in released:
            continue  # held by the antivirus: filed once staff release it
        documents = _documents_of(user, message)
        try:
            with transaction.atomic():
                FiledMessage.objects.create(patient=user, message=message)
                PatientDocument.objects.bulk_create(documents)
                if documents:
                    journal.record(
                        "patient.documents_filed",
                        obj=user,
                        message=str(message.public_id),
                        count=len(documents),
                    )
        except IntegrityError:
            continue  # filed meanwhile by another run
        filed += len(documents)
    return filed


# --- The patient's own documents ------------------------------------------------------------

_MAGIC = (
    (b"%PDF-", "application/pdf"),
    (b"\x89PNG\r\n\x1a\n", "image/png"),
    (b"\xff\xd8\xff", "image/jpeg"),
    (b"GIF87a", "image/gif"),
    (b"GIF89a", "image/gif"),
)


def _sniffed_type(data: bytes) -> str:
    """The type the file's first bytes prove (what the preview trusts), else a download."""
    for magic, content_type in _MAGIC:
        if data.startswith(magic):
            return content_type
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "image/webp"
    return "application/octet-stream"


def _clean_filename(filename: str) -> str:
    name = os.path.basename((filename or "").replace("\\", "/")).strip().lstrip(".")
    return name[:255] or "document"


@dataclass(frozen=True)
class Upload:
    filename: str
    data: bytes
    family: str
    title: str = ""
    document_date: date | None = None


def check_upload_size(filename: str, size: int) -> None:
    """Refuse a file too large before its bytes are read."""
    limit = settings.ATTACHMENT_MAX_BYTES
    if size > limit:
        raise DocumentError(
            _(
                "« %(name)s » dépasse la taille maximale autorisée (%(size)s pour %(limit)s au plus)."
            )
            % {
                "name": _clean_filename(filename),
                "size": human_size(size),
                "limit": human_size(limit),
            }
        )


def add_document(
    user: User, upload: Upload, *, by: User, request: HttpRequest | None = None
) -> PatientDocument:
    """Add a patient's own document: policy, antivirus, then sealed in the blob store."""
    filename = _clean_filename(upload.filename)
    check_upload_size(filename, len(upload.data))
    if not upload.data:
        raise DocumentError(_("« %(name)s » est vide.") % {"name": filename})
    if upload.family not in Family.values:
        raise DocumentError(_("Choisissez le type du document."))
    if (
        PatientDocument.objects.filter(patient=user, source=PatientDocument.Source.ADDED).count()
        >= MAX_ADDED
    ):
        raise DocumentError(
            _(
                "Vous avez déjà ajouté %(limit)d documents : masquez ou retirez-en avant d'en ajouter."
            )
            % {"limit": MAX_ADDED}
        )
    try:
        check_attachments([(filename, "", upload.data)])
    except PolicyError as exc:
        raise DocumentError(str(exc)) from None
    try:
        verdict = scanning.scan_file(upload.data)
    except scanning.ClamdUnavailable:
        raise DocumentError(
            _(
                "L'analyse antivirus est momentanément indisponible : réessayez dans quelques minutes."
            )
        ) from None
    if verdict.infected:
        # Journaled in its own transaction: the refusal itself writes nothing else.
        with transaction.atomic():
            journal.record(
                "patient.document_refused", actor=by, obj=user, reason="infected", request=request
            )
        raise DocumentError(
            _(
                "« %(name)s » est refusé : l'antivirus y a détecté un virus. Rien n'a été enregistré."
            )
            % {"name": filename}
        )
    if verdict.status == scanning.ScanStatus.UNSCANNABLE:
        raise DocumentError(
            _("« %(name)s » est refusé : l'antivirus n'a pas pu l'analyser.") % {"name": filename}
        )
    when = upload.document_date
    document_date = (
        timezone.make_aware(datetime.combine(when, time(12, 0))) if when else timezone.now()
    )
    name = blobs.new_name(BLOB_KIND)
    sealed = blobs.write(name, upload.data)
    try:
        with transaction.atomic():
            document = PatientDocument.objects.create(
                patient=user,
                source=PatientDocument.Source.ADDED,
                family=upload.family,
                title=(upload.title.strip() or _title_of(filename))[:200],
                filename=filename,
                author=by.get_full_name() or "",
                content_type=_sniffed_type(upload.data),
                size=len(upload.data),
                document_date=document_date,
                blob_name=name,
                key_id=sealed.key_id,
                wrapped_key=sealed.wrapped_key,
            )
            journal.record(
                "patient.document_added",
                actor=by,
                obj=document,
                family=document.family,
                size=document.size,
                scan=verdict.status.value,
                request=request,
            )
    except BaseException:
        blobs.delete(name)
        raise
    return document


@transaction.atomic()
def set_hidden(
    document: PatientDocument, hidden: bool, *, by: User, request: HttpRequest | None = None
) -> None:
    """Hide a document from the main list, or show it again (journaled)."""
    locked = PatientDocument.objects.select_for_update().get(pk=document.pk)
    if (locked.hidden_at is not None) == hidden:
        return
    locked.hidden_at = timezone.now() if hidden else None
    locked.save(update_fields=["hidden_at"])
    document.hidden_at = locked.hidden_at
    journal.record(
        "patient.document_hidden" if hidden else "patient.document_shown",
        actor=by,
        obj=locked,
        request=request,
    )


# --- Reading ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class DocumentFile:
    data: bytes
    content_type: str
    filename: str


class DocumentUnavailable(Exception):
    """The document's bytes cannot be handed out (message gone or held, archive refused)."""


def read_document(document: PatientDocument) -> DocumentFile:
    """The document's bytes, decrypted, with the type to serve them as."""
    if document.source == PatientDocument.Source.ADDED:
        try:
            data = blobs.read(
                document.blob_name, document.key_id, bytes(document.wrapped_key or b"")
            )
        except crypto.BlobIntegrityError:
            log.error("patient document %s: stored blob cannot be opened", document.pk)
            raise DocumentUnavailable from None
        return DocumentFile(data, document.content_type, document.filename)
    message = document.message
    if message is None or document.part_index is None:
        raise DocumentUnavailable
    try:
        part = mime.get_part(mailbox_services.read_raw(message), document.part_index)
    except (mime.PartNotFoundError, crypto.BlobIntegrityError):
        raise DocumentUnavailable from None
    if not document.package_number:
        return DocumentFile(part.data, part.content_type.lower(), part.filename)
    try:
        package = xdm.read(part.data)
    except xdm.XdmError:
        raise DocumentUnavailable from None
    if not 1 <= document.package_number <= len(package.documents):
        raise DocumentUnavailable
    entry = package.documents[document.package_number - 1]
    return DocumentFile(entry.data, entry.mime_type.lower(), document.filename)
