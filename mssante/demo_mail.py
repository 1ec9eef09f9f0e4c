"""The living demo: mail in the demo boxes, sent through the doors real mail takes.

``seed_demo`` calls ``populate`` after ``demo.seed`` (the accounts). Nothing here inserts
a row: the lab's results go through the API service (``send_api_message``, with an
idempotency key each), the professionals write through the webmail's drafts
(``save_draft``, ``send_draft``), the patient answers through the patient space
(``patients.services.reply``), another operator's mail arrives through the SMTP gateway's
reception (``receive_message`` with the peer its TLS certificate proved), and the
antivirus quarantines the EICAR test file in the pipeline. So every feature works on
them: search, grouping by patient, the XDM reader, the timeline, the quarantine review.

The messages are dated over the last days: each is sent with the services' clock
(``django.utils.timezone.now``) set to its moment, so that its Date header, the
recipients' entries and the journal agree, as if it had been sent then.

Idempotent: an item already in the store is not sent again (an API idempotency key
already used, or as many messages already from that sender to that recipient); a
second ``make demo`` adds nothing and leaves what the user changed (read, moved).
"""

from __future__ import annotations

import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any
from unittest import mock
from xml.sax.saxutils import escape

from django.db import transaction
from django.utils import timezone

from accounts.models import User
from mailboxes import services as mailbox_services
from mailboxes.models import ApiToken, Delivery, Entry, IdempotencyRecord, Mailbox, Message
from mailboxes.services.inbound import ReceptionError, receive_message
from mailboxes.services.peer import Peer
from mssante import demo
from mssante.lib import mime, xdm
from mssante.lib.identifiers import INS_OID_DEMO, make_ins
from patients import demo_agenda, demo_documents
from patients import services as patient_services
from trust import listeblanche
from trust.models import ListedDomain
from trust.policy import PolicyError
from trust.scanning import EICAR

# --- Who ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Patient:
    key: str
    ins: str
    birth_name: str
    first_names: str
    birth_date: date
    sex: str

    @property
    def label(self) -> str:
        return f"{self.birth_name} {self.first_names.split()[0]}"

    @property
    def born(self) -> str:
        word = "née" if self.sex == "F" else "né"
        return f"{word} le {self.birth_date:%d/%m/%Y}"

    def xdm(self) -> xdm.Patient:
        return xdm.Patient(
            ins=self.ins,
            oid=INS_OID_DEMO,
            birth_name=self.birth_name,
            first_names=self.first_names,
            birth_date=f"{self.birth_date:%Y%m%d}",
            sex=self.sex,
        )


def _patients() -> dict[str, Patient]:
    marie = next(a for a in demo.ACCOUNTS if a.key == "patient")
    return {
        p.key: p
        for p in (
            # The demo patient (she logs in and answers her doctor).
            Patient(
                "durand",
                marie.identifier,
                marie.last_name.upper(),
                marie.extra["first_names"],
                marie.extra["birth_date"],
                "F",
            ),
            Patient(
                "lefebvre",
                make_ins(1, 1952, 3, "59", "350", 41),
                "LEFEBVRE",
                "Jean Pierre",
                date(1952, 3, 8),
                "M",
            ),
            Patient(
                "moreau",
                make_ins(2, 1978, 11, "69", "123", 207),
                "MOREAU",
                "Lucie",
                date(1978, 11, 23),
                "F",
            ),
            Patient(
                "garcia",
                make_ins(1, 1990, 6, "33", "063", 88),
                "GARCIA",
                "Antoine",
                date(1990, 6, 2),
                "M",
            ),
        )
    }


