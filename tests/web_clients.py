"""Clients logged in the way a user logs in: identifier and password, then the code."""

from __future__ import annotations

from typing import Any

from django.test import Client
from django_otp import DEVICE_ID_SESSION_KEY

from accounts.models import TOTPDevice, User
from tests import factories


def logged_in(user: User, **client_kwargs: Any) -> Client:
    """A client past the login page and the second factor, as ``user``."""
    client = Client(**client_kwargs)
    identifier = user.professional.id_number if user.kind == "professional" else user.username
    client.post("/connexion/", {"identifier": identifier, "password": factories.PASSWORD})
    response = client.post("/connexion/code/", {"code": factories.code_for(user)})
    assert response.status_code == 302, "login failed"
    return client


def second_session(user: User, **client_kwargs: Any) -> Client:
    """Another session of ``user`` (a TOTP code cannot be used twice: no second login form)."""
    client = Client(**client_kwargs)
    client.force_login(user, backend="accounts.backends.IdentifierBackend")
    session = client.session
    session[DEVICE_ID_SESSION_KEY] = TOTPDevice.objects.get(user=user).persistent_id
    session.save()
    return client
