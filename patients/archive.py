"""« Mes données » : everything of the patient's space as one ZIP archive in open formats.

The archive is written into a temporary file (``zipfile`` streams each member to it),
then served from that file: memory stays bounded whatever the size of the box. Each part
of the space adds its files through a *section*: a function given the open archive and
whose space it is. This module writes the messages (one ``.eml`` each, as received, and
an index in JSON and CSV) and the exchanges log (CSV); the documents and the agenda plug
in their own sections from their ``AppConfig.ready`` or module import::

    from patients.archive import add_archive_section
    add_archive_section("agenda", write_agenda, readme=gettext_lazy("agenda/ : …"))

A section writes only under its own folder (``<name>/``) and never health content into
logs or the journal; the download itself is journaled once (``patient.archive_downloaded``).
"""

from __future__ import annotations

import csv
import io
import json
import tempfile
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from typing import IO, Any

from django.conf import settings
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from accounts.models import User
from audit import journal
from mailboxes import services as mailbox_services
from mailboxes.models import Entry, Mailbox, Message
from mailboxes.services import quarantine
from mssante.lib import crypto
from patients import connected_services, selectors

#: Temporary files stay in memory up to this size, then go to disk.
SPOOL_BYTES = 1024 * 1024


@dataclass
class ArchiveContext:
    """What a section gets: the open archive, whose space it is, and CSV/JSON helpers."""

    zip: zipfile.ZipFile
    patient: User
    box: Mailbox | None
    by: User

    def write_text(self, name: str, text: str) -> None:
        self.zip.writestr(name, text.encode("utf-8"))

    def write_json(self, name: str, data: Any) -> None:
        self.write_text(name, json.dumps(data, ensure_ascii=False, indent=2, default=str))

    def write_csv(self, name: str, header: list[str], rows: list[list[Any]]) -> None:
        out = io.StringIO()
        # ";" and a BOM: a French spreadsheet opens it as it is; quoting keeps it RFC 4180.
        writer = csv.writer(out, delimiter=";", quoting=csv.QUOTE_MINIMAL)
        writer.writerow(header)
        writer.writerows(rows)
        self.zip.writestr(name, ("\ufeff" + out.getvalue()).encode("utf-8"))


Writer = Callable[[ArchiveContext], None]


@dataclass(frozen=True)
class Section:
    name: str
    writer: Writer
    readme: object  # a (lazy) French sentence


_sections: dict[str, Section] = {}


def add_archive_section(name: str, writer: Writer, *, readme: object = "") -> None:
    """Add (or replace) the section ``name``; ``readme`` is its line in README.txt (French)."""
    _sections[name] = Section(name, writer, readme)


def sections() -> tuple[Section, ...]:
    return tuple(_sections.values())


# --- The sections of this module ---------------------------------------------------------


def _stamp(value: Any) -> str:
    return timezone.localtime(value).isoformat(timespec="seconds") if value else ""


def _direction(message: Message, box: Mailbox) -> str:
    return _("envoyé") if message.sender_mailbox_id == box.pk else _("reçu")


def _held_ids(entries: list[Entry]) -> set[int]:
    infected = [
        e.message_id for e in entries if e.message.scan_status == Message.ScanStatus.INFECTED
    ]
    if not infected:
        return set()
    return set(infected) - set(quarantine.released_ids(infected))


def write_messages(ctx: ArchiveContext) -> None:
    """messages/: one .eml per message of the box (as received), index.json and index.csv."""
    box = ctx.box
    if box is None:
        ctx.write_json("messages/index.json", [])
        return
    entries = list(
        Entry.objects.select_related("message").filter(mailbox=box).order_by("message__date", "pk")
    )
    held = _held_ids(entries)
    index: list[dict[str, Any]] = []
    for n, entry in enumerate(entries, start=1):
        m = entry.message
        filename = ""
        unreadable = False
        if m.pk not in held:
            try:
                # One message in memory at a time (bounded by the store's size limit).
                raw = mailbox_services.read_raw(m)
            except crypto.BlobIntegrityError:
                # Logged by read_raw; the rest of the archive is still the patient's.
                unreadable = True
            else:
                filename = f"messages/{n:05d}-{timezone.localtime(m.date):%Y%m%d-%H%M}.eml"
                ctx.zip.writestr(filename, raw)
        index.append(
            {
                "numero": n,
                "fichier": filename,
                "retenu_par_antivirus": m.pk in held,
                "illisible": unreadable,
                "date": _stamp(m.date),
                "sens": _direction(m, box),
                "de": m.from_addr,
                "nom": m.from_name,
                "a": list(m.to_addrs or []),
                "copie": list(m.cc_addrs or []),
                "objet": m.subject,
                "message_id": m.message_id,
                "lu": entry.seen,
                "pieces_jointes": [
                    {"nom": str(a.get("filename", "")), "type": str(a.get("content_type", ""))}
                    for a in (m.attachments or [])
                    if isinstance(a, dict)
                ],
            }
        )
    ctx.write_json("messages/index.json", index)
    ctx.write_csv(
        "messages/index.csv",
        ["numero", "fichier", "date", "sens", "de", "a", "objet", "pieces_jointes"],
        [
            [
                i["numero"],
                i["fichier"] or (_("illisible") if i["illisible"] else _("retenu par l'antivirus")),
                i["date"],
                i["sens"],
                i["de"],
                ", ".join(i["a"] + i["copie"]),
                i["objet"],
                ", ".join(p["nom"] for p in i["pieces_jointes"]),
            ]
            for i in index
        ],
    )