# Another operator of the trust space: a clinic, whose server's certificate the demo's
# liste blanche lists (imported only into an empty list: a real one is never replaced).
PEER_DOMAIN = "clinique-du-parc.mssante.fr"
PEER_DN = "CN=mx.operateur-voisin.fr,OU=987654321,O=Operateur Voisin,C=FR"
PEER_SUBJECT = (
    (("commonName", "mx.operateur-voisin.fr"),),
    (("organizationalUnitName", "987654321"),),
    (("organizationName", "Operateur Voisin"),),
    (("countryName", "FR"),),
)
LISTE_BLANCHE = f"""<?xml version="1.0" encoding="UTF-8"?>
<ListeBlancheMSSante xmlns="https://listeblanche.mssante.fr/schema">
  <DateDeGeneration>2026-01-05T08:00:00Z</DateDeGeneration>
  <ListeDomaines>
    <Domaine>
      <Nom>{PEER_DOMAIN}</Nom>
      <Description>Clinique du Parc (démonstration, autre opérateur)</Description>
      <DNCertificatOperateur>{PEER_DN}</DNCertificatOperateur>
      <ResponsableContact>01 00 00 00 00, responsable@operateur-voisin.fr</ResponsableContact>
      <SupportContact>01 00 00 00 01, support@operateur-voisin.fr</SupportContact>
      <DateMAJ>2026-01-05T08:00:00Z</DateMAJ>
    </Domaine>
  </ListeDomaines>
</ListeBlancheMSSante>
"""
CARDIOLOGIST = (
    "antoine.leroy@" + PEER_DOMAIN,
    "Dr Antoine Leroy",
    "81010000999",
    "LEROY",
    "Antoine",
)
CLINIC_DESK = (
    "secretariat.cardiologie@" + PEER_DOMAIN,
    "Secrétariat de cardiologie — Clinique du Parc",
)


# --- Documents ---------------------------------------------------------------------------


def _pdf(title: str, lines: list[str]) -> bytes:
    """A one-page PDF showing ``title`` and ``lines`` (Helvetica, WinAnsi), valid for readers."""

    def text(s: str) -> str:
        return s.replace("\\", "\\\\").replace("(", "\\(").replace(")", "\\)")

    ops = ["BT", "/F1 15 Tf", "56 770 Td", f"({text(title)}) Tj", "/F1 10 Tf", "15 TL", "T*"]
    ops += [f"({text(line)}) '" for line in lines]
    ops.append("ET")
    stream = "\n".join(ops).encode("cp1252", "replace")
    objects = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 595 842] "
        b"/Resources << /Font << /F1 4 0 R >> >> /Contents 5 0 R >>",
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica /Encoding /WinAnsiEncoding >>",
        b"<< /Length %d >>\nstream\n" % len(stream) + stream + b"\nendstream",
    ]
    out = bytearray(b"%PDF-1.4\n")
    offsets = []
    for n, body in enumerate(objects, start=1):
        offsets.append(len(out))
        out += b"%d 0 obj\n" % n + body + b"\nendobj\n"
    xref = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1)
    out += b"".join(b"%010d 00000 n \n" % o for o in offsets)
    out += b"trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (
        len(objects) + 1,
        xref,
    )
    return bytes(out)


def _cda(
    patient: Patient, type_code: str, title: str, sections: list[tuple[str, list[str]]]
) -> bytes:
    """A small CDA R2 document: what the reader shows is its titles and narrative."""
    body = "".join(
        "<component><section>"
        f"<title>{escape(name)}</title>"
        f"<text>{''.join(f'<paragraph>{escape(p)}</paragraph>' for p in paragraphs)}</text>"
        "</section></component>"
        for name, paragraphs in sections
    )
    return (
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        '<ClinicalDocument xmlns="urn:hl7-org:v3">'
        '<typeId root="2.16.840.1.113883.1.3" extension="POCD_HD000040"/>'
        f'<code code="{type_code}" codeSystem="{xdm.LOINC}"/>'
        f"<title>{escape(title)}</title>"
        "<recordTarget><patientRole>"
        f'<id root="{INS_OID_DEMO}" extension="{patient.ins}"/>'
        f"<patient><name><family>{escape(patient.birth_name)}</family>"
        f"<given>{escape(patient.first_names)}</given></name></patient>"
        "</patientRole></recordTarget>"
        f"<component><structuredBody>{body}</structuredBody></component>"
        "</ClinicalDocument>\n"
    ).encode()


def _package(
    patient: Patient, type_code: str, title: str, lines: list[str], author: xdm.Author, at: datetime
) -> mime.Attachment:
    """IHE_XDM.ZIP with the document as CDA and its PDF copy, about ``patient``."""
    section = "Résultats" if type_code == "11502-2" else "Synthèse"
    cda = _cda(patient, type_code, title, [(section, lines)])
    documents = [
        xdm.Document("compte-rendu.xml", "text/xml", cda, type_code, title),
        xdm.Document("compte-rendu.pdf", "application/pdf", _pdf(title, lines), type_code, title),
    ]
    data = xdm.build(
        documents, patient=patient.xdm(), author=author, source_oid="2.25.4242424242", now=at
    )
    return mime.Attachment(xdm.FILENAME, "application/zip", data)


