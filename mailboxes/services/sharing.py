"""Shared and delegated mailboxes: memberships, the access journal, the ``Sender:`` of a delegate."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import TYPE_CHECKING, Any

from django.db import IntegrityError, transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from accounts.models import User
from audit import journal
from mailboxes.models import (
    AccessEvent,
    Entry,
    Mailbox,
    Membership,
    Message,
    ReceiptPreference,
)
from mailboxes.selectors import Access
from mailboxes.services.errors import MembershipError
from mailboxes.services.rights import authorise

if TYPE_CHECKING:
    from django.http import HttpRequest

# Boxes whose holder may share them: organisational boxes (members) and nominative
# boxes (delegation). Applicative boxes are used by software through API tokens.
SHAREABLE = (Mailbox.Kind.ORGANISATIONAL, Mailbox.Kind.PERSONAL)


def _check_grant(mailbox: Mailbox, user: User, role: str, expires_at: datetime | None) -> None:
    if mailbox.kind not in SHAREABLE:
        raise MembershipError(_("Cette boîte ne peut pas être partagée."))
    if role not in Membership.Role.values:
        raise MembershipError(_("Rôle inconnu : %(role)s.") % {"role": role})
    if mailbox.kind == Mailbox.Kind.PERSONAL and role == Membership.Role.MANAGE:
        # A nominative box has one holder: only they decide who else may use it.
        raise MembershipError(
            _("Une délégation de boîte nominative donne la lecture ou l'envoi, pas la gestion.")
        )
    if not user.is_professional:
        raise MembershipError(_("Seul un compte professionnel peut utiliser cette boîte."))
    if not user.is_open:
        raise MembershipError(_("Ce compte n'est pas actif."))
    if user.pk in (mailbox.owner_id, mailbox.responsible_id):
        raise MembershipError(_("Cette personne est déjà titulaire ou responsable de la boîte."))
    if expires_at is not None and expires_at <= timezone.now():
        raise MembershipError(_("La date de fin doit être dans le futur."))


def grant_membership(
    mailbox: Mailbox,
    user: User,
    role: str,
    *,
    by: User | None,
    expires_at: datetime | None = None,
    request: HttpRequest | None = None,
) -> Membership:
    """Let ``user`` use ``mailbox`` with ``role`` (until ``expires_at`` when given)."""
    authorise(by, mailbox, Access.MANAGE, operator=True)
    _check_grant(mailbox, user, role, expires_at)
    now = timezone.now()
    try:
        with transaction.atomic():
            # An expired grant still occupies the "live" slot (revoked_at is null): close it.
            Membership.objects.filter(
                mailbox=mailbox, user=user, revoked_at__isnull=True, expires_at__lte=now
            ).update(revoked_at=now)
            membership = Membership.objects.create(
                mailbox=mailbox,
                user=user,
                role=role,
                granted_by=by,
                granted_at=now,
                expires_at=expires_at,
            )
            journal.record(
                "membership.granted",
                actor=by,
                obj=membership,
                request=request,
                mailbox=mailbox.address,
                member=user.pk,
                role=role,
                expires_at=expires_at.isoformat() if expires_at else None,
            )
    except IntegrityError:
        raise MembershipError(
            _("%(name)s a déjà accès à cette boîte : modifiez son rôle.")
            % {"name": user.get_full_name() or user.username}
        ) from None
    return membership


@transaction.atomic
def change_membership(
    membership: Membership,
    role: str,
    *,
    by: User | None,
    expires_at: datetime | None = None,
    request: HttpRequest | None = None,
) -> Membership:
    """Change the role (and end date) of a live grant."""
    authorise(by, membership.mailbox, Access.MANAGE, operator=True)
    if not membership.is_live():
        raise MembershipError(_("Cet accès a pris fin : accordez-en un nouveau."))
    _check_grant(membership.mailbox, membership.user, role, expires_at)
    before = membership.role
    membership.role = role
    membership.expires_at = expires_at
    membership.save(update_fields=["role", "expires_at"])
    journal.record(
        "membership.changed",
        actor=by,
        obj=membership,
        request=request,
        mailbox=membership.mailbox.address,
        member=membership.user_id,
        role_before=before,
        role=role,
        expires_at=expires_at.isoformat() if expires_at else None,
    )
    return membership


@transaction.atomic
def revoke_membership(
    membership: Membership, *, by: User | None, request: HttpRequest | None = None
) -> Membership:
    """End a grant at once: the member loses the box at their next request."""
    authorise(by, membership.mailbox, Access.MANAGE, operator=True)
    if membership.revoked_at is not None:
        return membership
    membership.revoked_at = timezone.now()
    membership.revoked_by = by
    membership.save(update_fields=["revoked_at", "revoked_by"])
    journal.record(
        "membership.revoked",
        actor=by,
        obj=membership,
        request=request,
        mailbox=membership.mailbox.address,
        member=membership.user_id,
    )
    return membership


# --------------------------------------------------------------------------- journal


def is_journaled(mailbox: Mailbox, actor: Any) -> bool:
    """Shared boxes journal everyone; a nominative box journals everyone but its holder."""
    if mailbox.kind in (Mailbox.Kind.ORGANISATIONAL, Mailbox.Kind.APPLICATIVE):
        return True
    actor_id = getattr(actor, "pk", None)
    return actor_id is None or actor_id != mailbox.owner_id


def _label(actor: Any, fallback: str = "") -> str:
    if actor is None or getattr(actor, "pk", None) is None:
        return fallback[:200]
    full = actor.get_full_name() if hasattr(actor, "get_full_name") else ""
    return (full or str(actor))[:200]


def record_access(
    mailbox: Mailbox,
    action: str,
    *,
    actor: Any,
    messages: Iterable[Message | int | None] = (None,),
    label: str = "",
) -> int:
    """Journal who did ``action`` on which messages of a shared or delegated box (no content)."""
    if not is_journaled(mailbox, actor):
        return 0
    actor_obj = actor if getattr(actor, "pk", None) is not None else None
    now = timezone.now()
    rows = [
        AccessEvent(
            mailbox=mailbox,
            actor=actor_obj,
            actor_label=_label(actor, label),
            action=action,
            message_id=m.pk if isinstance(m, Message) else m,
            at=now,
        )
        for m in messages
    ]
    AccessEvent.objects.bulk_create(rows)
    return len(rows)


def record_entries(entries: Iterable[Entry], action: str, *, actor: Any) -> int:
    """Journal ``action`` on entries, grouped by mailbox (only the shared or delegated ones)."""
    by_box: dict[int, tuple[Mailbox, list[int]]] = {}
    for entry in entries:
        box = entry.mailbox
        by_box.setdefault(box.pk, (box, []))[1].append(entry.message_id)
    return sum(
        record_access(box, action, actor=actor, messages=ids) for box, ids in by_box.values()
    )


def receipt_mode(user: Any) -> str:
    """A professional's read receipt preference; automatic unless they chose otherwise."""
    if getattr(user, "pk", None) is None or not getattr(user, "is_professional", False):
        return ReceiptPreference.Mode.AUTOMATIC
    mode = ReceiptPreference.objects.filter(user_id=user.pk).values_list("mode", flat=True).first()
    return mode or ReceiptPreference.Mode.AUTOMATIC


