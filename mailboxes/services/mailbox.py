"""Mailboxes: proposing addresses and creating boxes with their system folders."""

from __future__ import annotations

from typing import Any

from django.db import transaction
from django.db.models import Subquery
from django.utils import translation
from django.utils.translation import gettext as _

from accounts.models import User
from accounts.services import is_eligible
from audit import journal
from directory.models import Organisation
from mailboxes import addresses
from mailboxes.models import Folder, HostedDomain, Mailbox
from mailboxes.services.errors import MailboxError
from mailboxes.services.lifecycle import sync_directory

SYSTEM_FOLDERS = (
    Folder.Role.INBOX,
    Folder.Role.SENT,
    Folder.Role.DRAFTS,
    Folder.Role.TRASH,
    Folder.Role.ARCHIVE,
)


def propose_address(first_name: str, last_name: str, domain: HostedDomain) -> str:
    """``prenom.nom@domain`` without accents, numbered ``.2``, ``.3``… when already taken."""
    base = addresses.local_part(first_name, last_name)
    taken = set(
        Mailbox.objects.filter(address__startswith=f"{base}", domain=domain).values_list(
            "address", flat=True
        )
    )
    candidate = f"{base}@{domain.name}"
    n = 1
    while candidate in taken:
        n += 1
        candidate = f"{base}.{n}@{domain.name}"
    return candidate


def _system_folder_name(role: str) -> str:
    # Stored names are the French labels whatever the language of the request
    # that created the mailbox: they are data, and unique per mailbox.
    with translation.override("fr"):
        return str(Folder.Role(role).label)


@transaction.atomic
def create_mailbox(
    kind: str,
    address: str,
    domain: HostedDomain,
    *,
    owner: User | None = None,
    responsible: User | None = None,
    organisation: Organisation | None = None,
    display_name: str = "",
    liste_rouge: bool | None = None,
    by: User | None = None,
) -> Mailbox:
    """Create a mailbox with its five system folders; its address and type never change.

    ``liste_rouge`` defaults to listed for applicative boxes (software is never offered
    to users), unlisted otherwise.
    """
    try:
        address = addresses.normalise(address)
    except addresses.AddressError:
        raise MailboxError(
            _("L'adresse « %(address)s » n'est pas valide.") % {"address": address}
        ) from None
    if addresses.domain_of(address) != domain.name:
        raise MailboxError(
            _("L'adresse « %(address)s » n'appartient pas au domaine %(domain)s.")
            % {"address": address, "domain": domain.name}
        )
    if not domain.active:
        raise MailboxError(_("Le domaine %(domain)s est désactivé.") % {"domain": domain.name})
    if kind not in Mailbox.Kind.values:
        raise MailboxError(_("Type de boîte inconnu : %(kind)s.") % {"kind": kind})
    if Mailbox.objects.filter(address=address).exists():
        raise MailboxError(_("L'adresse « %(address)s » est déjà prise.") % {"address": address})
    if responsible is not None and not responsible.is_professional:
        raise MailboxError(_("Le responsable d'une boîte doit être un professionnel."))
    mailbox = Mailbox.objects.create(
        address=address,
        domain=domain,
        kind=kind,
        owner=owner,
        responsible=responsible,
        organisation=organisation,
        display_name=display_name.strip(),
        liste_rouge=kind == Mailbox.Kind.APPLICATIVE if liste_rouge is None else liste_rouge,
    )
    Folder.objects.bulk_create(
        Folder(mailbox=mailbox, role=role, name=_system_folder_name(role))
        for role in SYSTEM_FOLDERS
    )
    journal.record(
        "mailbox.created",
        actor=by,
        obj=mailbox,
        kind=kind,
        address=address,
        liste_rouge=mailbox.liste_rouge,
    )
    # Same transaction: a mailbox is never created without its directory entry (or vice versa).
    sync_directory(mailbox)
    return mailbox


def create_personal_mailbox(
    user: User,
    domain: HostedDomain,
    *,
    address: str | None = None,
    liste_rouge: bool = False,
    by: User | None = None,
) -> Mailbox:
    """Give an eligible professional a nominative (PER) mailbox, address proposed from the name."""
    identity = getattr(user, "professional", None) if user.is_professional else None
    if identity is None:
        raise MailboxError(_("Seul un professionnel peut recevoir une boîte nominative."))
    if not is_eligible(identity):
        raise MailboxError(
            _("Cette profession ne donne pas droit à une boîte aux lettres MSSanté.")
        )
    if not user.is_open:
        raise MailboxError(_("Ce compte n'est pas actif."))
    return create_mailbox(
        Mailbox.Kind.PERSONAL,
        address or propose_address(user.first_name, user.last_name, domain),
        domain,
        owner=user,
        display_name=f"{user.first_name} {user.last_name}".strip(),
        liste_rouge=liste_rouge,
        by=by,
    )


def folder_of(mailbox: Mailbox, role: str) -> Folder:
    """The system folder of ``mailbox`` with this role."""
    return Folder.objects.get(mailbox=mailbox, role=role)


def system_folder_id(mailbox_id: Any, role: str) -> Subquery:
    # Resolved inside the INSERT itself: one round trip less on the hot path.
    return Subquery(Folder.objects.filter(mailbox_id=mailbox_id, role=role).values("pk")[:1])
