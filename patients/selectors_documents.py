"""Reads of "Mes documents", always inside the acting patient's own documents.

A received document is shown while its message is in the patient's box outside the
Trash (as the inbox shows it) and not held by the antivirus; a document of a message
put in the Trash, or purged, is neither listed nor handed out.
"""

from __future__ import annotations

import unicodedata
from dataclasses import dataclass

from django.http import Http404

from accounts.models import User
from mailboxes.models import Entry, Folder, Mailbox, Message
from mailboxes.services import quarantine
from patients.models_documents import PatientDocument

# The most documents read for one list: the list is searched in Python (sealed titles).
MAX_LISTED = 1000


def _fold(text: str) -> str:
    decomposed = unicodedata.normalize("NFKD", text or "")
    return "".join(c for c in decomposed if not unicodedata.combining(c)).casefold()


def _reachable_message_ids(user: User, message_ids: set[int]) -> set[int]:
    """Of these messages, those in the patient's box outside the Trash and not held."""
    if not message_ids:
        return set()
    rows = list(
        Entry.objects.filter(
            mailbox__owner=user,
            mailbox__kind=Mailbox.Kind.PATIENT,
            message_id__in=message_ids,
        )
        .exclude(folder__role=Folder.Role.TRASH)
        .values_list("message_id", "message__scan_status")
    )
    infected = [pk for pk, status in rows if status == Message.ScanStatus.INFECTED]
    released = quarantine.released_ids(infected)
    return {pk for pk, status in rows if status != Message.ScanStatus.INFECTED or pk in released}


def _visible(user: User, documents: list[PatientDocument]) -> list[PatientDocument]:
    reachable = _reachable_message_ids(
        user, {d.message_id for d in documents if d.message_id is not None}
    )
    return [
        d
        for d in documents
        if d.source == PatientDocument.Source.ADDED or d.message_id in reachable
    ]


@dataclass
class DocumentList:
    documents: list[PatientDocument]
    hidden_count: int
    counts: dict[str, int]  # shown documents by family (before the family filter)


def documents(
    user: User, *, family: str = "", query: str = "", hidden: bool = False
) -> DocumentList:
    """The patient's documents, newest first: the shown ones, or the hidden ones."""
    rows = list(
        PatientDocument.objects.filter(patient=user)
        .defer("wrapped_key")
        .order_by("-document_date", "-pk")[:MAX_LISTED]
    )
    rows = _visible(user, rows)
    hidden_count = sum(1 for d in rows if d.hidden)
    rows = [d for d in rows if d.hidden == hidden]
    counts: dict[str, int] = {}
    for d in rows:
        counts[d.family] = counts.get(d.family, 0) + 1
    if family:
        rows = [d for d in rows if d.family == family]
    words = _fold(query).split()
    if words:
        rows = [d for d in rows if all(w in _haystack(d) for w in words)]
    return DocumentList(rows, hidden_count, counts)


def _haystack(d: PatientDocument) -> str:
    return _fold(" ".join([d.title, d.filename, d.author, str(d.get_family_display())]))


def get_document(user: User, document_id: int) -> PatientDocument:
    """One of the patient's own documents that is still reachable, or 404."""
    document = (
        PatientDocument.objects.select_related("message")
        .filter(pk=document_id, patient=user)
        .first()
    )
    if document is None or not _visible(user, [document]):
        raise Http404
    return document
