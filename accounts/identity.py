"""From what a person types in the login box to the account it designates."""

from __future__ import annotations

from dataclasses import dataclass

from django.utils import timezone

from accounts.models import FormerAdeli, User
from mssante.lib import identifiers as ids


@dataclass(frozen=True)
class LoginKey:
    """The canonical form of a login identifier: what ``User.username`` holds."""

    key: str
    kind: str  # "professional" | "patient" | "staff"
    adeli: str = ""  # set when an Adeli number was typed


def login_key(raw: str) -> LoginKey:
    """Canonicalise a typed identifier. Raises IdentifierError when a number is malformed.

    Digits (with the separators people type) are an RPPS/Adeli number or a
    national id; 15 characters with 2A/2B or digits are an INS; anything else
    is a staff login name.
    """
    compact = ids.normalize(raw)
    if ids.looks_like_ins(compact):
        return LoginKey(ids.parse_ins(compact).matricule, "patient")
    if compact.isascii() and compact.isdigit():
        pid = ids.parse_professional_id(compact)
        return LoginKey(pid.national_id, "professional", pid.number if pid.kind == "adeli" else "")
    return LoginKey(raw.strip(), "staff")


@dataclass(frozen=True)
class Resolved:
    user: User
    via_former_adeli: FormerAdeli | None = None


def resolve(raw: str) -> Resolved | None:
    """The account a login identifier designates, or None. Raises IdentifierError."""
    key = login_key(raw)
    user = User.objects.filter(username=key.key).first()
    if user is not None:
        if key.kind == "staff" and user.kind != User.Kind.STAFF:
            return None
        return Resolved(user)
    if key.adeli:
        former = (
            FormerAdeli.objects.select_related("identity__user")
            .filter(adeli=key.adeli, accepted_until__gt=timezone.now())
            .first()
        )
        if former is not None:
            return Resolved(former.identity.user, former)
    return None