def set_receipt_mode(user: User, mode: str) -> ReceiptPreference:
    """Record how ``user`` answers read receipt requests."""
    if mode not in ReceiptPreference.Mode.values:
        raise ValueError(mode)
    pref, _created = ReceiptPreference.objects.update_or_create(user=user, defaults={"mode": mode})
    return pref


def record_download(entry: Entry, index: int, *, by: User) -> None:
    """An attachment of ``entry`` is handed out (download or preview): audited, and journaled in shared boxes."""
    authorise(by, entry.mailbox, Access.READ)
    journal.record(
        "attachment.downloaded",
        actor=by,
        obj=entry.message,
        mailbox=entry.mailbox.address,
        part=index,
    )
    record_access(entry.mailbox, AccessEvent.Action.DOWNLOAD, actor=by, messages=[entry.message_id])


# --------------------------------------------------------------------------- sending


def sender_for(mailbox: Mailbox, author: Any) -> str | None:
    """The ``Sender:`` ("Name <address>") when someone other than the holder sends from a box.

    RFC 5322: ``From:`` is the box the message speaks for, ``Sender:`` the person who
    actually sent it, named by their own nominative address. A delegate without a box
    of their own has no address to put there: the access journal still names them.
    """
    if author is None or getattr(author, "pk", None) is None:
        return None
    if mailbox.owner_id is not None and mailbox.owner_id == author.pk:
        return None
    own = (
        Mailbox.objects.filter(
            owner_id=author.pk, kind=Mailbox.Kind.PERSONAL, status=Mailbox.Status.ACTIVE
        )
        .exclude(pk=mailbox.pk)
        .order_by("address")
        .values_list("address", flat=True)
        .first()
    )
    if own is None:
        return None
    # Characters that would change how the header parses are left out of the name.
    name = "".join(c for c in _label(author) if c not in '<>",;:()[]\\@')
    return f"{name.strip()} <{own}>" if name.strip() else own
