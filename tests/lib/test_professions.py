import dataclasses

import pytest

from mssante.lib.professions import (
    Profession,
    all_professions,
    choice_key,
    choices,
    eligible,
    lookup,
    parse_choice,
)

ACTIVE_G15 = {
    "10": "Médecin",
    "21": "Pharmacien",
    "26": "Audioprothésiste",
    "28": "Opticien-Lunetier",
    "31": "Assistant dentaire",
    "32": "Physicien médical",
    "40": "Chirurgien-Dentiste",
    "50": "Sage-Femme",
    "60": "Infirmier",
    "69": "Infirmier psychiatrique",
    "70": "Masseur-Kinésithérapeute",
    "80": "Pédicure-Podologue",
    "81": "Orthoprothésiste",
    "82": "Podo-Orthésiste",
    "83": "Orthopédiste-Orthésiste",
    "84": "Oculariste",
    "85": "Epithésiste",
    "86": "Technicien de laboratoire médical",
    "91": "Orthophoniste",
    "92": "Orthoptiste",
    "94": "Ergothérapeute",
    "95": "Diététicien",
    "96": "Psychomotricien",
    "98": "Manipulateur ERM",
}


def _get(code: str | int, table: str = "G15") -> Profession:
    profession = lookup(code, table)
    assert profession is not None
    return profession


def test_the_g15_table_holds_exactly_the_active_health_professions() -> None:
    active = {p.code: p.label for p in all_professions() if p.table == "G15" and p.active}
    assert active == ACTIVE_G15


@pytest.mark.parametrize("code", sorted(ACTIVE_G15))
def test_every_active_health_profession_is_eligible(code: str) -> None:
    assert eligible(code)
    assert _get(code).category == "sante"


@pytest.mark.parametrize("code", ["35", "36", "37", "38", "39"])
def test_a_code_removed_from_g15_in_december_2024_is_not_eligible(code: str) -> None:
    profession = _get(code)
    assert profession.active is False
    assert profession.eligible is False
    assert eligible(code) is False


def test_a_psychologist_is_eligible_under_the_protected_titles_table() -> None:
    psychologist = _get("93", "R95")
    assert psychologist.label == "Psychologue"
    assert psychologist.category == "titre_protege"
    assert eligible("93", "R95")


def test_code_93_is_no_longer_a_health_profession_code() -> None:
    assert lookup("93", "G15") is None
    assert eligible("93") is False


@pytest.mark.parametrize(
    "label",
    [
        "Assistant de service social",
        "Éducateur spécialisé",
        "Conseiller en économie sociale et familiale",
        "Éducateur de jeunes enfants",
        "Moniteur éducateur",
    ],
)
def test_social_professions_are_eligible(label: str) -> None:
    matches = [p for p in all_professions() if p.table == "R94" and p.label == label]
    assert len(matches) == 1
    assert matches[0].category == "social"
    assert eligible(matches[0].code, "R94")


def test_medico_social_professions_are_eligible() -> None:
    medico_social = [p for p in all_professions() if p.category == "medico_social"]
    assert medico_social
    assert all(eligible(p.code, p.table) for p in medico_social)


@pytest.mark.parametrize(
    ("code", "table"), [("99", "G15"), ("10", "R94"), ("10", "X42"), ("", "G15")]
)
def test_an_unknown_code_is_not_eligible(code: str, table: str) -> None:
    assert lookup(code, table) is None
    assert eligible(code, table) is False


@pytest.mark.parametrize("table", ["G15", "g15", "TRE_G15", "TRE_G15-ProfessionSante", " G15 "])
def test_lookup_accepts_the_usual_spellings_of_a_table(table: str) -> None:
    assert _get("10", table).label == "Médecin"


@pytest.mark.parametrize("code", ["10", " 10 ", "010", 10])
def test_lookup_accepts_padded_or_numeric_codes(code: str | int) -> None:
    assert _get(code).label == "Médecin"


def test_a_profession_is_immutable() -> None:
    with pytest.raises(dataclasses.FrozenInstanceError):
        _get("10").label = "Autre"  # type: ignore[misc]


def test_eligibility_follows_the_active_flag() -> None:
    assert Profession("1", "x", "G15", "sante").eligible is True
    assert Profession("1", "x", "G15", "sante", active=False).eligible is False


def test_choices_offer_every_eligible_profession_and_nothing_else() -> None:
    keys = {key for key, _ in choices()}
    assert "G15:10" in keys
    assert "R95:93" in keys
    assert "G15:35" not in keys
    assert keys == {p.key for p in all_professions() if p.eligible}


def test_choices_are_sorted_by_label_ignoring_accents() -> None:
    labels = [label for _, label in choices()]
    assert labels.index("Éducateur spécialisé") < labels.index("Ergothérapeute")
    assert labels.index("Diététicien") < labels.index("Éducateur de jeunes enfants")


def test_choice_keys_read_back_to_their_profession() -> None:
    for key, label in choices():
        profession = parse_choice(key)
        assert profession is not None
        assert profession.label == label
        assert choice_key(profession.table, profession.code) == key


@pytest.mark.parametrize("key", ["", "G15", "G15:", "G15:99", "X:10"])
def test_a_bad_choice_key_reads_back_to_nothing(key: str) -> None:
    assert parse_choice(key) is None
