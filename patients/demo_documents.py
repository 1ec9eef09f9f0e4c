"""Mes documents in the demo: what the demo patient finds filed in her space.

Called once from the demo's mail (``mssante.demo_mail.populate``) after the rest of the
demo mail is sent: her doctor sends her a consultation report, her blood test and imaging
results (IHE XDM) and a prescription, through the ordinary submission (filed by the
delivery, as any message); and she has added a scanned prescription of her own.
Idempotent: run twice, it finds both and does nothing.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from html import escape

from django.utils import timezone

from accounts.models import PatientIdentity, ProfessionalIdentity, User
from mailboxes import services as mailbox_services
from mailboxes.models import Delivery, Mailbox
from mssante.lib import mime, xdm
from patients import services_documents
from patients.models_documents import PatientDocument

SUBJECT = "Vos documents de consultation"
SCANNED = "Ordonnance de l'ophtalmologiste (scan)"


def _cda(identity: PatientIdentity, type_code: str, lines: list[str]) -> bytes:
    """A CDA document with one section per "Name : value" line (read as text in the page)."""
    sections = "".join(
        f"<component><section><title>{escape(name)}</title><text>{escape(value)}</text>"
        "</section></component>"
        for name, _sep, value in (line.partition(" : ") for line in lines)
    )
    return (
        "<?xml version='1.0' encoding='UTF-8'?>"
        "<ClinicalDocument xmlns='urn:hl7-org:v3'>"
        f"<code code='{type_code}' codeSystem='{xdm.LOINC}'/>"
        "<recordTarget><patientRole>"
        f"<id root='{identity.oid}' extension='{identity.ins}'/>"
        "</patientRole></recordTarget>"
        f"<component><structuredBody>{sections}</structuredBody></component>"
        "</ClinicalDocument>"
    ).encode()


def seed_demo_documents(
    *,
    doctor: User,
    doctor_box: Mailbox,
    patient: User,
    patient_box: Mailbox,
    pdf: Callable[[str, list[str]], bytes],
) -> int:
    """The demo patient's documents (``pdf(title, lines)`` draws a page); messages sent."""
    sent = 0
    if not _already_sent(doctor_box, patient_box):
        _send(doctor, doctor_box, patient, patient_box, pdf)
        sent = 1
    else:
        services_documents.file_received_documents(patient_box.pk)
    if not PatientDocument.objects.filter(
        patient=patient, source=PatientDocument.Source.ADDED
    ).exists():
        services_documents.add_document(
            patient,
            services_documents.Upload(
                filename="ordonnance-ophtalmologie.pdf",
                data=pdf(
                    SCANNED,
                    [
                        "Dr Hélène Petit, ophtalmologiste",
                        "Verres correcteurs : OD -1,25 ; OG -1,00",
                        "Renouvellement possible pendant 3 ans.",
                    ],
                ),
                family=PatientDocument.Family.PRESCRIPTION,
                title=SCANNED,
                document_date=(timezone.now() - timedelta(days=40)).date(),
            ),
            by=patient,
        )
    return sent


def _already_sent(doctor_box: Mailbox, patient_box: Mailbox) -> bool:
    deliveries = Delivery.objects.select_related("message").filter(
        mailbox=patient_box, message__sender_mailbox=doctor_box
    )
    # Subjects are sealed: compared in Python over the few messages of this pair.
    return any(d.message.subject == SUBJECT for d in deliveries)


def _send(
    doctor: User,
    doctor_box: Mailbox,
    patient: User,
    patient_box: Mailbox,
    pdf: Callable[[str, list[str]], bytes],
) -> None:
    identity = PatientIdentity.objects.get(user=patient)
    at = timezone.now() - timedelta(days=7)
    name = f"{identity.first_names.split()[0]} {identity.birth_name}"
    report = [
        f"Patiente : {name}",
        "Motif : bilan annuel, essoufflement à l'effort.",
        "Examen clinique normal, tension 128/80.",
        "Conduite à tenir : bilan sanguin, radiographie thoracique, marche quotidienne.",
    ]
    results = [
        "Cholestérol LDL : 1,68 g/L (valeurs de référence < 1,60)",
        "Glycémie à jeun : 0,92 g/L (0,70 - 1,10)",
        "Hémoglobine : 13,4 g/dL (12,0 - 16,0)",
    ]
    imaging = [
        "Radiographie thoracique de face.",
        "Pas d'anomalie pleuro-parenchymateuse. Silhouette cardiaque normale.",
    ]
    documents = [
        xdm.Document(
            "consultation.pdf",
            "application/pdf",
            pdf("Compte rendu de consultation", report),
            "11488-4",
            "Compte rendu de consultation",
        ),
        xdm.Document(
            "bilan.xml",
            "text/xml",
            _cda(identity, "11502-2", results),
            "11502-2",
            "Bilan sanguin",
        ),
        xdm.Document(
            "radio.pdf",
            "application/pdf",
            pdf("Radiographie thoracique", imaging),
            "18748-4",
            "Radiographie thoracique",
        ),
    ]
    author = xdm.Author(
        ProfessionalIdentity.objects.get(user=doctor).national_id,
        doctor.last_name.upper(),
        doctor.first_name,
    )
    package = xdm.build(
        documents,
        patient=xdm.Patient(
            ins=identity.ins,
            oid=identity.oid,
            birth_name=identity.birth_name,
            first_names=identity.first_names,
            birth_date=f"{identity.birth_date:%Y%m%d}",
            sex=identity.sex,
            qualified=identity.qualified,
        ),
        author=author,
        source_oid="2.25.4242424242",
        now=at,
    )
    prescription = pdf(
        "Ordonnance",
        [
            f"Pour : {name}",
            "Bilan sanguin à renouveler dans 3 mois : bilan lipidique, glycémie à jeun.",
        ],
    )
    mailbox_services.submit_message(
        mailbox=doctor_box,
        author=doctor,
        to=[patient_box.address],
        cc=[],
        subject=SUBJECT,
        text=(
            "Bonjour Madame,\n\nVous trouverez ci-joint le compte rendu de notre consultation, "
            "vos résultats de bilan sanguin et de radiographie, ainsi que l'ordonnance pour "
            "le prochain bilan.\n\nBien cordialement,\n\n"
            f"Dr {doctor.first_name} {doctor.last_name}"
        ),
        attachments=[
            mime.Attachment(xdm.FILENAME, "application/zip", package),
            mime.Attachment("ordonnance.pdf", "application/pdf", prescription),
        ],
        extra_headers=xdm.headers(
            xdm.Patient(ins=identity.ins, oid=identity.oid, qualified=identity.qualified),
            documents,
        ),
    )
