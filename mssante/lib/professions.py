"""Profession nomenclatures that decide who may hold an MSSanté mailbox.

The trust space is open to health professionals (TRE_G15), social and
medico-social professionals (TRE_R94) and holders of a protected title
(TRE_R95). Codes arrive from the Annuaire Santé extractions as strings.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Final, Literal

__all__ = [
    "DEPRECATION_DATE_G15",
    "TABLE_G15",
    "TABLE_OID_G15",
    "TABLE_R94",
    "TABLE_R95",
    "Category",
    "Profession",
    "TableCode",
    "all_professions",
    "choice_key",
    "choices",
    "eligible",
    "lookup",
    "parse_choice",
]

Category = Literal["sante", "medico_social", "social", "titre_protege"]
TableCode = Literal["G15", "R94", "R95"]

TABLE_G15: Final = "G15"
TABLE_R94: Final = "R94"
TABLE_R95: Final = "R95"
TABLE_OID_G15: Final = "1.2.250.1.71.1.2.7"
# The deprecated G15 codes left the table on that day; kept so that old
# directory lines still resolve to a label.
DEPRECATION_DATE_G15: Final = "2024-12-13"


@dataclass(frozen=True, slots=True)
class Profession:
    code: str
    label: str
    table: TableCode
    category: Category
    active: bool = True
    eligible: bool = field(init=False)

    def __post_init__(self) -> None:
        # Every category of the trust space qualifies; only a code that left
        # its table does not.
        object.__setattr__(self, "eligible", self.active)

    @property
    def key(self) -> str:
        return choice_key(self.table, self.code)


def _table(
    code: TableCode, category: Category, rows: Iterable[tuple[str, str]]
) -> list[Profession]:
    return [Profession(c, label, code, category) for c, label in rows]


_G15_ACTIVE: Final = _table(
    "G15",
    "sante",
    [
        ("10", "Médecin"),
        ("21", "Pharmacien"),
        ("26", "Audioprothésiste"),
        ("28", "Opticien-Lunetier"),
        ("31", "Assistant dentaire"),
        ("32", "Physicien médical"),
        ("40", "Chirurgien-Dentiste"),
        ("50", "Sage-Femme"),
        ("60", "Infirmier"),
        ("69", "Infirmier psychiatrique"),
        ("70", "Masseur-Kinésithérapeute"),
        ("80", "Pédicure-Podologue"),
        ("81", "Orthoprothésiste"),
        ("82", "Podo-Orthésiste"),
        ("83", "Orthopédiste-Orthésiste"),
        ("84", "Oculariste"),
        ("85", "Epithésiste"),
        ("86", "Technicien de laboratoire médical"),
        ("91", "Orthophoniste"),
        ("92", "Orthoptiste"),
        ("94", "Ergothérapeute"),
        ("95", "Diététicien"),
        ("96", "Psychomotricien"),
        ("98", "Manipulateur ERM"),
    ],
)

_G15_DEPRECATED: Final = [
    Profession(code, label, "G15", "sante", active=False)
    for code, label in [
        ("35", "Aide-soignant"),
        ("36", "Ambulancier"),
        ("37", "Auxiliaire de puériculture"),
        ("38", "Préparateur en pharmacie"),
        ("39", "Préparateur en pharmacie hospitalière"),
    ]
]

# Only the psychologist's code is confirmed (moved here from G15 with code 93).
# Other protected titles (psychothérapeute, ostéopathe, chiropracteur) belong
# in this table too: add them once their codes are checked.
_R95: Final = _table("R95", "titre_protege", [("93", "Psychologue")])

# TO CHECK: these codes are placeholders, not taken from the published
# TRE_R94 nomenclature; check them against the ANS terminology server before
# matching directory extractions on them.
_R94: Final = _table(
    "R94",
    "social",
    [
        ("11", "Assistant de service social"),
        ("12", "Éducateur spécialisé"),
        ("13", "Conseiller en économie sociale et familiale"),
        ("14", "Éducateur de jeunes enfants"),
        ("15", "Moniteur éducateur"),
    ],
) + _table("R94", "medico_social", [("16", "Accompagnant éducatif et social")])

_BY_KEY: Final[dict[tuple[str, str], Profession]] = {
    (p.table, p.code): p for p in (*_G15_ACTIVE, *_G15_DEPRECATED, *_R95, *_R94)
}


def _table_code(table: str) -> str:
    # Accept the spellings found in the wild: "G15", "TRE_G15",
    # "TRE_G15-ProfessionSante".
    name = table.strip().upper()
    name = name.removeprefix("TRE_")
    return name.split("-", 1)[0]


def _code(code: str | int) -> str:
    # Extraction files sometimes pad or space codes; "010" and "10" are one code.
    text = str(code).strip()
    if text.isascii() and text.isdigit():
        return str(int(text)).zfill(2)
    return text


def lookup(code: str | int, table: str = TABLE_G15) -> Profession | None:
    return _BY_KEY.get((_table_code(table), _code(code)))


def eligible(code: str | int, table: str = TABLE_G15) -> bool:
    """Whether this profession may hold a personal mailbox.

    Unknown codes are not eligible: only listed professions are in the trust
    space.
    """
    profession = lookup(code, table)
    return profession is not None and profession.eligible


def all_professions() -> list[Profession]:
    return list(_BY_KEY.values())


def choice_key(table: str, code: str | int) -> str:
    return f"{_table_code(table)}:{_code(code)}"


def parse_choice(key: str) -> Profession | None:
    """Reverse of choice_key, for the value a form posts back."""
    table, sep, code = key.partition(":")
    if not sep:
        return None
    return lookup(code, table)


def _sort_key(label: str) -> str:
    # Sort "Éducateur" with the E's, not after Z.
    decomposed = unicodedata.normalize("NFKD", label.casefold())
    return "".join(ch for ch in decomposed if not unicodedata.combining(ch))


def choices() -> list[tuple[str, str]]:
    """Eligible professions as ("G15:10", "Médecin") pairs, sorted by label."""
    selectable = [p for p in _BY_KEY.values() if p.eligible]
    selectable.sort(key=lambda p: (_sort_key(p.label), p.key))
    return [(p.key, p.label) for p in selectable]
