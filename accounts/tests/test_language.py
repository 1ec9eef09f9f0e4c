"""French by default, English on request."""

import pytest
from django.test import Client

pytestmark = pytest.mark.django_db


def test_the_portal_speaks_french_by_default():
    body = Client().get("/connexion/").content.decode()
    assert '<html lang="fr"' in body and "Continuer" in body


def test_the_language_switch_gives_the_english_catalogue():
    client = Client()
    client.post("/langue/", {"language": "en", "next": "/connexion/"})
    body = client.get("/connexion/").content.decode()
    assert '<html lang="en"' in body and "Continue" in body
    assert (
        "11 digits"
        in client.post("/connexion/", {"identifier": "123", "password": "x"}).content.decode()
    )
