"""A mailbox's life after its creation: closed, reopened, liste rouge, details; the directory follows.

These are the only functions that change a ``Mailbox`` row: the mailbox admin, the
charter (abuse sanctions, inactivity) and the patient space call them. Each checks
who acts and whether the change makes sense, writes in one transaction with its audit
event, and re-publishes or withdraws the box in the directory in that same
transaction, so a box is never listed in a state that forbids it (liste rouge,
closed), nor missing from it once it may be listed again.
"""

from __future__ import annotations

from typing import Any

from django.db import models, transaction
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from accounts.models import User
from audit import journal
from directory import services as directory_services
from mailboxes.models import Mailbox
from mailboxes.services.errors import MailboxError


class ClosureCause(models.TextChoices):
    """Why a box was closed (kept in the audit event)."""

    STAFF = "staff", gettext_lazy("fermée par l'équipe")
    SANCTION = "sanction", gettext_lazy("compte du titulaire clôturé (sanction)")
    INACTIVITY = "inactivity", gettext_lazy("inactivité du titulaire")
    ACCOUNT = "account", gettext_lazy("compte du titulaire clôturé")


# Fields of a box staff may change from the admin besides its status and liste rouge
# (address, type and domain never change).
DETAIL_FIELDS = ("owner", "responsible", "organisation", "display_name", "quota_bytes")


# --- The directory ------------------------------------------------------------------------


def directory_listing(mailbox: Mailbox) -> directory_services.MailboxListing:
    """What the directory shows of ``mailbox``, and whether it may show it at all."""
    published = (
        mailbox.status == Mailbox.Status.ACTIVE
        and not mailbox.liste_rouge
        and mailbox.kind != Mailbox.Kind.PATIENT
    )
    owner = mailbox.owner
    if mailbox.kind != Mailbox.Kind.PERSONAL or owner is None:
        return directory_services.MailboxListing(
            address=mailbox.address,
            kind=mailbox.kind,
            published=published,
            structure_name=mailbox.display_name,
        )
    identity = getattr(owner, "professional", None)
    return directory_services.MailboxListing(
        address=mailbox.address,
        kind=mailbox.kind,
        published=published,
        first_name=owner.first_name,
        last_name=owner.last_name,
        id_type=identity.id_type if identity else "",
        national_id=identity.national_id if identity else "",
        profession_code=identity.profession_code if identity else "",
        profession_label=identity.profession_label if identity else "",
        specialty_code=identity.specialty_code if identity else "",
        specialty_label=identity.specialty_label if identity else "",
    )


def sync_directory(mailbox: Mailbox) -> None:
    """Publish ``mailbox`` in the directory, or withdraw it, from its current state."""
    directory_services.sync_mailbox(directory_listing(mailbox))


def resync_directory() -> tuple[int, int]:
    """Republish every box from its current state (backfill or repair): (published, withdrawn)."""
    published = withdrawn = 0
    boxes = Mailbox.objects.select_related("owner__professional").order_by("pk")
    for box in boxes.iterator(chunk_size=500):
        listing = directory_listing(box)
        directory_services.sync_mailbox(listing)
        if listing.published:
            published += 1
        else:
            withdrawn += 1
    return published, withdrawn


# --- Status, liste rouge, details -----------------------------------------------------------


def _authorise_staff(by: User | None) -> None:
    # ``None`` is the platform itself (a scheduled process); a person must be staff.
    if by is not None and not by.is_staff:
        raise MailboxError(_("Seule l'équipe de l'opérateur peut modifier cette boîte."))


def _locked(mailbox: Mailbox) -> Mailbox:
    return (
        Mailbox.objects.select_for_update(of=("self",))
        .select_related("owner__professional")
        .get(pk=mailbox.pk)
    )


def _copy_back(box: Mailbox, into: Mailbox, fields: list[str]) -> None:
    # The caller's instance shows what was written (the admin, a loop over boxes).
    for name in fields:
        setattr(into, name, getattr(box, name))


def _check_holder_open(box: Mailbox, owner: User | None) -> None:
    if owner is not None and owner.status == User.Status.CLOSED:
        raise MailboxError(
            _("Le compte du titulaire de %(address)s est clôturé : la boîte reste fermée.")
            % {"address": box.address}
        )


def _check_details(box: Mailbox) -> None:
    if box.kind == Mailbox.Kind.PERSONAL and box.owner is None:
        raise MailboxError(_("Une boîte nominative a un titulaire."))
    if box.responsible is not None and not box.responsible.is_professional:
        raise MailboxError(_("Le responsable d'une boîte doit être un professionnel."))
    if box.quota_bytes is None or box.quota_bytes < 0:
        raise MailboxError(_("Le quota d'une boîte est un nombre d'octets positif."))


