"""Every page a persona reaches, asked again with hostile query parameters: never a 500.

Bad integers, huge page numbers, bad dates, empty values, a NUL, a query string
longer than any form makes: each page answers with itself, a redirect, or a 4xx.
The parameter names are those the pages' own links use (pagination, cursors, admin
filters and orderings) and the ones views read.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit

import pytest
from django.test import Client

from tests.crawl import crawl, shape
from tests.personas import logged_in
from tests.test_forms_hostile_input import people  # noqa: F401 - the same world

pytestmark = pytest.mark.django_db

READ_BY_VIEWS = [
    "page",
    "avant",
    "images",
    "mois",
    "format",
    "next",
    "q",
    "p",
    "o",
    "e",
    "all",
    "_count",
    "_offset",
    "name",
    "identifier",
    "_changelist_filters",
    "_to_field",
    "_popup",
]
VALUES = [
    "abc",
    "-1",
    "0",
    "99999999999999999999999999999",
    "9" * 5000,
    "1e999",
    "2024-13-45",
    "",
    "%",
    "\x00",
    "[]",
    "é" * 50,
]
PAGES = {"anonymous": 10, "professional": 60, "patient": 25, "staff": 60}


@pytest.mark.parametrize("persona", ["anonymous", "professional", "patient", "staff"])
def test_no_page_gives_a_server_error_on_hostile_query_parameters(
    people: dict[str, Any],  # noqa: F811
    persona: str,
) -> None:
    if persona == "anonymous":
        client, start = Client(raise_request_exception=False), ["/connexion/"]
    else:
        client = logged_in(people[persona], raise_request_exception=False)
        start = {
            "professional": ["/messagerie/", "/annuaire/", "/messagerie/preferences/"],
            "patient": ["/patient/", "/patient/notifications/"],
            "staff": ["/admin/"],
        }[persona]
    site = crawl(client, start, PAGES[persona])
    names = set(READ_BY_VIEWS)
    for page in site.pages:
        names |= {name for name, _v in parse_qsl(urlsplit(page).query, keep_blank_values=True)}
    failures = []
    done: set[str] = set()
    for page in site.pages:
        path = urlsplit(page).path
        if shape(path) in done:
            continue
        done.add(shape(path))
        for value in VALUES:
            # Every name at once, and once more doubled (a list where one value is read).
            query = urlencode([(n, value) for n in sorted(names)] + [("page", value)])
            if len(value) > 100:
                # One long value (under the 8 kB the portal reads; above it is a 414).
                query = urlencode([("page", value)])
            response = client.get(f"{path}?{query}")
            if response.status_code >= 500:
                failures.append(f"{path}?…={value[:20]!r}: {response.status_code}")
    assert not failures, "\n".join(failures)
    assert len(done) >= {"anonymous": 1, "professional": 10, "patient": 3, "staff": 15}[persona]


def test_a_huge_page_number_in_the_directory_shows_the_last_page(
    people: dict[str, Any],  # noqa: F811
) -> None:
    from directory.tests import factories as df

    for i in range(25):
        df.entry(address=f"h{i}@medecin.mssante.fr", first_name="HELENE", last_name=f"LEGER{i:02d}")
    client = logged_in(people["professional"])
    results = client.post("/annuaire/", {"q": "Hélène"})["Location"]
    for page in ("99999999999999999999999999", "-5", "abc", "9" * 5000):
        response = client.get(results, {"page": page})
        assert response.status_code == 200, page


@pytest.mark.parametrize("persona", ["professional", "patient"])
def test_no_page_gives_a_server_error_on_an_id_out_of_range(
    people: dict[str, Any],  # noqa: F811
    persona: str,
) -> None:
    # PostgreSQL's bigint stops at 2**63 - 1: a longer id must be a 404, not a DataError.
    client = logged_in(people[persona], raise_request_exception=False)
    start = {"professional": ["/messagerie/"], "patient": ["/patient/"]}[persona]
    site = crawl(client, start, PAGES[persona])
    tried: set[str] = set()
    for page in site.pages:
        parts = urlsplit(page).path.split("/")
        for i, part in enumerate(parts):
            if not part.isdigit():
                continue
            for huge in (str(2**63), "9" * 40):
                path = "/".join([*parts[:i], huge, *parts[i + 1 :]])
                if shape(path) + huge in tried:
                    continue
                tried.add(shape(path) + huge)
                response = client.get(path)
                assert response.status_code in (404, 405), (path, response.status_code)
    assert tried
