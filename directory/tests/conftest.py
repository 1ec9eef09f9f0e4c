"""Logged-in clients for the directory tests."""

from __future__ import annotations

import pytest
from django.test import Client

from tests import factories as f


def logged_in(user) -> Client:
    client = Client()
    identifier = user.professional.id_number if user.kind == "professional" else user.username
    client.post("/connexion/", {"identifier": identifier, "password": f.PASSWORD})
    response = client.post("/connexion/code/", {"code": f.code_for(user)})
    assert response.status_code == 302, "login failed"
    return client


@pytest.fixture
def doctor_client(db) -> Client:
    return logged_in(f.professional())


@pytest.fixture
def patient_client(db) -> Client:
    return logged_in(f.patient())
