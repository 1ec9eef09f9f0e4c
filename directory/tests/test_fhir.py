"""The read-only FHIR endpoint shaped like the ANS Annuaire Santé."""

from __future__ import annotations

import pytest
from django.test import Client
from fhir.resources.R4B.bundle import Bundle

from directory import fhir
from directory.tests import factories as df

pytestmark = pytest.mark.django_db


@pytest.fixture
def directory(db):
    df.entry(
        address="jean.dupont@medecin.mssante.fr",
        first_name="Jean",
        last_name="DUPONT",
        civility="DR",
        national_id="810001234567",
        id_type="8",
        profession_code="10",
        profession_label="Médecin",
        specialty_code="SM54",
        specialty_label="Médecine générale (SM)",
        structure_id="1330000001",
        structure_name="CABINET DUPONT",
        digitization=True,
        city="BORDEAUX",
    )
    df.entry(
        address="dupont@ch-exemple.mssante.fr",
        first_name="Jean",
        last_name="DUPONT",
        national_id="810001234567",
        profession_code="10",
        profession_label="Médecin",
    )
    df.entry(
        address="cardiologie@ch-exemple.mssante.fr",
        kind="ORG",
        structure_id="1330000002",
        structure_name="CH EXEMPLE",
        service="Cardiologie",
        address_line="1 RUE DE L'HOPITAL",
        postcode="64000",
        city="PAU",
    )
    df.entry(
        address="labo@ch-exemple.mssante.fr",
        kind="APP",
        structure_id="1330000002",
        structure_name="CH EXEMPLE",
    )


def get(resource: str, **params) -> dict:
    response = Client().get(f"/fhir/{resource}", params)
    assert response.status_code == 200
    assert response["Content-Type"].startswith("application/fhir+json")
    body = response.json()
    Bundle.model_validate(body)  # raises on any shape error
    assert body["type"] == "searchset"
    return body


def test_practitioner_groups_the_mailboxes_of_one_professional(directory):
    body = get("Practitioner", identifier=f"{fhir.OID_IDNPS}|810001234567")
    assert body["total"] == 1
    resource = body["entry"][0]["resource"]
    assert resource["identifier"][0]["value"] == "810001234567"
    assert resource["name"][0]["family"] == "DUPONT"
    assert {t["value"] for t in resource["telecom"]} == {
        "jean.dupont@medecin.mssante.fr",
        "dupont@ch-exemple.mssante.fr",
    }


def test_mailboxes_are_telecoms_with_the_ans_extensions(directory):
    body = get("PractitionerRole", **{"mailbox-mss": "Jean.Dupont@medecin.mssante.fr"})
    assert body["total"] == 1
    role = body["entry"][0]["resource"]
    assert role["practitioner"]["reference"] == "Practitioner/810001234567"
    assert role["organization"]["reference"] == "Organization/st-1330000001"
    (contact,) = role["telecom"]
    assert contact["system"] == "email" and contact["value"] == "jean.dupont@medecin.mssante.fr"
    email_type, metadata = contact["extension"]
    assert email_type["valueCoding"]["code"] == "MSSANTE"
    assert metadata["url"] == fhir.EXT_MAILBOX
    parts = {e["url"]: e for e in metadata["extension"]}
    assert parts["type"]["valueCodeableConcept"]["coding"][0]["code"] == "PER"
    assert parts["digitization"]["valueBoolean"] is True


def test_organization_lists_organisational_and_applicative_boxes(directory):
    body = get("Organization", name="exemple")
    assert body["total"] == 1
    organization = body["entry"][0]["resource"]
    assert organization["name"] == "CH EXEMPLE"
    assert organization["identifier"][0]["value"] == "1330000002"
    kinds = {
        t["value"]: t["extension"][1]["extension"][0]["valueCodeableConcept"]["coding"][0]["code"]
        for t in organization["telecom"]
    }
    assert kinds == {
        "cardiologie@ch-exemple.mssante.fr": "ORG",
        "labo@ch-exemple.mssante.fr": "APP",
    }
    assert organization["address"][0]["city"] == "PAU"


def test_searches_by_name_and_pages_with_count(directory):
    assert get("Practitioner", name="dupont")["total"] == 1
    assert get("Practitioner", name="inconnu")["total"] == 0
    body = get("PractitionerRole", _count="1")
    assert body["total"] == 2 and len(body["entry"]) == 1
    assert [link["relation"] for link in body["link"]] == ["self", "next"]


def test_it_can_require_login(directory, settings):
    settings.DIRECTORY_FHIR_PUBLIC = False
    response = Client().get("/fhir/Practitioner")
    assert response.status_code == 401
    assert response.json()["resourceType"] == "OperationOutcome"
