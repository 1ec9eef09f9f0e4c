"""The demo's family (issue 17): Marie Durand's son Léo, a minor, and his space.

Léo has his own patient box (``<INS>@<PATIENT_DOMAIN>``) and no login; the demo staff
member linked Marie to him with a reason, so she switches to his space from hers. His
doctor wrote to him twice (a vaccination reminder, a sports certificate), through the
webmail's drafts as every demo message is. Idempotent: the child, the link and the
messages are made once; a link revoked in the admin is made again (the initial state).
"""

from __future__ import annotations

import contextlib
import io
import logging
from datetime import date, datetime, timedelta
from typing import Any
from unittest import mock

from django.db import transaction
from django.utils import timezone

from accounts.models import PatientIdentity, User
from mailboxes import services as mailbox_services
from mailboxes.models import Delivery, Mailbox
from mssante import demo
from mssante.lib.identifiers import INS_OID_DEMO, make_ins
from patients import family
from patients import services as patient_services
from patients.models_family import GuardianLink

CHILD = {
    "ins": make_ins(1, 2016, 9, "75", "056", 231),
    "birth_name": "DURAND",
    "first_names": "Léo Martin",
    "sex": "M",
    "birth_place": "75156",
}
BIRTH_DATE = date(2016, 9, 3)
REASON = "Démonstration : livret de famille présenté à l'accueil, mère de l'enfant."

# (days ago, hour, subject, text) from the demo doctor to Léo's box.
MESSAGES = [
    (
        6,
        "09:20",
        "Rappel de vaccination — Léo",
        "Bonjour,\n\nLe carnet de santé de Léo montre que son rappel diphtérie, tétanos, "
        "coqueluche et poliomyélite est à faire cette année. Vous pouvez prendre rendez-vous "
        "au cabinet ; apportez son carnet de santé.\n\nBien cordialement,\n\nDr Claire Martin",
    ),
    (
        2,
        "17:45",
        "Certificat pour le club de football",
        "Bonjour,\n\nVoici, comme convenu lors de la consultation, le certificat d'absence de "
        "contre-indication à la pratique du football en club pour Léo. Il est valable pour "
        "la saison.\n\nN'hésitez pas à me répondre si le club demande autre chose.\n\n"
        "Dr Claire Martin",
    ),
]


def seed(accounts: list[dict[str, Any]], *, mail: bool = True) -> GuardianLink:
    """Léo's space, Marie's link to it and (``mail``) his doctor's messages; once."""
    # Quietly, as the rest of the demo's mail: the logins stay readable on the console.
    logging.disable(logging.INFO)
    try:
        with contextlib.redirect_stdout(io.StringIO()):
            link = _child_and_link()
            if mail:
                _messages(link.child.user)
    finally:
        logging.disable(logging.NOTSET)
    return link


@transaction.atomic
def _child_and_link() -> GuardianLink:
    staff = User.objects.filter(username="admin", kind=User.Kind.STAFF).first()
    identity = PatientIdentity.objects.filter(ins=CHILD["ins"]).select_related("user").first()
    if identity is None:
        done = patient_services.provision_patient(
            ins=str(CHILD["ins"]),
            oid=INS_OID_DEMO,
            birth_name=str(CHILD["birth_name"]),
            first_names=str(CHILD["first_names"]),
            birth_date=BIRTH_DATE,
            sex=str(CHILD["sex"]),
            birth_place=str(CHILD["birth_place"]),
            qualified=True,
            by=staff,
            send_activation=False,  # no login of his own while he is a minor
        )
        identity = PatientIdentity.objects.get(user=done.user)
    mother = demo.patient_identity().user
    link = GuardianLink.objects.filter(guardian=mother, child=identity, ended_at=None).first()
    if link is None:
        link = family.provision_link(guardian=mother, child=identity, reason=REASON, by=staff)
    return link


def _messages(child: User) -> None:
    """Each message commits before the next (the pipeline delivers on commit)."""
    box = patient_services.patient_mailbox(child)
    doctor = demo.professional_identity("doctor").user
    doctor_box = Mailbox.objects.filter(owner=doctor, kind=Mailbox.Kind.PERSONAL).first()
    if box is None or doctor_box is None:
        return
    now = timezone.now()
    for rank, (days, clock, subject, text) in enumerate(MESSAGES):
        sent = Delivery.objects.filter(
            message__from_addr=doctor_box.address, recipient=box.address
        ).count()
        if sent > rank:
            continue
        hour, minute = (int(part) for part in clock.split(":"))
        at = timezone.localtime(now - timedelta(days=days)).replace(
            hour=hour, minute=minute, second=0, microsecond=0
        )
        _send(doctor, doctor_box, box, subject, text, min(at, now))


def _send(
    doctor: User, doctor_box: Mailbox, box: Mailbox, subject: str, text: str, at: datetime
) -> None:
    with mock.patch.object(timezone, "now", lambda: at):
        draft = mailbox_services.save_draft(
            mailbox=doctor_box,
            author=doctor,
            draft=None,
            to=[box.address],
            cc=[],
            subject=subject,
            text=text,
        )
        mailbox_services.send_draft(draft, by=doctor)
