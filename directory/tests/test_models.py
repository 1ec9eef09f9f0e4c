"""Organisations: identified by FINESS and/or SIRET."""

from __future__ import annotations

import pytest
from django.core.exceptions import ValidationError

from directory.models import Organisation

pytestmark = pytest.mark.django_db


def test_an_organisation_needs_a_valid_finess_or_siret():
    with pytest.raises(ValidationError) as exc:
        Organisation(name="Sans identifiant").full_clean()
    assert "finess" in exc.value.message_dict
    with pytest.raises(ValidationError) as exc:
        Organisation(name="Mauvais", finess="12", siret="12345678900000").full_clean()
    assert set(exc.value.message_dict) == {"finess", "siret"}


def test_a_valid_organisation_is_saved_with_clean_identifiers():
    organisation = Organisation(name="CH Exemple", finess="330000001", siret="73282932000074")
    organisation.full_clean()
    organisation.save()
    assert (organisation.finess, organisation.siret) == ("330000001", "73282932000074")
