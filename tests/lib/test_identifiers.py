from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from mssante.lib.identifiers import (
    FINESS_INVALID,
    INS_BAD_FORMAT,
    INS_BAD_KEY,
    INS_BAD_SEX,
    INS_OID_DEMO,
    INS_OID_LABELS,
    INS_OID_NIA,
    INS_OID_NIR,
    INS_OID_TEST,
    PROFESSIONAL_ID_INVALID,
    Finess,
    IdentifierError,
    Ins,
    ProfessionalId,
    looks_like_ins,
    make_ins,
    make_rpps,
    normalize,
    parse_finess,
    parse_ins,
    parse_professional_id,
)

# 10003512349 carries a correct Luhn key, 10003512345 does not.
RPPS_OK = "10003512349"
RPPS_BAD_KEY = "10003512345"


# --- normalize -------------------------------------------------------------


def test_normalize_removes_spaces_dots_dashes_and_non_breaking_spaces() -> None:
    assert normalize("  1 00.03-51\u00a023\u202f49 \n") == "10003512349"


# --- RPPS / Adeli ----------------------------------------------------------


def test_it_reads_an_rpps_number() -> None:
    pid = parse_professional_id(RPPS_OK)
    assert pid == ProfessionalId("rpps", RPPS_OK)
    assert pid.national_id == "8" + RPPS_OK
    assert pid.luhn_ok


def test_it_accepts_an_rpps_whose_luhn_key_fails_but_flags_it() -> None:
    pid = parse_professional_id(RPPS_BAD_KEY)
    assert pid.kind == "rpps"
    assert pid.luhn_ok is False


def test_it_reads_an_adeli_number() -> None:
    pid = parse_professional_id("751234567")
    assert pid == ProfessionalId("adeli", "751234567")
    assert pid.national_id == "0751234567"
    assert pid.luhn_ok


def test_it_reads_an_rpps_national_id() -> None:
    assert parse_professional_id("8" + RPPS_OK) == ProfessionalId("rpps", RPPS_OK)


def test_it_reads_an_adeli_national_id() -> None:
    assert parse_professional_id("0751234567") == ProfessionalId("adeli", "751234567")


@pytest.mark.parametrize(
    "raw",
    ["100 035 123 49", " 1.00.03.51.23.49 ", "8-10003-512349", "8\u00a010003512349"],
)
def test_it_tolerates_separators_in_a_professional_id(raw: str) -> None:
    assert parse_professional_id(raw).number == RPPS_OK


@pytest.mark.parametrize(
    "raw",
    [
        "",
        "   ",
        "1234",
        "1000351234",  # 10 digits not starting with 0
        "100035123490",  # 12 digits not starting with 8
        "1000351234A",
        "75123456X",
        "".join(chr(0xFF10 + int(d)) for d in RPPS_OK),  # full-width digits
        "".join(chr(0x0660 + int(d)) for d in RPPS_OK),  # Arabic-Indic digits
        "9" + RPPS_OK + "0",
    ],
)
def test_it_refuses_a_malformed_professional_id_with_the_expected_form(raw: str) -> None:
    with pytest.raises(IdentifierError) as excinfo:
        parse_professional_id(raw)
    assert str(excinfo.value) == PROFESSIONAL_ID_INVALID
    assert "11 chiffres" in PROFESSIONAL_ID_INVALID
    assert "9 chiffres" in PROFESSIONAL_ID_INVALID


def test_identifier_error_is_a_value_error() -> None:
    assert issubclass(IdentifierError, ValueError)


def test_a_professional_id_cannot_be_built_with_the_wrong_length() -> None:
    with pytest.raises(IdentifierError):
        ProfessionalId("rpps", "751234567")


def test_make_rpps_appends_a_luhn_key() -> None:
    assert make_rpps("1000351234") == RPPS_OK
    assert parse_professional_id(make_rpps("1999999999")).luhn_ok


@pytest.mark.parametrize("prefix", ["", "123", "10003512349", "10003512a4"])
def test_make_rpps_refuses_anything_but_ten_digits(prefix: str) -> None:
    with pytest.raises(ValueError):
        make_rpps(prefix)


@given(st.text(alphabet="0123456789", min_size=10, max_size=10))
def test_every_rpps_made_by_make_rpps_passes_the_luhn_check(prefix: str) -> None:
    assert parse_professional_id(make_rpps(prefix)).luhn_ok


# --- INS -------------------------------------------------------------------


def test_it_reads_an_ins_with_a_correct_key() -> None:
    ins = parse_ins("189127512501282")
    assert ins == Ins("189127512501282")
    assert ins.number == "1891275125012"
    assert ins.key == "82"


def test_it_tolerates_spaces_in_an_ins() -> None:
    assert parse_ins(" 1 89 12 75 125 012 82 ").matricule == "189127512501282"


def test_it_reads_a_corsican_2a_ins() -> None:
    # 2A counts as 19 before the modulo 97.
    assert parse_ins("2 53 07 2A 073 004 43").matricule == "253072A07300443"


def test_it_reads_a_corsican_2b_ins() -> None:
    # 2B counts as 18 before the modulo 97.
    assert parse_ins("253072B07300470").matricule == "253072B07300470"


def test_it_reads_a_corsican_ins_typed_in_lower_case() -> None:
    assert parse_ins("253072b07300470").matricule == "253072B07300470"


def test_it_refuses_an_ins_with_a_wrong_key() -> None:
    with pytest.raises(IdentifierError) as excinfo:
        parse_ins("189127512501283")
    assert str(excinfo.value) == INS_BAD_KEY