# --- What happens, and when ------------------------------------------------------------


@dataclass(frozen=True)
class Result:
    patient: str
    when: When
    exam: str
    values: list[tuple[str, str, str, str]]  # analyte, value, reference, flag
    seen: bool = True
    flagged: bool = False
    to: str = "doctor"


When = Callable[[datetime], datetime]


def _day(days: int, clock: str) -> When:
    """``days`` ago at ``clock`` (local time): labs send in the morning, people by day."""
    hour, minute = (int(x) for x in clock.split(":"))

    def at(now: datetime) -> datetime:
        local = timezone.localtime(now) - timedelta(days=days)
        return local.replace(hour=hour, minute=minute)

    return at


def _ago(hours: float) -> When:
    """Today, ``hours`` before the seeding."""
    return lambda now: now - timedelta(hours=hours)


RESULTS = [
    Result(
        "durand",
        _day(6, "07:52"),
        "Bilan lipidique",
        [
            ("Cholestérol total", "2,45 g/L", "1,50 à 2,00", "élevé"),
            ("Cholestérol LDL", "1,68 g/L", "< 1,60", "élevé"),
            ("Cholestérol HDL", "0,52 g/L", "> 0,40", ""),
            ("Triglycérides", "1,25 g/L", "< 1,50", ""),
        ],
    ),
    Result(
        "lefebvre",
        _day(6, "11:05"),
        "INR (traitement par AVK)",
        [
            ("INR", "2,4", "cible 2,0 à 3,0", ""),
        ],
    ),
    Result(
        "durand",
        _day(5, "08:14"),
        "Numération formule sanguine",
        [
            ("Hémoglobine", "12,9 g/dL", "12,0 à 16,0", ""),
            ("Leucocytes", "6,8 G/L", "4,0 à 10,0", ""),
            ("Plaquettes", "265 G/L", "150 à 400", ""),
        ],
    ),
    Result("moreau", _day(4, "09:31"), "TSH", [("TSH", "6,2 mUI/L", "0,4 à 4,0", "élevé")]),
    Result(
        "lefebvre",
        _day(3, "07:48"),
        "INR (traitement par AVK)",
        [
            ("INR", "3,8", "cible 2,0 à 3,0", "élevé"),
        ],
        flagged=True,
    ),
    Result(
        "garcia",
        _day(3, "16:20"),
        "Sérologie de l'hépatite B",
        [
            ("Antigène HBs", "négatif", "négatif", ""),
            ("Anticorps anti-HBs", "145 mUI/mL", "> 10 : immunisé", ""),
        ],
    ),
    Result(
        "durand",
        _day(2, "08:03"),
        "Glycémie à jeun et HbA1c",
        [
            ("Glycémie à jeun", "0,98 g/L", "0,70 à 1,10", ""),
            ("Hémoglobine glyquée (HbA1c)", "5,6 %", "< 6,0", ""),
        ],
    ),
    Result(
        "lefebvre",
        _day(1, "07:41"),
        "INR (traitement par AVK)",
        [
            ("INR", "2,9", "cible 2,0 à 3,0", ""),
        ],
        seen=False,
    ),
    Result(
        "lefebvre",
        _day(1, "07:42"),
        "Créatinine et débit de filtration glomérulaire",
        [
            ("Créatinine", "11,2 mg/L", "7,0 à 12,0", ""),
            ("DFG (CKD-EPI)", "62 mL/min/1,73 m²", "> 60", ""),
        ],
        seen=False,
    ),
    Result(
        "garcia",
        _ago(5),
        "Protéine C réactive (CRP)",
        [
            ("CRP", "48 mg/L", "< 5", "élevé"),
        ],
        seen=False,
    ),
    Result("durand", _ago(3), "Ferritine", [("Ferritine", "18 µg/L", "15 à 150", "")], seen=False),
    Result(
        "moreau", _ago(1), "T4 libre", [("T4 libre", "10,8 pmol/L", "9,0 à 19,0", "")], seen=False
    ),
    # For the cardiology secretariat (unread: the team sorts it).
    Result(
        "garcia",
        _ago(2),
        "Troponine T hypersensible",
        [
            ("Troponine T hs", "9 ng/L", "< 14", ""),
        ],
        seen=False,
        to="cardiologie",
    ),
]


