"""Family (issue 17): staff link a guardian to a minor child; the guardian switches profiles.

Every write here validates, writes and journals (STYLE.md): ``provision_link`` and
``revoke_link`` for staff (the admin calls them), ``switch`` for the guardian (the switch
view), ``end_links_at_majority`` for the beat task. Whose space a request shows is
decided by ``patients.access.acting_patient``, which asks ``usable_link`` on every request:
a link revoked, ended, or a child come of age since the switch sends the guardian back to
their own space.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from typing import Any

from django.db import IntegrityError, transaction
from django.http import HttpRequest
from django.utils import timezone
from django.utils.translation import gettext as _

from accounts import services as account_services
from accounts.models import PatientIdentity, User
from audit import journal
from patients import services
from patients.models_family import GuardianLink, majority_date

# The session holds the id of the link the guardian switched to, nothing else: the link is
# looked up again (still active, still the guardian's, child still minor) on every request.
SESSION_KEY = "patients_family_link"
MAJORITY_YEARS = 18
REASON_MAX = 1000


class FamilyError(services.PatientError):
    """A link staff or a guardian cannot make or use; ``str()`` is the French reason."""


# --- Age ---------------------------------------------------------------------------------


def is_minor(identity: PatientIdentity, today: date | None = None) -> bool:
    return majority_date(identity.birth_date) > (today or timezone.localdate())


def _born_on_or_before(today: date) -> date:
    """The latest birth date of someone who is of age ``today``."""
    try:
        return today.replace(year=today.year - MAJORITY_YEARS)
    except ValueError:  # today is 29 February: those born on 28 February came of age
        return date(today.year - MAJORITY_YEARS, 2, 28)


# --- Staff: provision and revoke ---------------------------------------------------------


def normalise_reason(raw: str) -> str:
    reason = " ".join((raw or "").split())
    if not reason:
        raise FamilyError(_("Indiquez le motif (pièce justificative vue, décision…)."))
    if len(reason) > REASON_MAX:
        raise FamilyError(_("Motif trop long : %(max)d caractères au plus.") % {"max": REASON_MAX})
    return reason


def check_link(guardian: User, child: PatientIdentity) -> None:
    """Raise FamilyError unless ``guardian`` may be linked to ``child`` now."""
    if not guardian.is_patient or not PatientIdentity.objects.filter(user=guardian).exists():
        raise FamilyError(_("Le représentant légal doit être un patient inscrit."))
    if not guardian.is_open:
        raise FamilyError(_("Le compte du représentant légal n'est pas actif."))
    if child.user_id == guardian.pk:
        raise FamilyError(_("Un patient ne peut pas être rattaché à lui-même."))
    if not is_minor(child):
        raise FamilyError(
            _("L'enfant est majeur (né le %(born)s) : il gère seul son espace.")
            % {"born": child.birth_date.strftime("%d/%m/%Y")}
        )
    if not child.user.is_open:
        raise FamilyError(_("Le compte de l'enfant n'est pas actif."))
    if services.patient_mailbox(child.user) is None:
        raise FamilyError(_("L'enfant n'a pas d'espace patient : inscrivez-le d'abord."))
    if GuardianLink.objects.filter(guardian=guardian, child=child, ended_at__isnull=True).exists():
        raise FamilyError(_("Ce représentant légal est déjà rattaché à cet enfant."))


@transaction.atomic
def provision_link(
    *,
    guardian: User,
    child: PatientIdentity,
    reason: str,
    by: User | None,
    role: str = GuardianLink.Role.PARENT,
) -> GuardianLink:
    """Let ``guardian`` act in the minor ``child``'s space (staff, with a recorded reason)."""
    reason = normalise_reason(reason)
    if role not in GuardianLink.Role.values:
        raise FamilyError(_("Qualité inconnue."))
    check_link(guardian, child)
    # The lock makes two staff members adding the same link at once meet here, not in a 500.
    User.objects.select_for_update().filter(pk=guardian.pk).first()
    if GuardianLink.objects.filter(guardian=guardian, child=child, ended_at__isnull=True).exists():
        raise FamilyError(_("Ce représentant légal est déjà rattaché à cet enfant."))
    try:
        with transaction.atomic():
            link = GuardianLink.objects.create(
                guardian=guardian, child=child, role=role, reason=reason, created_by=by
            )
    except IntegrityError:
        raise FamilyError(_("Ce représentant légal est déjà rattaché à cet enfant.")) from None
    # The child's own login waits for their majority: a link sent to them before ends now.
    withdrawn = account_services.cancel_activation_links(child.user)
    journal.record(
        "patient.family_link_created",
        actor=by,
        obj=link,
        guardian=guardian.pk,
        child=child.user_id,
        role=role,
        reason=reason,
        activation_links_ended=withdrawn,
    )
    return link


