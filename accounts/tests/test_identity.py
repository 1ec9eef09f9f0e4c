"""Who may hold a mailbox, and how identifiers map to accounts."""

from __future__ import annotations

import pytest

from accounts import services
from accounts.identity import login_key, resolve
from mssante.lib.identifiers import IdentifierError
from tests import factories as f

pytestmark = pytest.mark.django_db


def test_rpps_adeli_and_national_ids_designate_the_same_account():
    doctor = f.professional()
    rpps = doctor.professional.id_number
    assert resolve(rpps).user == doctor
    assert resolve("8" + rpps).user == doctor
    assert resolve(f" {rpps[:5]} {rpps[5:]} ").user == doctor


def test_a_staff_name_never_designates_a_professional():
    doctor = f.professional()
    assert resolve(doctor.username + "x") is None
    assert login_key("equipe").kind == "staff"


def test_malformed_numbers_raise_with_the_expected_form():
    with pytest.raises(IdentifierError, match="11 chiffres"):
        login_key("1234567")


def test_a_doctor_is_eligible_and_a_deprecated_profession_is_not():
    doctor = f.professional(profession="10")
    assert services.is_eligible(doctor.professional)
    aide = f.professional(profession="35")
    assert not services.is_eligible(aide.professional)


def test_staff_may_make_a_professional_eligible_with_a_recorded_reason():
    aide = f.professional(profession="35")
    boss = f.staff()
    with pytest.raises(services.AccountError, match="motif"):
        services.override_eligibility(aide.professional, reason=" ", by=boss)
    services.override_eligibility(aide.professional, reason="Coordination de parcours", by=boss)
    aide.professional.refresh_from_db()
    assert services.is_eligible(aide.professional)
    assert aide.professional.eligibility_override_by == boss


def test_an_unknown_profession_is_refused_at_creation():
    with pytest.raises(services.AccountError, match="Profession inconnue"):
        services.create_professional(
            identifier=f.rpps(), first_name="A", last_name="B", profession_code="999"
        )


def test_an_identifier_cannot_be_registered_twice():
    doctor = f.professional()
    with pytest.raises(services.AccountError, match="existe déjà"):
        services.create_professional(
            identifier=doctor.professional.id_number,
            first_name="A",
            last_name="B",
            profession_code="10",
        )