@dataclass
class World:
    """The demo's boxes and people, read once."""

    users: dict[str, User]
    boxes: dict[str, Mailbox]
    patients: dict[str, Patient]
    now: datetime


@dataclass(frozen=True)
class Step:
    """One message of the demo: when, between whom, and how to send it.

    ``run(rank)`` sends it unless the store already holds it and says whether it did;
    ``rank`` is how many earlier steps have the same ``pair`` (sender, recipient): the
    step is done when the store holds more messages of that pair than that.
    """

    at: datetime
    pair: tuple[str, str] | None
    run: Callable[[int], bool]


@contextmanager
def _clock(at: datetime) -> Iterator[None]:
    """The services run as if it were ``at`` (see the module's docstring)."""
    with mock.patch.object(timezone, "now", lambda: at):
        yield


def _sent(sender: str, recipient: str) -> int:
    """How many messages from ``sender`` to ``recipient`` the store holds."""
    return Delivery.objects.filter(message__from_addr=sender, recipient=recipient).count()


def _entry(box: Mailbox, message: Message) -> Entry:
    return Entry.objects.get(mailbox=box, message=message)


def _mark(box: Mailbox, message: Message, by: User, *, seen: bool, flagged: bool = False) -> None:
    entry = _entry(box, message)
    mailbox_services.set_flags([entry], by=by, seen=seen, flagged=flagged or None)


def _lab_steps(world: World) -> list[Step]:
    token = mailbox_services.find_token(demo.DEMO_API_TOKEN)
    assert token is not None, "demo.seed() creates the lab's API token"
    lab = world.boxes["laboratoire"]
    biologist = demo.professional_identity("pharmacist")
    author = xdm.Author(biologist.national_id, "BERNARD", "Sophie")
    steps: list[Step] = []
    for n, result in enumerate(RESULTS, start=1):
        at = result.when(world.now)
        steps.append(Step(at, None, _lab_step(world, token, lab, author, result, n, at)))
    return steps


def _lab_step(
    world: World,
    token: ApiToken,
    lab: Mailbox,
    author: xdm.Author,
    result: Result,
    n: int,
    at: datetime,
) -> Callable[[int], bool]:
    def run(_rank: int) -> bool:
        key = f"demo-resultat-{n:02d}"
        if IdempotencyRecord.objects.filter(token=token, key=key).exists():
            return False
        patient = world.patients[result.patient]
        to = world.boxes[result.to]
        sampled = timezone.localtime(at - timedelta(hours=2))
        lines = [
            f"{analyte} : {value}   (valeurs de référence : {ref})"
            + (f"   ▲ {flag}" if flag else "")
            for analyte, value, ref, flag in result.values
        ]
        header = [
            f"Patient : {patient.label}, {patient.born} (INS {patient.ins})",
            "Prescripteur : Dr Claire Martin",
            f"Prélèvement du {sampled:%d/%m/%Y} à {sampled:%H:%M}",
        ]
        text = "\n".join(
            [
                lab.display_name,
                "",
                *header,
                "",
                result.exam,
                *(f"  {line}" for line in lines),
                "",
                "Le compte rendu complet (PDF et CDA) est joint au format IHE XDM.",
                "Message envoyé automatiquement par le logiciel du laboratoire : "
                "pour toute question, appelez le laboratoire.",
            ]
        )
        package = _package(
            patient,
            "11502-2",
            f"{result.exam} — {patient.label}",
            [*header, "", *lines],
            author,
            at,
        )
        with _clock(at):
            answer = mailbox_services.send_api_message(
                token,
                to=[to.address],
                cc=[],
                subject=f"Résultats de biologie — {patient.label} — {result.exam}",
                text=text,
                html=None,
                attachments=[package],
                idempotency_key=key,
            )
            message = Message.objects.get(public_id=answer.body["id"])
            holder = world.users["doctor"]
            if result.seen or result.flagged:
                _mark(to, message, holder, seen=result.seen, flagged=result.flagged)
        return True

    return run


