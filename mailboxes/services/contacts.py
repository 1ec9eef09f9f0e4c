"""A person's favourite correspondents (the contacts page, compose suggestions)."""

from __future__ import annotations

import re

from django.db import transaction
from django.utils.translation import gettext as _

from accounts.models import User
from mailboxes.models import Contact
from mailboxes.preferences_models import CONTACTS_PER_USER
from mailboxes.services.preferences import PreferencesError

_ADDRESS_RE = re.compile(r"^[^@\s,;<>\"]{1,64}@[a-z0-9-]+(\.[a-z0-9-]+)*\.[a-z]{2,63}$")


def clean_address(value: str) -> str:
    """One address, lower-case, or ``PreferencesError`` in French."""
    address = (value or "").strip().lower()
    if len(address) > 254 or not _ADDRESS_RE.fullmatch(address):
        raise PreferencesError(_("Cette adresse n'est pas valide."))
    return address


def star_contact(user: User, address: str, *, name: str = "") -> Contact:
    """Add ``address`` to ``user``'s favourites (once; bounded)."""
    address = clean_address(address)
    with transaction.atomic():
        existing = Contact.objects.filter(user=user, address=address).first()
        if existing is not None:
            return existing
        if Contact.objects.filter(user=user).count() >= CONTACTS_PER_USER:
            raise PreferencesError(_("Au plus %(limit)d favoris.") % {"limit": CONTACTS_PER_USER})
        return Contact.objects.create(user=user, address=address, name=name.strip()[:200])


def unstar_contact(user: User, address: str) -> None:
    """Remove ``address`` from ``user``'s favourites (nothing if it was not there)."""
    Contact.objects.filter(user=user, address=(address or "").strip().lower()[:254]).delete()
