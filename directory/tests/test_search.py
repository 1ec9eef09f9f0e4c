"""The search page and the compose autocomplete."""

from __future__ import annotations

import pytest
from django.test import Client

from directory import selectors
from directory.tests import factories as df

pytestmark = pytest.mark.django_db
SEARCH = "/annuaire/"
AUTOCOMPLETE = "/annuaire/autocomplete"


@pytest.fixture
def people(db):
    return {
        "helene": df.entry(
            address="helene.leger@medecin.mssante.fr",
            first_name="HELENE",
            last_name="LEGER",
            profession_code="10",
            profession_label="Médecin",
            city="LYON",
            postcode="69003",
            department="69",
        ),
        "dupont": df.entry(
            address="jean.dupont@medecin.mssante.fr",
            first_name="Jean",
            last_name="DUPONT",
            profession_code="60",
            profession_label="Infirmier",
            city="BORDEAUX",
            postcode="33000",
            department="33",
        ),
        "dupontel": df.entry(
            address="a.dupontel@medecin.mssante.fr",
            first_name="Albert",
            last_name="DUPONTEL",
            profession_code="10",
            profession_label="Médecin",
            city="PARIS",
            postcode="75015",
        ),
        "cardio": df.entry(
            address="cardiologie@ch-exemple.mssante.fr",
            kind="ORG",
            structure_name="CH EXEMPLE",
            service="Cardiologie",
            city="PAU",
        ),
        "robot": df.entry(address="labo@ch-exemple.mssante.fr", kind="APP", structure_name="LABO"),
        "gone": df.entry(address="parti@medecin.mssante.fr", last_name="DUPONT", active=False),
    }


def addresses(rows) -> list[str]:
    return [r.address if hasattr(r, "address") else r["address"] for r in rows]


def test_an_accented_query_finds_the_unaccented_name(people):
    found = selectors.search(selectors.SearchFilters(q="Hélène"))
    assert addresses(found) == ["helene.leger@medecin.mssante.fr"]
    assert addresses(selectors.search(selectors.SearchFilters(q="léger"))) == addresses(found)


def test_exact_surname_matches_come_first(people):
    found = selectors.search(selectors.SearchFilters(q="dupont"))
    assert addresses(found) == ["jean.dupont@medecin.mssante.fr", "a.dupontel@medecin.mssante.fr"]


def test_filters_narrow_by_profession_city_place_and_type(people):
    search = selectors.search
    assert addresses(search(selectors.SearchFilters(profession="60"))) == [
        "jean.dupont@medecin.mssante.fr"
    ]
    assert addresses(search(selectors.SearchFilters(city="lyon"))) == [
        "helene.leger@medecin.mssante.fr"
    ]
    assert addresses(search(selectors.SearchFilters(place="33"))) == [
        "jean.dupont@medecin.mssante.fr"
    ]
    assert addresses(search(selectors.SearchFilters(place="750"))) == [
        "a.dupontel@medecin.mssante.fr"
    ]
    assert addresses(search(selectors.SearchFilters(kind="ORG"))) == [
        "cardiologie@ch-exemple.mssante.fr"
    ]


def test_search_hides_inactive_and_applicative_boxes(people):
    found = addresses(selectors.search(selectors.SearchFilters(q="ch exemple")))
    assert found == ["cardiologie@ch-exemple.mssante.fr"]
    assert "parti@medecin.mssante.fr" not in addresses(
        selectors.search(selectors.SearchFilters(q="dupont"))
    )


def test_search_input_is_neither_sql_nor_a_pattern(people):
    for query in ["%", "_", "%%", "' OR 1=1 --", ".*", "zz.*", "[a-z]+"]:
        assert list(selectors.search(selectors.SearchFilters(q=query))) == []
        assert selectors.autocomplete(query) == []


def test_the_search_page_lists_results(doctor_client, people):
    response = doctor_client.post(SEARCH, {"q": "Hélène", "city": "Lyon"}, follow=True)
    assert response.status_code == 200
    body = response.content.decode()
    assert "helene.leger@medecin.mssante.fr" in body
    assert "1 résultat" in body


def test_the_search_page_is_for_professionals(patient_client, people):
    assert patient_client.post(SEARCH, {"q": "dupont"}).status_code == 404
    assert Client().get(SEARCH)["Location"].startswith("/connexion/")


def test_autocomplete_suggests_after_two_characters(doctor_client, people):
    assert doctor_client.get(AUTOCOMPLETE, {"q": "d"}).json() == []
    suggestions = doctor_client.get(AUTOCOMPLETE, {"q": "dup"}).json()
    assert suggestions[0] == {
        "address": "jean.dupont@medecin.mssante.fr",
        "name": "Jean DUPONT",
        "profession": "Infirmier",
        "city": "BORDEAUX",
        "type": "PER",
    }
    assert addresses(suggestions) == [
        "jean.dupont@medecin.mssante.fr",
        "a.dupontel@medecin.mssante.fr",
    ]


def test_autocomplete_finds_by_address_service_and_first_name(people):
    assert addresses(selectors.autocomplete("cardiologie@")) == [
        "cardiologie@ch-exemple.mssante.fr"
    ]
    assert addresses(selectors.autocomplete("Cardio")) == ["cardiologie@ch-exemple.mssante.fr"]
    assert addresses(selectors.autocomplete("jean dup")) == ["jean.dupont@medecin.mssante.fr"]
    assert addresses(selectors.autocomplete("hélène")) == ["helene.leger@medecin.mssante.fr"]


def test_autocomplete_never_offers_applicative_or_inactive_boxes(people):
    assert selectors.autocomplete("labo") == []
    assert "parti@medecin.mssante.fr" not in addresses(selectors.autocomplete("dupont"))


def test_autocomplete_returns_at_most_ten(people):
    for i in range(15):
        df.entry(address=f"m{i}@medecin.mssante.fr", last_name=f"MARTIN{i:02d}")
    assert len(selectors.autocomplete("martin")) == 10


def test_autocomplete_requires_login(people, patient_client):
    response = Client().get(AUTOCOMPLETE, {"q": "dupont"})
    assert response.status_code == 401
    assert patient_client.get(AUTOCOMPLETE, {"q": "dupont"}).status_code == 403


def test_the_search_page_makes_as_many_queries_for_25_results_as_for_1(doctor_client, people):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    with CaptureQueriesContext(connection) as one:
        doctor_client.post(SEARCH, {"q": "helene"}, follow=True)
    for i in range(25):
        df.entry(address=f"h{i}@medecin.mssante.fr", first_name="Hélène", last_name=f"X{i}")
    with CaptureQueriesContext(connection) as many:
        doctor_client.post(SEARCH, {"q": "helene"}, follow=True)
    assert len(many) == len(one)