def write_exchanges(ctx: ArchiveContext) -> None:
    """echanges/: "Mes échanges de données" as CSV, with the connected services' history."""
    rows = []
    for x in selectors.exchanges(ctx.patient, ctx.box):
        m = x.message
        if x.sent_by_patient:
            kind = _("Vous avez répondu")
        elif x.received:
            kind = _("Message reçu")
        else:
            kind = _("Échange entre professionnels")
        rows.append(
            [
                _stamp(m.date),
                kind,
                m.from_addr,
                ", ".join(x.recipients),
                m.subject if (x.received or x.sent_by_patient) else "",
                ", ".join(f"{d['filename']} ({d['content_type']})" for d in x.documents),
            ]
        )
    ctx.write_csv(
        "echanges/echanges.csv", ["date", "echange", "de", "a", "objet", "documents"], rows
    )
    ctx.write_csv(
        "echanges/services-connectes.csv",
        ["date", "service", "adresse", "choix"],
        [
            [
                _stamp(c.at),
                c.service.display_name,
                c.service.address,
                _("autorisé") if c.allowed else _("retiré"),
            ]
            for c in connected_services.changes(ctx.box)
        ],
    )


add_archive_section(
    "messages",
    write_messages,
    readme=gettext_lazy(
        "messages/ : chaque message de votre espace, tel qu'il a été reçu ou envoyé, au "
        "format .eml (ouvrable par tout logiciel de messagerie), avec ses pièces jointes ; "
        "index.json et index.csv en donnent la liste (date, expéditeur, objet, documents). "
        "Un message retenu par l'antivirus n'est pas joint : l'index le signale."
    ),
)
add_archive_section(
    "echanges",
    write_exchanges,
    readme=gettext_lazy(
        "echanges/ : « Mes échanges de données » (echanges.csv : qui a échangé quel type "
        "de document à votre sujet, et quand) et vos choix de services connectés "
        "(services-connectes.csv)."
    ),
)


# --- The archive --------------------------------------------------------------------------


def _readme(ctx: ArchiveContext) -> str:
    lines = [
        _("Votre espace santé — archive de vos données"),
        "",
        _("Titulaire : %(name)s") % {"name": ctx.patient.get_full_name() or ctx.patient.username},
        _("Préparée le : %(date)s") % {"date": _stamp(timezone.now())},
        _("Opérateur : %(operator)s") % {"operator": settings.OPERATOR_NAME},
        "",
        _(
            "Cette archive contient tout ce que votre espace conserve, dans des formats "
            "ouverts (EML, JSON, CSV en UTF-8 séparé par des points-virgules) :"
        ),
        "",
    ]
    lines += [f"- {s.readme}" for s in sections() if str(s.readme)]
    lines += [
        "",
        _(
            "Ces données sont des données de santé : conservez cette archive en lieu sûr "
            "et ne la transmettez qu'à des personnes de confiance."
        ),
        "",
    ]
    return "\n".join(lines)


def build_archive(patient: User, *, by: User, request: Any = None) -> IO[bytes]:
    """The patient's archive as a temporary file positioned at its start (journaled)."""
    box = selectors.patient_box(patient)
    out = tempfile.SpooledTemporaryFile(max_size=SPOOL_BYTES)  # noqa: SIM115 - the caller closes
    with zipfile.ZipFile(out, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        ctx = ArchiveContext(zip=archive, patient=patient, box=box, by=by)
        for section in sections():
            section.writer(ctx)
        ctx.write_text("README.txt", _readme(ctx))
    journal.record(
        "patient.archive_downloaded",
        actor=by,
        obj=box if box is not None else patient,
        request=request,
        sections=[s.name for s in sections()],
    )
    out.seek(0)
    return out