def _web(
    world: World,
    at: datetime,
    sender: str,
    by: str,
    to: str,
    subject: str,
    text: str,
    *,
    attachments: tuple[mime.Attachment, ...] = (),
    seen_by: str | None = None,
) -> Step:
    """A message written in the webmail (a draft, then Envoyer)."""
    box, recipient = world.boxes[sender], world.boxes[to]

    def run(rank: int) -> bool:
        if _sent(box.address, recipient.address) > rank:
            return False
        author = world.users[by]
        with _clock(at):
            draft = mailbox_services.save_draft(
                mailbox=box,
                author=author,
                draft=None,
                to=[recipient.address],
                cc=[],
                subject=subject,
                text=text,
            )
            for attachment in attachments:
                mailbox_services.add_draft_attachment(
                    draft, attachment.filename, attachment.content_type, attachment.data, by=author
                )
            message = mailbox_services.send_draft(draft, by=author)
            if seen_by is not None:
                _mark(recipient, message, world.users[seen_by], seen=True)
        return True

    return Step(at, (box.address, recipient.address), run)


def _inbound(
    world: World,
    at: datetime,
    sender: tuple[str, str],
    to: str,
    subject: str,
    text: str,
    *,
    attachments: tuple[mime.Attachment, ...] = (),
    headers: dict[str, str] | None = None,
    seen_by: str | None = None,
) -> Step:
    """A message another operator's server delivers to our SMTP gateway."""
    recipient = world.boxes[to]
    address, name = sender

    def run(rank: int) -> bool:
        if _sent(address, recipient.address) > rank:
            return False
        _, raw = mime.build_message(
            mime.OutgoingMessage(
                from_addr=address,
                from_name=name,
                to=[recipient.address],
                subject=subject,
                text=text,
                attachments=list(attachments),
                extra_headers={"X-MSS-NIL": "DEMO-CLINIQUE-1.0", **(headers or {})},
            ),
            domain=PEER_DOMAIN,
            now=at,
        )
        with _clock(at):
            message = receive_message(
                raw,
                address,
                [recipient.address],
                peer=Peer(PEER_SUBJECT, PEER_DOMAIN),
                label=f"mx.operateur-voisin.fr ({PEER_DOMAIN})",
            )
            if seen_by is not None:
                _mark(recipient, message, world.users[seen_by], seen=True)
        return True

    return Step(at, (address, recipient.address), run)


def _patient_reply(world: World, at: datetime, text: str) -> Step:
    doctor, marie = world.boxes["doctor"], world.boxes["patient"]

    def run(rank: int) -> bool:
        if _sent(marie.address, doctor.address) > rank:
            return False
        delivery = (
            Delivery.objects.filter(message__from_addr=doctor.address, recipient=marie.address)
            .select_related("message")
            .order_by("pk")
            .first()
        )
        if (
            delivery is None
            or not Entry.objects.filter(mailbox=marie, message_id=delivery.message_id).exists()
        ):
            return False  # her doctor's message was refused: nothing to answer
        parent, patient = delivery.message, world.users["patient"]
        with _clock(at):
            # She read her doctor's message before answering it.
            _mark(marie, parent, patient, seen=True)
            patient_services.reply(mailbox=marie, author=patient, parent=parent, text=text)
        return True

    return Step(at, (marie.address, doctor.address), run)


def _appointment(world: World) -> Step:
    """Mon agenda: Dr Martin invites the demo patient to a follow-up (not answered yet)."""
    doctor, marie = world.boxes["doctor"], world.boxes["patient"]
    at = demo_agenda.start(world.now)
    return _web(
        world,
        _ago(2)(world.now),
        "doctor",
        "doctor",
        "patient",
        demo_agenda.SUBJECT.format(when=f"{at:%d/%m} à {at:%H:%M}"),
        demo_agenda.TEXT,
        attachments=(
            demo_agenda.attachment(
                organizer=doctor.address,
                organizer_name="Dr Claire Martin",
                attendee=marie.address,
                at=at,
            ),
        ),
    )


