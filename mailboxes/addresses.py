"""Mail addresses: normalising, checking and proposing them for new mailboxes."""

from __future__ import annotations

import re
import unicodedata
from typing import Final

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import EmailValidator

_validator: Final = EmailValidator()
_LOCAL_NOISE: Final = re.compile(r"[^a-z0-9]+")


class AddressError(ValueError):
    """An address that is not a valid ``local@domain``."""


def normalise(address: str) -> str:
    """Return ``address`` trimmed and lower-cased; raise ``AddressError`` when malformed."""
    value = (address or "").strip().lower()
    # Angle brackets and display names are the compose form's business, not the store's.
    # 254 is the longest path SMTP can carry (RFC 5321 §4.5.3.1.3).
    if not value or len(value) > 254 or any(c in value for c in "<>,; \t\r\n\"'"):
        raise AddressError(value)
    try:
        _validator(value)
    except ValidationError:
        raise AddressError(value) from None
    return value


def domain_of(address: str) -> str:
    """Domain part of an already normalised address."""
    return address.rpartition("@")[2]


def is_patient_address(address: str) -> bool:
    """Whether ``address`` is in the patient domain (a box ``<INS>@<PATIENT_DOMAIN>``)."""
    return domain_of(address.strip().lower()) == settings.PATIENT_DOMAIN


def slug(text: str) -> str:
    """ASCII, lower-case, dash-separated form of a name ("Lefèvre-Dupré" → "lefevre-dupre")."""
    # NFKD splits "è" into "e" + a combining accent, which the ASCII encode drops;
    # "œ" and "æ" have no decomposition, so they are spelled out first.
    text = text.replace("œ", "oe").replace("Œ", "Oe").replace("æ", "ae").replace("Æ", "Ae")
    ascii_text = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode("ascii")
    return _LOCAL_NOISE.sub("-", ascii_text.lower()).strip("-")


def local_part(first_name: str, last_name: str) -> str:
    """``prenom.nom`` from a person's names; either half may be missing."""
    parts = [p for p in (slug(first_name), slug(last_name)) if p]
    return ".".join(parts) or "utilisateur"