def test_it_refuses_a_corsican_ins_with_the_key_of_the_other_department() -> None:
    with pytest.raises(IdentifierError) as excinfo:
        parse_ins("253072B07300443")
    assert str(excinfo.value) == INS_BAD_KEY


@pytest.mark.parametrize(
    "raw",
    [
        "",
        "18912751250128",  # 14 characters
        "1891275125012823",  # 16 characters
        "1891275125012A2",
        "253072C07300443",  # only 2A and 2B are letters
        "2530A2A07300443",
    ],
)
def test_it_refuses_a_malformed_ins_with_the_length_message(raw: str) -> None:
    with pytest.raises(IdentifierError) as excinfo:
        parse_ins(raw)
    assert str(excinfo.value) == INS_BAD_FORMAT


def test_it_refuses_an_ins_with_an_impossible_first_digit() -> None:
    bad = "5" + make_ins(1, 89, 12, "75", 125, 12)[1:13]
    with pytest.raises(IdentifierError) as excinfo:
        parse_ins(bad + "00")
    assert str(excinfo.value) == INS_BAD_SEX


def test_the_ins_messages_are_distinct() -> None:
    assert len({INS_BAD_FORMAT, INS_BAD_KEY, INS_BAD_SEX}) == 3


def test_make_ins_computes_the_key() -> None:
    assert make_ins(1, 1989, 12, "75", "125", 12) == "189127512501282"
    assert make_ins(2, 53, 7, "2a", 73, 4) == "253072A07300443"
    assert make_ins(2, 53, 7, "2B", 73, 4) == "253072B07300470"


@pytest.mark.parametrize(
    ("args", "kwargs"),
    [
        ((5, 89, 12, "75", 125, 12), {}),
        ((1, 89, 100, "75", 125, 12), {}),
        ((1, 89, 12, "2C", 125, 12), {}),
        ((1, 89, 12, "75", 1000, 12), {}),
        ((1, 89, 12, "75", -1, 12), {}),
        ((1, 89, 12, "75", 125, 1000), {}),
    ],
)
def test_make_ins_refuses_out_of_range_parts(args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
    with pytest.raises(ValueError):
        make_ins(*args, **kwargs)


def test_an_ins_cannot_be_built_with_the_wrong_shape() -> None:
    with pytest.raises(IdentifierError):
        Ins("1234")


ins_parts = st.tuples(
    st.sampled_from([1, 2, 3, 4, 7, 8]),
    st.integers(min_value=0, max_value=99),
    st.integers(min_value=0, max_value=99),
    st.one_of(
        st.integers(min_value=0, max_value=99).map(lambda d: f"{d:02d}"),
        st.sampled_from(["2A", "2B"]),
    ),
    st.integers(min_value=0, max_value=999),
    st.integers(min_value=0, max_value=999),
)


@given(ins_parts)
def test_every_ins_made_by_make_ins_is_read_back(
    parts: tuple[int, int, int, str, int, int],
) -> None:
    matricule = make_ins(*parts)
    assert len(matricule) == 15
    assert looks_like_ins(matricule)
    assert parse_ins(matricule).matricule == matricule


@given(ins_parts, st.integers(min_value=0, max_value=99))
def test_an_ins_with_a_changed_key_is_refused(
    parts: tuple[int, int, int, str, int, int], other_key: int
) -> None:
    matricule = make_ins(*parts)
    wrong = f"{other_key:02d}"
    if wrong == matricule[13:]:
        wrong = f"{(other_key + 1) % 100:02d}"
    with pytest.raises(IdentifierError) as excinfo:
        parse_ins(matricule[:13] + wrong)
    assert str(excinfo.value) == INS_BAD_KEY


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("189127512501282", True),
        ("1 89 12 75 125 012 82", True),
        ("253072A07300443", True),
        ("253072b07300470", True),
        ("189127512501283", True),  # key is checked later, by parse_ins
        (RPPS_OK, False),
        ("8" + RPPS_OK, False),
        ("0751234567", False),
        ("253072C07300443", False),
        ("18912751250128", False),
        ("", False),
    ],
)
def test_looks_like_ins_tells_an_ins_from_a_professional_id(raw: str, expected: bool) -> None:
    assert looks_like_ins(raw) is expected


def test_the_ins_oids_are_the_published_ones() -> None:
    assert INS_OID_NIR == "1.2.250.1.213.1.4.8"
    assert INS_OID_NIA == "1.2.250.1.213.1.4.9"
    assert INS_OID_TEST == "1.2.250.1.213.1.4.10"
    assert INS_OID_DEMO == "1.2.250.1.213.1.4.11"
    assert set(INS_OID_LABELS) == {INS_OID_NIR, INS_OID_NIA, INS_OID_TEST, INS_OID_DEMO}


# --- FINESS ----------------------------------------------------------------


def test_it_reads_a_finess_number_and_checks_its_luhn_key() -> None:
    finess = parse_finess("750 712 184")
    assert finess == Finess("750712184")
    assert finess.luhn_ok is True


def test_it_reads_a_finess_number_whose_key_fails_but_flags_it() -> None:
    assert parse_finess("750712185").luhn_ok is False


def test_it_reads_a_corsican_finess_without_guessing_its_key() -> None:
    finess = parse_finess("2a0000001")
    assert finess.number == "2A0000001"
    assert finess.luhn_ok is None


@pytest.mark.parametrize("raw", ["", "75071218", "7507121840", "2C0000001", "75071218X"])
def test_it_refuses_a_malformed_finess(raw: str) -> None:
    with pytest.raises(IdentifierError) as excinfo:
        parse_finess(raw)
    assert str(excinfo.value) == FINESS_INVALID
