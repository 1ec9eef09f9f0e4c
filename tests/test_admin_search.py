"""Staff search the admin lists by name or INS without the terms ever being in a URL.

A search in a GET query string lands in every access log between the browser and us
(and in the browser's history). The admin's search box is POSTed, the terms kept in
the session, and the list reopened with only an opaque id: the same rule as the
webmail's and the directory's searches (mssante.saved_search).
"""

from __future__ import annotations

import re
from typing import Any

import pytest
from django.test import Client

from tests import factories
from tests.personas import logged_in

pytestmark = pytest.mark.django_db

USERS = "/admin/accounts/user/"


def _urls_seen(response: Any) -> list[str]:
    """Every URL the browser asked for or was sent to, and every link of the page."""
    asked = [hop[0] for hop in response.redirect_chain] + [response.request["PATH_INFO"]]
    asked.append(response.request.get("QUERY_STRING", ""))
    html = response.content.decode()
    return asked + re.findall(r'(?:href|action|value)="([^"]*[?/][^"]*)"', html)


def _search_box(html: str) -> tuple[str, dict[str, str]]:
    """The changelist's search form as a browser sends it: its action and its fields."""
    form = re.search(r'<form id="changelist-search"(.*?)</form>', html, re.S)
    assert form is not None
    assert 'method="post"' in form.group(1)  # the search box posts
    action = re.search(r'action="([^"]+)"', form.group(1))
    fields = dict(re.findall(r'<input type="hidden" name="([^"]+)" value="([^"]*)"', form.group(1)))
    return action.group(1), {k: v.replace("&amp;", "&") for k, v in fields.items()}


def test_staff_search_a_patient_by_name_and_the_name_is_in_no_url():
    staff = factories.staff()
    factories.patient()  # born MOREAU, as the factory writes them
    client = logged_in(staff)
    action, fields = _search_box(client.get(USERS, {"kind__exact": "patient"}).content.decode())
    found = client.post(action, {**fields, "q": "MOREAU"}, follow=True)
    assert found.status_code == 200
    html = found.content.decode()
    assert "1 résultat" in html or "1 result" in html
    assert 'value="MOREAU"' in html  # the box shows what was searched
    seen = _urls_seen(found)
    assert not [u for u in seen if "MOREAU" in u.upper() and not u.startswith("MOREAU")]
    # The filter chosen before searching is kept, the terms ride as an id.
    final = found.redirect_chain[-1][0]
    assert "kind__exact=patient" in final and "_s=" in final and "q=" not in final


def test_a_saved_search_id_is_worth_nothing_in_another_session():
    staff, other = factories.staff(), factories.staff(username="equipe2")
    factories.patient()
    found = logged_in(staff).post("/admin/recherche/", {"q": "MOREAU", "next": USERS})
    elsewhere = logged_in(other).get(found["Location"])
    assert elsewhere.status_code == 200
    assert 'value="MOREAU"' not in elsewhere.content.decode()
    assert "expiré" in elsewhere.content.decode()


@pytest.mark.parametrize(
    "target", ["https://ailleurs.example/admin/", "//ailleurs.example/admin/", "/messagerie/"]
)
def test_the_search_only_leads_back_into_the_admin(target: str):
    response = logged_in(factories.staff()).post(
        "/admin/recherche/", {"q": "MOREAU", "next": target}
    )
    assert response.status_code == 400


def test_the_search_box_is_for_staff_only():
    doctor = factories.professional()
    response = logged_in(doctor).post("/admin/recherche/", {"q": "MOREAU", "next": USERS})
    assert response.status_code in (302, 403)
    assert "_s=" not in response.get("Location", "")
    anonymous = Client().post("/admin/recherche/", {"q": "MOREAU", "next": USERS})
    assert "_s=" not in anonymous.get("Location", "")