@transaction.atomic
def revoke_link(link: GuardianLink, *, by: User | None, reason: str) -> GuardianLink:
    """End a link now (staff, with a recorded reason); the child's space stays."""
    reason = normalise_reason(reason)
    link = GuardianLink.objects.select_for_update().get(pk=link.pk)
    if link.ended_at is not None:
        raise FamilyError(_("Ce rattachement a déjà pris fin."))
    link.ended_at = timezone.now()
    link.end_cause = GuardianLink.EndCause.REVOKED
    link.end_reason = reason
    link.ended_by = by
    link.save(update_fields=["ended_at", "end_cause", "end_reason", "ended_by"])
    journal.record(
        "patient.family_link_revoked",
        actor=by,
        obj=link,
        guardian=link.guardian_id,
        child=link.child.user_id,
        reason=reason,
    )
    return link


# --- Majority ----------------------------------------------------------------------------


@dataclass
class MajorityOutcome:
    ended: int
    activations_sent: int
    left_to_staff: int


def end_links_at_majority(today: date | None = None) -> MajorityOutcome:
    """End the links of children who turned 18 and start their own activation.

    The child's space and messages stay; the guardian loses access. The activation link
    goes to the child's personal address if staff recorded one; otherwise the links say
    "à faire par l'équipe" in the admin. Safe to run twice: an ended link is not seen again.
    """
    today = today or timezone.localdate()
    children = (
        GuardianLink.objects.filter(
            ended_at__isnull=True, child__birth_date__lte=_born_on_or_before(today)
        )
        .values_list("child_id", flat=True)
        .distinct()
    )
    outcome = MajorityOutcome(0, 0, 0)
    for child_id in list(children):
        with transaction.atomic():
            links = list(
                GuardianLink.objects.select_for_update()
                .select_related("child__user")
                .filter(child_id=child_id, ended_at__isnull=True)
            )
            if not links or is_minor(links[0].child, today):
                continue
            child = links[0].child.user
            activation = _start_activation(child)
            now = timezone.now()
            for link in links:
                link.ended_at = now
                link.end_cause = GuardianLink.EndCause.MAJORITY
                link.activation = activation
                link.save(update_fields=["ended_at", "end_cause", "activation"])
                journal.record(
                    "patient.family_link_ended",
                    obj=link,
                    guardian=link.guardian_id,
                    child=child.pk,
                    activation=activation or "none",
                )
            outcome.ended += len(links)
            if activation == GuardianLink.Activation.SENT:
                outcome.activations_sent += 1
            elif activation == GuardianLink.Activation.STAFF:
                outcome.left_to_staff += 1
    return outcome


def _start_activation(child: User) -> str:
    """The child's own activation at majority: by e-mail, or left to staff."""
    if child.has_usable_password():
        return GuardianLink.Activation.NONE  # already signs in on their own
    if not child.email or not child.is_open:
        return GuardianLink.Activation.STAFF
    services.send_activation_link(child, by=None)
    return GuardianLink.Activation.SENT


# --- The guardian: which spaces, switching -----------------------------------------------


def usable_link(guardian: User, link_id: object, today: date | None = None) -> GuardianLink | None:
    """The guardian's link ``link_id`` if it may be used now, else None.

    Still active, still this guardian's, both accounts open, the child still minor and
    still holding a patient box.
    """
    if not isinstance(link_id, int) or isinstance(link_id, bool):
        return None
    link = (
        GuardianLink.objects.select_related("child__user")
        .filter(pk=link_id, guardian=guardian, ended_at__isnull=True)
        .first()
    )
    if link is None or not guardian.is_open or not link.child.user.is_open:
        return None
    if not is_minor(link.child, today):
        return None
    return link


def children_of(guardian: User) -> list[GuardianLink]:
    """The links the guardian may switch to now, youngest child last."""
    links = (
        GuardianLink.objects.select_related("child__user")
        .filter(guardian=guardian, ended_at__isnull=True)
        .order_by("child__birth_date", "pk")
    )
    return [link for link in links if is_minor(link.child) and link.child.user.is_open]


def switch(request: HttpRequest, guardian: User, link_id: int | None) -> GuardianLink | None:
    """Show the child's space (``link_id``) or the guardian's own (None) from now on."""
    if link_id is None:
        previous = request.session.pop(SESSION_KEY, None)
        if previous is not None:
            journal.record(
                "patient.family_switched", actor=guardian, obj=guardian, request=request, link=0
            )
        return None
    link = usable_link(guardian, link_id)
    if link is None:
        raise FamilyError(_("Vous ne pouvez pas consulter cet espace."))
    request.session[SESSION_KEY] = link.pk
    journal.record(
        "patient.family_switched",
        actor=guardian,
        obj=link.child.user,
        request=request,
        link=link.pk,
    )
    return link


def record_guardian_access(request: HttpRequest, guardian: User, link: GuardianLink) -> None:
    """Journal that the guardian, not the child, did this request in the child's space.

    Ids only: the view's name, the method and the numeric ids of its URL (an entry, a
    part), never a subject or a word of content.
    """
    match = request.resolver_match
    details: dict[str, Any] = {
        "link": link.pk,
        "view": (match.view_name if match else "")[:100],
        "method": request.method or "",
    }
    for key, value in list((match.kwargs if match else {}).items())[:4]:
        if isinstance(value, int):
            details[f"url_{key}"] = value
    journal.record(
        "patient.family_acted", actor=guardian, obj=link.child.user, request=request, **details
    )
