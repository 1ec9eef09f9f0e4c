"""French health identifiers: RPPS, Adeli, FINESS and INS (NIR/NIA).

Pure Python so that forms, importers and the SMTP side share one set of rules.
Error messages are plain French strings kept in module constants: the Django
layer wraps them for translation and may show them as they are.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Final, Literal

from stdnum import luhn
from stdnum.exceptions import ValidationError
from stdnum.fr import nir

__all__ = [
    "ADELI_NATIONAL_PREFIX",
    "FINESS_INVALID",
    "INS_BAD_FORMAT",
    "INS_BAD_KEY",
    "INS_BAD_SEX",
    "INS_OID_DEMO",
    "INS_OID_LABELS",
    "INS_OID_NIA",
    "INS_OID_NIR",
    "INS_OID_TEST",
    "PROFESSIONAL_ID_INVALID",
    "RPPS_NATIONAL_PREFIX",
    "RPPS_OID",
    "Finess",
    "IdentifierError",
    "Ins",
    "ProfessionalId",
    "looks_like_ins",
    "make_ins",
    "make_rpps",
    "normalize",
    "parse_finess",
    "parse_ins",
    "parse_professional_id",
]


def gettext_noop(message: str) -> str:
    """Marks a message for the translation catalogue (makemessages) without importing Django.

    The Django layer translates ``str(error)`` with gettext at display time.
    """
    return message


PROFESSIONAL_ID_INVALID: Final = gettext_noop(
    "Identifiant invalide : un numéro RPPS compte 11 chiffres, un numéro Adeli 9 chiffres."
)
INS_BAD_FORMAT: Final = gettext_noop(
    "Le matricule INS compte 15 caractères : 13 pour le numéro et 2 pour la clé."
)
INS_BAD_SEX: Final = gettext_noop("Le matricule INS commence par 1, 2, 3, 4, 7 ou 8.")
INS_BAD_KEY: Final = gettext_noop("La clé du matricule INS est incorrecte.")
FINESS_INVALID: Final = gettext_noop(
    "Numéro FINESS invalide : il compte 9 caractères, des chiffres "
    "(ou 2A / 2B suivis de 7 chiffres pour la Corse)."
)

RPPS_OID: Final = "1.2.250.1.71.4.2.1"
RPPS_NATIONAL_PREFIX: Final = "8"
ADELI_NATIONAL_PREFIX: Final = "0"

INS_OID_NIR: Final = "1.2.250.1.213.1.4.8"
INS_OID_NIA: Final = "1.2.250.1.213.1.4.9"
INS_OID_TEST: Final = "1.2.250.1.213.1.4.10"
INS_OID_DEMO: Final = "1.2.250.1.213.1.4.11"
INS_OID_LABELS: Final[dict[str, str]] = {
    INS_OID_NIR: "INS-NIR",
    INS_OID_NIA: "INS-NIA",
    INS_OID_TEST: "INS-NIR de test",
    INS_OID_DEMO: "INS-NIR de démonstration",
}

# Characters people type or paste inside identifiers (card printouts group digits,
# spreadsheets and word processors bring in non-breaking spaces).
_SEPARATORS: Final = re.compile(r"[\s.\-\u00a0\u202f\u2007]+")

# Sex digit, year, month, department (2A/2B for Corsica), commune, order, key.
# Month and year stay permissive: NIR rules allow fictitious months (20-42, 50+).
_INS_SHAPE: Final = re.compile(r"[0-9]{5}(?:[0-9]{2}|2A|2B)[0-9]{8}")
_INS_SEX_DIGITS: Final = frozenset("123478")
_FINESS_SHAPE: Final = re.compile(r"(?:[0-9]{2}|2A|2B)[0-9]{7}")


class IdentifierError(ValueError):
    """A value that is not a valid identifier; ``str(error)`` is for the user."""


def _is_ascii_digits(value: str) -> bool:
    # str.isdigit alone accepts other scripts' digits and superscripts.
    return value.isascii() and value.isdigit()


def normalize(raw: str) -> str:
    """Drop the separators people use when they type or paste an identifier."""
    return _SEPARATORS.sub("", raw.strip())


@dataclass(frozen=True, slots=True)
class ProfessionalId:
    kind: Literal["rpps", "adeli"]
    number: str

    def __post_init__(self) -> None:
        expected = 11 if self.kind == "rpps" else 9
        if len(self.number) != expected or not _is_ascii_digits(self.number):
            raise IdentifierError(PROFESSIONAL_ID_INVALID)

    @property
    def national_id(self) -> str:
        """The IDNPS used by the directory and in CDA/XDM author blocks."""
        prefix = RPPS_NATIONAL_PREFIX if self.kind == "rpps" else ADELI_NATIONAL_PREFIX
        return prefix + self.number

    @property
    def luhn_ok(self) -> bool:
        """Whether the RPPS Luhn key holds.

        Callers warn rather than refuse: some published RPPS examples break the
        key. Adeli numbers have no key we check, so they never trigger a warning.
        """
        if self.kind == "adeli":
            return True
        return luhn.is_valid(self.number)

    def __str__(self) -> str:
        return self.number


def parse_professional_id(raw: str) -> ProfessionalId:
    """Read an RPPS or Adeli number, bare or as a national id (IDNPS).

    Raises IdentifierError with PROFESSIONAL_ID_INVALID.
    """
    value = normalize(raw)
    if not _is_ascii_digits(value):
        raise IdentifierError(PROFESSIONAL_ID_INVALID)
    if len(value) == 11:
        return ProfessionalId("rpps", value)
    if len(value) == 9:
        return ProfessionalId("adeli", value)
    if len(value) == 12 and value.startswith(RPPS_NATIONAL_PREFIX):
        return ProfessionalId("rpps", value[1:])
    if len(value) == 10 and value.startswith(ADELI_NATIONAL_PREFIX):
        return ProfessionalId("adeli", value[1:])
    raise IdentifierError(PROFESSIONAL_ID_INVALID)


def make_rpps(prefix10: str) -> str:
    """Append the Luhn key to ten digits, giving an RPPS whose key holds."""
    if len(prefix10) != 10 or not _is_ascii_digits(prefix10):
        raise ValueError("make_rpps expects exactly 10 digits")
    return prefix10 + luhn.calc_check_digit(prefix10)


@dataclass(frozen=True, slots=True)
class Ins:
    """An INS matricule (NIR or NIA): 13 characters then a 2-digit key."""

    matricule: str

    def __post_init__(self) -> None:
        if _INS_SHAPE.fullmatch(self.matricule) is None:
            raise IdentifierError(INS_BAD_FORMAT)

    @property
    def number(self) -> str:
        return self.matricule[:13]

    @property
    def key(self) -> str:
        return self.matricule[13:]

    def __str__(self) -> str:
        return self.matricule


def _ins_candidate(raw: str) -> str:
    # Upper case so that a typed "2a" is the same matricule as "2A".
    return normalize(raw).upper()


def looks_like_ins(raw: str) -> bool:
    """Whether the input has the shape of an INS, key not checked.

    The login form uses this to choose between patient and professional: an
    INS has 15 characters, longer than any RPPS/Adeli form.
    """
    return _INS_SHAPE.fullmatch(_ins_candidate(raw)) is not None


def parse_ins(raw: str) -> Ins:
    """Check an INS matricule's shape and key.

    Raises IdentifierError with INS_BAD_FORMAT, INS_BAD_SEX or INS_BAD_KEY.
    """
    value = _ins_candidate(raw)
    if _INS_SHAPE.fullmatch(value) is None:
        raise IdentifierError(INS_BAD_FORMAT)
    if value[0] not in _INS_SEX_DIGITS:
        raise IdentifierError(INS_BAD_SEX)
    try:
        # stdnum maps Corsica (2A -> 19, 2B -> 18) before the modulo 97.
        nir.validate(value)
    except ValidationError:
        raise IdentifierError(INS_BAD_KEY) from None
    return Ins(value)


def make_ins(
    sex: int,
    year: int,
    month: int,
    dept: str,
    commune: int | str,
    order: int,
) -> str:
    """Build a 15-character matricule with its key, for demo data and tests.

    ``year`` may have four digits: only the last two are kept, as in the NIR.
    ``dept`` is two characters ("75", "2A", "97", "99") and ``commune`` the
    three that follow, so overseas and foreign-born numbers fit too.
    """
    if str(sex) not in _INS_SEX_DIGITS:
        raise ValueError("sex must be one of 1, 2, 3, 4, 7, 8")
    if not 0 <= year <= 9999:
        raise ValueError("year out of range")
    if not 0 <= month <= 99:
        raise ValueError("month must have two digits")
    dept = dept.upper()
    if not re.fullmatch(r"[0-9]{2}|2A|2B", dept):
        raise ValueError("dept must be two digits, 2A or 2B")
    commune_number = int(commune)
    if not 0 <= commune_number <= 999:
        raise ValueError("commune must have three digits")
    if not 0 <= order <= 999:
        raise ValueError("order must have three digits")
    number = f"{sex}{year % 100:02d}{month:02d}{dept}{commune_number:03d}{order:03d}"
    return number + nir.calc_check_digits(number)


@dataclass(frozen=True, slots=True)
class Finess:
    number: str

    def __post_init__(self) -> None:
        if _FINESS_SHAPE.fullmatch(self.number) is None:
            raise IdentifierError(FINESS_INVALID)

    @property
    def luhn_ok(self) -> bool | None:
        """Whether the Luhn key holds; None when it cannot be checked.

        The key rule for Corsican numbers (2A/2B) is not confirmed, so those
        return None rather than a guess. Like RPPS, a failed key is a warning.
        """
        if not _is_ascii_digits(self.number):
            return None
        return luhn.is_valid(self.number)

    def __str__(self) -> str:
        return self.number


def parse_finess(raw: str) -> Finess:
    """Check a FINESS number's shape (9 characters). Raises IdentifierError."""
    value = normalize(raw).upper()
    if _FINESS_SHAPE.fullmatch(value) is None:
        raise IdentifierError(FINESS_INVALID)
    return Finess(value)
