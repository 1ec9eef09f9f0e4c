"""Closing the patient's space at their request (« Mes données » → « Fermer mon espace »).

Closing goes through the actions that own the tables: ``accounts.services.close_account``
closes the account (sign-in refused, with its reason) and, through the ``account_closed``
signal, ``mailboxes`` closes the patient's box (professionals who write get the closed
box refusal; the box leaves nothing in the directory). Nothing is deleted at once: the
retention rules in docs/decisions.md ("Mes données : archive et fermeture de l'espace").
"""

from __future__ import annotations

import functools
from datetime import datetime, timedelta

from django.conf import settings
from django.db import transaction
from django.db.models import Exists, OuterRef
from django.http import HttpRequest
from django.utils import timezone
from django.utils.translation import gettext as _

from accounts import services as account_services
from accounts.models import User
from audit import journal
from mailboxes import blobs
from mailboxes import services as mailbox_services
from mailboxes.models import Entry, Mailbox
from mailboxes.services.errors import MailboxError
from patients import selectors
from patients.models import NotificationPreference
from patients.models_agenda import Appointment
from patients.models_documents import FiledMessage, PatientDocument
from patients.models_services import ServiceChange, ServiceRevocation
from patients.services import PatientError


@transaction.atomic(durable=True)
def close_space(patient: User, *, by: User, request: HttpRequest | None = None) -> None:
    """Close the patient's account and box for good, as they asked (journaled)."""
    if not patient.is_patient:
        raise PatientError(_("Ce compte n'est pas celui d'un patient."))
    if patient.status == User.Status.CLOSED:
        raise PatientError(_("Cet espace est déjà fermé."))
    box = selectors.patient_box(patient)
    # The patient's own decision, with who asked; the account and box closures below are
    # the platform carrying it out (``by=None``: a patient is not staff, and the box
    # actions accept only staff or the platform).
    journal.record(
        "patient.space_closed",
        actor=by,
        obj=box if box is not None else patient,
        request=request,
    )
    try:
        account_services.close_account(
            patient, reason=_("Espace fermé à la demande de son titulaire."), by=None
        )
    except (account_services.AccountError, MailboxError) as exc:
        raise PatientError(str(exc)) from None


def erase_closed_spaces(now: datetime | None = None) -> int:
    """Daily: erase the spaces closed more than PATIENT_CLOSED_RETENTION_DAYS ago.

    What was the patient's goes: the box's entries (a message nobody else holds goes with
    its blob; a professional's own copy stays theirs), the documents filed or added (the
    added files' blobs once committed), the appointments, the connected-service choices and
    the notification preference. The account, the box's address and the journal stay (an
    address is never given to another patient; the journal has its own retention). Safe to
    run twice: an erased space has nothing left to find. Returns how many spaces it erased.
    """
    now = now or timezone.now()
    limit = now - timedelta(days=settings.PATIENT_CLOSED_RETENTION_DAYS)
    boxes = Mailbox.objects.filter(
        kind=Mailbox.Kind.PATIENT,
        status=Mailbox.Status.CLOSED,
        status_changed_at__lt=limit,
        owner__isnull=False,
    ).filter(
        Exists(Entry.objects.filter(mailbox=OuterRef("pk")))
        | Exists(PatientDocument.objects.filter(patient=OuterRef("owner")))
        | Exists(Appointment.objects.filter(mailbox=OuterRef("pk")))
    )
    erased = 0
    for box in boxes:
        owner = box.owner_id
        assert owner is not None  # filtered above
        with transaction.atomic():
            entries = mailbox_services.erase_closed_mailbox(box)
            added = list(
                PatientDocument.objects.filter(patient_id=owner)
                .exclude(blob_name="")
                .values_list("blob_name", flat=True)
            )
            documents, _detail = PatientDocument.objects.filter(patient_id=owner).delete()
            FiledMessage.objects.filter(patient_id=owner).delete()
            Appointment.objects.filter(mailbox=box).delete()
            ServiceRevocation.objects.filter(patient_box=box).delete()
            ServiceChange.objects.filter(patient_box=box).delete()
            NotificationPreference.objects.filter(user_id=owner).delete()
            journal.record(
                "patient.space_erased",
                obj=box,
                entries=entries,
                documents=documents,
                retention_days=settings.PATIENT_CLOSED_RETENTION_DAYS,
            )
            transaction.on_commit(functools.partial(blobs.delete_many, added))
        erased += 1
    return erased
