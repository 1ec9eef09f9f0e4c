"""The portal wears the operator's name and logo, never the State's mark.

The Marianne and the "République Française" block are reserved for State services; an
MSSanté operator is not one. By default the pages show the operator's name alone; the
settings OPERATOR_NAME, OPERATOR_SHORT_NAME and OPERATOR_LOGO change it everywhere: the
portal's header and footer, the login page, the error pages, the admin, the e-mails.
"""

from __future__ import annotations

from typing import Any

import pytest
from django.core import mail
from django.test import Client

from accounts import services as accounts
from tests import factories
from tests.personas import Person, login

pytestmark = pytest.mark.django_db

NAME = "Santé Ouest Messagerie"


@pytest.fixture
def operator(settings: Any) -> None:
    settings.OPERATOR_NAME = NAME
    settings.OPERATOR_SHORT_NAME = "SOM"
    settings.OPERATOR_LOGO = "https://cdn.sante-ouest.test/logo.svg"


def test_the_default_login_page_has_no_state_mark_and_shows_the_operators_name() -> None:
    html = Client().get("/connexion/").content.decode()
    assert "République" not in html and "Marianne" not in html and "fr-logo" not in html
    assert "Messagerie sécurisée de santé" in html


def test_the_configured_name_and_logo_are_on_the_login_page(operator: None) -> None:
    html = Client().get("/connexion/").content.decode()
    assert "République" not in html
    assert f'<p class="fr-header__service-title">{NAME}</p>' in html
    assert html.count('src="https://cdn.sante-ouest.test/logo.svg"') == 2  # header, footer
    assert f'alt="{NAME}"' in html


def test_the_webmail_and_the_error_pages_wear_the_operators_name(
    operator: None, claire: Person
) -> None:
    client = login(claire.user)
    for url in ("/messagerie/", "/messagerie/nulle-part/"):
        html = client.get(url, follow=True).content.decode()
        assert "République" not in html, url
        assert NAME in html, url


def test_the_admin_header_shows_the_operators_short_name(
    operator: None, staff_client: Client
) -> None:
    html = staff_client.get("/admin/").content.decode()
    assert "République" not in html
    assert "SOM" in html and "<title>" in html and "| SOM</title>" in html
    assert 'src="https://cdn.sante-ouest.test/logo.svg"' in html


def test_the_emails_are_signed_with_the_operators_name(
    operator: None, staff: Any, django_capture_on_commit_callbacks: Any
) -> None:
    doctor = factories.professional(email="odile@perso.test", enrol=False)
    with django_capture_on_commit_callbacks(execute=True):
        accounts.email_activation_link(doctor, by=staff)
    (sent,) = mail.outbox
    assert sent.body.rstrip().endswith(NAME)
    assert "République" not in sent.body
