"""Clients logged in the way a user logs in: identifier and password, then the code."""

from __future__ import annotations

from typing import Any

from django.test import Client

from accounts.models import User
from tests import factories


def logged_in(user: User, **client_kwargs: Any) -> Client:
    """A client past the login page and the second factor, as ``user``."""
    client = Client(**client_kwargs)
    identifier = user.professional.id_number if user.kind == "professional" else user.username
    client.post("/connexion/", {"identifier": identifier, "password": factories.PASSWORD})
    response = client.post("/connexion/code/", {"code": factories.code_for(user)})
    assert response.status_code == 302, "login failed"
    return client