def _steps(world: World) -> list[Step]:
    now, patients = world.now, world.patients
    lefebvre, durand = patients["lefebvre"], patients["durand"]
    leroy = xdm.Author(CARDIOLOGIST[2], CARDIOLOGIST[3], CARDIOLOGIST[4])
    letter_at = _day(4, "17:10")(now)
    letter_lines = [
        f"Patient : {lefebvre.label}, {lefebvre.born}",
        "Hospitalisé du 24/11 au 01/12 en cardiologie, Clinique du Parc.",
        "Motif : fibrillation atriale paroxystique révélée par des palpitations.",
        "Échocardiographie : fonction ventriculaire gauche conservée (FEVG 58 %).",
        "Traitement de sortie : fluindione 20 mg le soir (INR cible 2 à 3), bisoprolol 2,5 mg.",
        "Suivi : INR deux fois par semaine jusqu'à stabilisation, consultation dans 6 semaines.",
    ]
    steps: list[Step] = [
        *_lab_steps(world),
        _inbound(
            world,
            letter_at,
            (CARDIOLOGIST[0], CARDIOLOGIST[1]),
            "doctor",
            f"Lettre de liaison de sortie — {lefebvre.label}",
            "Chère consœur,\n\n"
            f"Votre patient {lefebvre.label} ({lefebvre.born}) est sorti hier de notre service "
            "après une hospitalisation pour une fibrillation atriale paroxystique. Vous "
            "trouverez ci-joint la lettre de liaison (format IHE XDM, à verser à son dossier).\n\n"
            "Il reprend un traitement par AVK : merci de suivre son INR deux fois par semaine "
            "jusqu'à stabilisation.\n\nBien confraternellement,\n\nDr Antoine Leroy\n"
            "Cardiologue, Clinique du Parc",
            attachments=(
                _package(
                    lefebvre,
                    "11490-0",
                    "Lettre de liaison à la sortie",
                    letter_lines,
                    leroy,
                    letter_at,
                ),
            ),
            headers=xdm.headers(lefebvre.xdm(), [xdm.Document("", "", b"", "11490-0")]),
            seen_by="doctor",
        ),
        _web(
            world,
            _day(2, "18:25")(now),
            "doctor",
            "doctor",
            "patient",
            "Vos résultats de bilan sanguin",
            f"Bonjour Madame {durand.birth_name.title()},\n\n"
            "J'ai reçu vos derniers résultats : la numération et la glycémie sont normales. "
            "Le cholestérol LDL est un peu élevé (1,68 g/L) : je vous propose trois mois "
            "d'efforts sur l'alimentation et l'activité physique avant d'en reparler.\n\n"
            "Pouvez-vous me dire si vous avez pu reprendre la marche, comme nous l'avions "
            "évoqué ?\n\nBien cordialement,\n\nDr Claire Martin",
        ),
        _patient_reply(
            world,
            _day(1, "07:12")(now),
            "Bonjour Docteur,\n\nMerci pour ces nouvelles. Oui, je marche trente minutes "
            "presque tous les jours depuis trois semaines, et j'ai réduit la charcuterie.\n\n"
            "Faut-il refaire une prise de sang avant le prochain rendez-vous ?\n\n"
            "Bonne journée,\nMarie Durand",
        ),
        _appointment(world),
        _web(
            world,
            _day(1, "13:40")(now),
            "nurse",
            "nurse",
            "cardiologie",
            f"Demande de consultation — {lefebvre.label}",
            "Bonjour,\n\n"
            f"Je passe deux fois par semaine chez {lefebvre.label} pour ses INR depuis sa "
            "sortie de la Clinique du Parc. Il se plaint de nouveau de palpitations le soir.\n\n"
            "Pourriez-vous lui proposer une consultation de cardiologie dans les prochaines "
            "semaines ?\n\nMerci,\nJulien Dupont, infirmier",
        ),
        _inbound(
            world,
            _day(1, "10:05")(now),
            CLINIC_DESK,
            "doctor",
            f"Rendez-vous de contrôle — {lefebvre.label}",
            "Bonjour Docteur,\n\n"
            f"Le Dr Leroy reverra {lefebvre.label} en consultation le 12 janvier à 10 h 30. "
            "Merci de nous transmettre ses derniers INR avant cette date.\n\n"
            "Cordialement,\nLe secrétariat de cardiologie — Clinique du Parc",
        ),
        _inbound(
            world,
            _day(1, "15:32")(now),
            CLINIC_DESK,
            "cardiologie",
            f"Demande d'avis — {patients['moreau'].label}",
            "Bonjour,\n\n"
            f"Nous adressons {patients['moreau'].label} ({patients['moreau'].born}) pour un "
            "avis sur des palpitations associées à une TSH élevée. Pouvez-vous nous indiquer "
            "un délai de rendez-vous ?\n\nCordialement,\n"
            "Le secrétariat de cardiologie — Clinique du Parc",
        ),
        _web(
            world,
            _day(1, "11:50")(now),
            "pharmacist",
            "pharmacist",
            "cardiologie",
            "Question sur une ordonnance de fluindione",
            "Bonjour,\n\nUne ordonnance de sortie de votre service prescrit fluindione "
            "20 mg et amiodarone : pouvez-vous confirmer l'association et la surveillance "
            "de l'INR prévue ?\n\nMerci,\nSophie Bernard, pharmacienne",
        ),
        # The antivirus at work: held in quarantine, the doctor told, staff to decide.
        _web(
            world,
            _day(1, "17:55")(now),
            "doctor",
            "doctor",
            "nurse",
            "Essai de l'antivirus (fichier de test EICAR)",
            "Bonjour Julien,\n\nCe message porte le fichier de test EICAR, que tout "
            "antivirus reconnaît : il doit être retenu en quarantaine et ne jamais vous "
            "parvenir.\n\nClaire",
            attachments=(mime.Attachment("essai-antivirus.txt", "text/plain", EICAR),),
        ),
    ]
    return steps


