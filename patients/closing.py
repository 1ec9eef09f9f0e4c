"""Closing the patient's space at their request (« Mes données » → « Fermer mon espace »).

Closing goes through the actions that own the tables: ``accounts.services.close_account``
closes the account (sign-in refused, with its reason) and, through the ``account_closed``
signal, ``mailboxes`` closes the patient's box (professionals who write get the closed
box refusal; the box leaves nothing in the directory). Nothing is deleted at once: the
retention rules in docs/decisions.md ("Mes données : archive et fermeture de l'espace").
"""

from __future__ import annotations

from django.db import transaction
from django.http import HttpRequest
from django.utils.translation import gettext as _

from accounts import services as account_services
from accounts.models import User
from audit import journal
from mailboxes.services.errors import MailboxError
from patients import selectors
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
