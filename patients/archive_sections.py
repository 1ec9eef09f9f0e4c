"""The documents and the agenda in the « Mes données » archive (``patients.archive``).

Imported by ``PatientsConfig.ready``: each adds its section after the messages and the
exchanges, under its own folder, in open formats (the files themselves and CSV; iCalendar).
"""

from __future__ import annotations

import re

from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from mailboxes.blobs import BlobStoreUnavailable
from patients import selectors_agenda, services_agenda, services_documents
from patients.archive import ArchiveContext, add_archive_section
from patients.models_documents import PatientDocument

_UNSAFE = re.compile(r"[^\w.\- ]+")


def _stamp(value: object) -> str:
    return timezone.localtime(value).isoformat(timespec="seconds") if value else ""  # type: ignore[arg-type]


def _member(number: int, filename: str) -> str:
    """A file name safe in any archive tool: numbered (names repeat), no path, bounded."""
    name = _UNSAFE.sub("_", filename.replace("/", "_").replace("\\", "_")).strip(" ._")
    return f"documents/{number:04d}-{name[:100] or 'document'}"


def write_documents(ctx: ArchiveContext) -> None:
    """Every document of « Mes documents » (hidden ones too, marked), and an index."""
    rows = []
    documents = PatientDocument.objects.filter(patient=ctx.patient).order_by("document_date", "pk")
    for number, document in enumerate(documents, start=1):
        member = _member(number, document.filename)
        try:
            found = services_documents.read_document(document)
        except (services_documents.DocumentUnavailable, BlobStoreUnavailable):
            member = ""
        else:
            ctx.zip.writestr(member, found.data)
        rows.append(
            [
                _stamp(document.document_date),
                document.get_family_display(),
                document.title,
                document.author,
                document.get_source_display(),
                _("oui") if document.hidden_at else _("non"),
                member.removeprefix("documents/") or _("illisible, non joint"),
            ]
        )
    ctx.write_csv(
        "documents/index.csv",
        ["date", "type", "titre", "auteur", "origine", "masque", "fichier"],
        rows,
    )


def write_agenda(ctx: ArchiveContext) -> None:
    """The appointments as one iCalendar file, and a table of them with the answers."""
    appointments = selectors_agenda.appointments(ctx.box)
    ctx.zip.writestr("agenda/agenda.ics", services_agenda.calendar_of(appointments))
    ctx.write_csv(
        "agenda/index.csv",
        ["debut", "fin", "objet", "lieu", "organisateur", "reponse", "annule"],
        [
            [
                _stamp(a.start),
                _stamp(a.end),
                a.summary,
                a.location,
                a.organizer_address,
                a.get_answer_display(),
                _("oui") if a.cancelled else _("non"),
            ]
            for a in appointments
        ],
    )


add_archive_section(
    "documents",
    write_documents,
    readme=gettext_lazy(
        "documents/ : « Mes documents », chaque document tel que vous l'avez reçu ou ajouté "
        "(y compris ceux que vous avez masqués), et index.csv qui en donne la date, le type, "
        "le titre, l'auteur et l'origine."
    ),
)
add_archive_section(
    "agenda",
    write_agenda,
    readme=gettext_lazy(
        "agenda/ : « Mon agenda », agenda.ics (à importer dans tout agenda) et index.csv "
        "(début, fin, objet, lieu, professionnel, votre réponse)."
    ),
)
