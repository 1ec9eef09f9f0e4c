"""Structured documents: "Joindre au dossier du patient" builds IHE_XDM.ZIP into a draft.

The webmail's form only says which patient, which document type and which files; this is
the whole of what attaching does: the author's right, the checks of each document, the
package (``mssante.lib.xdm``), and the headers the message will carry.
"""

from __future__ import annotations

import uuid
from collections.abc import Collection, Sequence
from typing import TYPE_CHECKING

from django.conf import settings
from django.db import transaction
from django.utils.translation import gettext as _

from accounts.models import User
from mailboxes.models import Draft, DraftAttachment
from mailboxes.services.drafts import (
    _authorise_draft,
    add_draft_attachment,
    read_draft_attachment,
    remove_draft_attachment,
    set_draft_headers,
)
from mailboxes.services.errors import DraftError
from mssante.lib import mime, xdm

if TYPE_CHECKING:
    from django.core.files.uploadedfile import UploadedFile

XML_TYPES = ("text/xml", "application/xml", "application/hl7-cda+xml")


def _kind(filename: str, content_type: str, data: bytes) -> str | None:
    """ "application/pdf" or "text/xml" for a PDF or a CDA XML file, None for anything else."""
    name = (filename or "").lower()
    ctype = (content_type or "").split(";")[0].strip().lower()
    if (ctype == "application/pdf" or name.endswith(".pdf")) and data.startswith(b"%PDF-"):
        return "application/pdf"
    if ctype in XML_TYPES or name.endswith(".xml"):
        head = data.lstrip(b"\xef\xbb\xbf \t\r\n")[:1]
        if head == b"<":
            return "text/xml"
    return None


def _documents(
    draft: Draft, type_code: str, attachment_ids: Collection[int], uploads: Sequence[UploadedFile]
) -> list[xdm.Document]:
    picked: list[tuple[str, str, bytes]] = []
    for att in draft.files.filter(pk__in=list(attachment_ids)).order_by("pk"):
        picked.append((att.filename, att.content_type, read_draft_attachment(att)))
    # Checked on the declared sizes, before anything is read.
    if sum(u.size or 0 for u in uploads) > settings.MESSAGE_MAX_BYTES:
        raise DraftError(
            _("Les documents dépassent la taille maximale d'un message (%(limit)s).")
            % {"limit": mime.human_size(settings.MESSAGE_MAX_BYTES)}
        )
    for upload in uploads:
        picked.append((upload.name or "document", upload.content_type or "", upload.read()))
    if not picked:
        raise DraftError(_("Choisissez au moins un document (PDF ou CDA XML)."))
    documents = []
    for filename, content_type, data in picked:
        kind = _kind(filename, content_type, data)
        if kind is None:
            raise DraftError(
                _("« %(name)s » n'est ni un PDF ni un document CDA XML.") % {"name": filename}
            )
        documents.append(
            xdm.Document(filename, kind, data, type_code, filename.rsplit(".", 1)[0][:200])
        )
    return documents


def attach_xdm_package(
    draft: Draft,
    *,
    by: User,
    patient: xdm.Patient,
    type_code: str,
    attachment_ids: Collection[int] = (),
    uploads: Sequence[UploadedFile] = (),
) -> DraftAttachment:
    """Build IHE_XDM.ZIP about ``patient`` from files of the draft and uploads, into the draft.

    The package replaces the draft's previous one (one per message) and its X-MSS-INS /
    X-MSS-CODECDA headers are recorded for the sending. ``DraftError`` says why not, in
    French: the author is not an identified professional, no document, a file that is
    neither PDF nor CDA XML, or the message limits.
    """
    _authorise_draft(draft, by)
    professional = getattr(by, "professional", None)
    if professional is None:
        raise DraftError(_("Seul un professionnel identifié (RPPS) peut joindre des documents."))
    documents = _documents(draft, type_code, attachment_ids, uploads)
    package = xdm.build(
        documents,
        patient=patient,
        author=xdm.Author(professional.national_id, by.last_name, by.first_name),
        source_oid=f"2.25.{uuid.uuid5(uuid.NAMESPACE_DNS, draft.mailbox.domain.name).int}",
    )
    with transaction.atomic():
        for old in draft.files.filter(filename__iexact=xdm.FILENAME):
            remove_draft_attachment(old, by=by)
        attachment = add_draft_attachment(draft, xdm.FILENAME, "application/zip", package, by=by)
        set_draft_headers(draft, xdm.headers(patient, documents), by=by)
    return attachment