# --- Entry point ---------------------------------------------------------------------------


def _liste_blanche() -> None:
    """The demo peer on the liste blanche, unless a liste blanche was already imported."""
    if ListedDomain.objects.exists():
        return
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "listeblanche-demo.xml"
        path.write_text(LISTE_BLANCHE, encoding="utf-8")
        listeblanche.import_liste_blanche(str(path))


def _world(accounts: list[dict[str, Any]]) -> World:
    by_key = {a["key"]: a for a in accounts}
    users = {key: demo.professional_identity(key).user for key in ("doctor", "nurse", "pharmacist")}
    users["patient"] = demo.patient_identity().user
    boxes = {
        key: Mailbox.objects.get(address=by_key[key]["mailboxes"][0])
        for key in ("doctor", "nurse", "pharmacist", "patient")
    }
    for spec in demo.SHARED:
        boxes[spec["key"]] = Mailbox.objects.get(address=spec["address"])
    now = timezone.now().replace(second=0, microsecond=0)
    return World(users=users, boxes=boxes, patients=_patients(), now=now)


@dataclass(frozen=True)
class Outcome:
    """What ``populate`` did: how many messages it sent, and why it sent none of the others."""

    sent: int
    refused: list[str]


# What a service says when it refuses a message (a box the user closed in the demo…).
REFUSALS = (
    mailbox_services.SubmissionError,
    mailbox_services.DraftError,
    ReceptionError,
    PolicyError,
)


def populate(accounts: list[dict[str, Any]]) -> Outcome:
    """Send the demo's mail through the services, once; a refused message is skipped.

    Each message must commit before the next (the patient answers what she received, the
    pipeline delivers on commit): not inside a transaction.
    """
    if transaction.get_connection().in_atomic_block:
        raise RuntimeError("the demo's mail is sent outside any transaction (each one commits)")
    _liste_blanche()
    world = _world(accounts)
    sent, refused = 0, []
    ranks: dict[tuple[str, str], int] = {}
    for step in sorted(_steps(world), key=lambda step: step.at):
        rank = ranks.get(step.pair, 0) if step.pair else 0
        if step.pair:
            ranks[step.pair] = rank + 1
        try:
            sent += step.run(rank)
        except REFUSALS as exc:
            refused.append(str(exc))
    sent += demo_documents.seed_demo_documents(
        doctor=world.users["doctor"],
        doctor_box=world.boxes["doctor"],
        patient=world.users["patient"],
        patient_box=world.boxes["patient"],
        pdf=_pdf,
    )
    return Outcome(sent, refused)