def check_changes(mailbox: Mailbox, changed: dict[str, Any]) -> None:
    """Refuse (MailboxError) admin changes the actions would refuse, before any write.

    ``mailbox`` is the box as stored; ``changed`` the new values of the fields a form
    changed. The actions check again under their lock: this only lets a form answer
    with its errors rather than half done.
    """
    box = Mailbox.objects.select_related("owner").get(pk=mailbox.pk)
    for name in DETAIL_FIELDS:
        if name in changed:
            setattr(box, name, changed[name])
    _check_details(box)
    if changed.get("status") == Mailbox.Status.ACTIVE:
        _check_holder_open(box, box.owner)


def close_mailbox(
    mailbox: Mailbox,
    *,
    by: User | None,
    cause: ClosureCause = ClosureCause.STAFF,
    reason: str = "",
    **details: Any,
) -> Mailbox:
    """Close a box: it receives nothing more (senders are told) and leaves the directory."""
    _authorise_staff(by)
    with transaction.atomic():
        box = _locked(mailbox)
        if box.status == Mailbox.Status.CLOSED:
            raise MailboxError(
                _("La boîte %(address)s est déjà fermée.") % {"address": box.address}
            )
        box.status = Mailbox.Status.CLOSED
        box.status_changed_at = timezone.now()
        box.save(update_fields=["status", "status_changed_at"])
        journal.record(
            "mailbox.closed", actor=by, obj=box, cause=cause.value, reason=reason.strip(), **details
        )
        sync_directory(box)
    _copy_back(box, mailbox, ["status", "status_changed_at"])
    return box


def close_mailboxes_of(
    holder: User, *, by: User | None, cause: ClosureCause, reason: str = ""
) -> list[Mailbox]:
    """Close the open boxes ``holder`` holds in their own name (nominative and patient)."""
    boxes = Mailbox.objects.filter(
        owner=holder,
        kind__in=[Mailbox.Kind.PERSONAL, Mailbox.Kind.PATIENT],
        status=Mailbox.Status.ACTIVE,
    ).order_by("pk")
    with transaction.atomic():
        return [close_mailbox(box, by=by, cause=cause, reason=reason) for box in boxes]


def reopen_mailbox(mailbox: Mailbox, *, by: User | None, reason: str = "") -> Mailbox:
    """Reopen a closed box: it receives again and is listed again (unless liste rouge)."""
    _authorise_staff(by)
    with transaction.atomic():
        box = _locked(mailbox)
        if box.status == Mailbox.Status.ACTIVE:
            raise MailboxError(_("La boîte %(address)s est ouverte.") % {"address": box.address})
        _check_holder_open(box, box.owner)
        box.status = Mailbox.Status.ACTIVE
        # Also the inactivity clock's restart: a box reopened by staff is not closed
        # again at the next run for the warning that closed it.
        box.status_changed_at = timezone.now()
        box.save(update_fields=["status", "status_changed_at"])
        journal.record("mailbox.reopened", actor=by, obj=box, reason=reason.strip())
        sync_directory(box)
    _copy_back(box, mailbox, ["status", "status_changed_at"])
    return box


def set_liste_rouge(mailbox: Mailbox, listed: bool, *, by: User | None) -> Mailbox:
    """Put a box on the liste rouge (withdrawn from the directory) or take it off."""
    _authorise_staff(by)
    with transaction.atomic():
        box = _locked(mailbox)
        if box.liste_rouge == listed:
            return box
        box.liste_rouge = listed
        box.save(update_fields=["liste_rouge"])
        journal.record("mailbox.liste_rouge", actor=by, obj=box, listed=listed)
        sync_directory(box)
    _copy_back(box, mailbox, ["liste_rouge"])
    return box


def update_mailbox(mailbox: Mailbox, *, by: User | None, **changes: Any) -> Mailbox:
    """Change a box's holder, responsible, organisation, displayed name or quota.

    Only the fields given are written (``owner=…``, ``display_name=…``: see DETAIL_FIELDS).
    """
    _authorise_staff(by)
    unknown = set(changes) - set(DETAIL_FIELDS)
    if unknown:
        raise TypeError(f"update_mailbox() cannot change {sorted(unknown)}")
    if "display_name" in changes:
        changes["display_name"] = (changes["display_name"] or "").strip()
    fields = [name for name in DETAIL_FIELDS if name in changes]
    with transaction.atomic():
        box = _locked(mailbox)
        for name in fields:
            setattr(box, name, changes[name])
        _check_details(box)
        if not fields:
            return box
        box.save(update_fields=fields)
        journal.record("mailbox.updated", actor=by, obj=box, fields=fields)
        sync_directory(box)
    _copy_back(box, mailbox, fields)
    return box
