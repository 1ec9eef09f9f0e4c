"""Error pages: French, on the DSFR, with a way back; the 500 page even with the database down."""

from __future__ import annotations

from typing import Any
from unittest import mock

import pytest
from django.db import OperationalError
from django.db.backends.base.base import BaseDatabaseWrapper
from django.test import Client

from tests import factories
from tests.personas import logged_in

pytestmark = pytest.mark.django_db


def _assert_dsfr_page(response: Any, status: int, *words: str) -> str:
    assert response.status_code == status
    assert response["Content-Type"].startswith("text/html")
    html = response.content.decode()
    assert 'lang="fr"' in html
    assert "dsfr.min.css" in html  # the design system, not Django's bare page
    assert 'class="fr-header"' in html
    assert "Retour à l&#x27;accueil" in html or "Retour à l'accueil" in html
    assert 'href="/"' in html
    for word in words:
        assert word in html, word
    # Nothing of Django's own English pages.
    assert "Not Found" not in html
    assert "Server Error" not in html
    assert "Forbidden" not in html
    return html


def test_a_professional_opening_the_admin_gets_a_clear_403_not_a_redirect_loop() -> None:
    client = logged_in(factories.professional())
    response = client.get("/admin/")
    seen = []
    while response.status_code == 302 and len(seen) < 5:
        seen.append(response["Location"])
        response = client.get(response["Location"])
    assert len(seen) <= 1, seen
    _assert_dsfr_page(response, 403, "réservée à l&#x27;équipe")


def test_staff_still_reach_the_admin() -> None:
    client = logged_in(factories.staff())
    assert client.get("/admin/").status_code == 200


def test_an_anonymous_visitor_of_the_admin_is_sent_to_the_portal_login() -> None:
    response = Client().get("/admin/", follow=True)
    assert response.redirect_chain[-1][0].startswith("/connexion/")
    assert response.status_code == 200


def test_an_unknown_page_is_a_french_404() -> None:
    _assert_dsfr_page(Client().get("/nulle-part/"), 404, "Page non trouvée")


def test_an_unknown_message_of_a_logged_in_professional_is_a_french_404() -> None:
    client = logged_in(factories.professional())
    _assert_dsfr_page(client.get("/messagerie/message/999999/"), 404, "Page non trouvée")


def test_a_form_without_its_csrf_token_gets_a_french_page_saying_what_to_do() -> None:
    client = Client(enforce_csrf_checks=True)
    response = client.post("/connexion/", {"identifier": "x", "password": "y"})
    html = _assert_dsfr_page(response, 403, "Formulaire expiré", "Rien n&#x27;a été enregistré")
    assert 'href="/"' in html
    # Back to the page the form was on, when the browser says which (one of ours).
    response = client.post(
        "/connexion/", {"identifier": "x"}, headers={"Referer": "http://testserver/connexion/"}
    )
    assert 'href="/connexion/"' in response.content.decode()
    response = client.post(
        "/connexion/", {"identifier": "x"}, headers={"Referer": "https://ailleurs.example/"}
    )
    assert "ailleurs" not in response.content.decode()


def test_a_post_only_address_opened_in_the_browser_is_a_french_405() -> None:
    client = logged_in(factories.professional())
    response = client.get("/messagerie/message/1/supprimer/")
    _assert_dsfr_page(response, 405, "Action impossible depuis cette adresse")
    assert response["Allow"] == "POST"


def test_a_400_is_a_french_page() -> None:
    response = Client().get("/connexion/", {"next": "\x00"})
    _assert_dsfr_page(response, 400, "Requête refusée", "caractère interdit")


@pytest.mark.parametrize("logged", [False, True])
def test_the_database_down_is_a_french_503_saying_to_come_back(settings: Any, logged: bool) -> None:
    # Logged in, the session fails before any view (handler500); anonymous, the health
    # view's own query fails (the middleware): both are a failure that will pass.
    settings.DEBUG = False
    client = logged_in(factories.professional()) if logged else Client()
    client.raise_request_exception = False
    with mock.patch.object(
        BaseDatabaseWrapper,
        "ensure_connection",
        side_effect=OperationalError("connection failed: host db port 5432"),
    ):
        response = client.get("/messagerie/" if logged else "/sante/")
    html = _assert_dsfr_page(
        response, 503, "Service momentanément indisponible", "Réessayez dans quelques minutes"
    )
    assert response["Retry-After"] == "120"
    # Nothing of the failure reaches the page.
    assert "5432" not in html
    assert "OperationalError" not in html


@pytest.mark.parametrize("logged", [False, True])
def test_a_bug_of_ours_is_a_french_500_page(settings: Any, logged: bool) -> None:
    settings.DEBUG = False
    client = logged_in(factories.professional()) if logged else Client()
    client.raise_request_exception = False
    with mock.patch.object(
        BaseDatabaseWrapper, "ensure_connection", side_effect=RuntimeError("secret detail 5432")
    ):
        response = client.get("/messagerie/" if logged else "/sante/")
    html = _assert_dsfr_page(response, 500, "Erreur inattendue", "Réessayez dans quelques instants")
    assert "5432" not in html
    assert "RuntimeError" not in html
