"""Shared fixtures for the charter's tests."""

from __future__ import annotations

import pytest
from django.test import Client

from tests import factories as f


@pytest.fixture
def staff_client(db: None) -> Client:
    """A superuser past both login steps, so the admin opens."""
    boss = f.staff()
    client = Client()
    client.post("/connexion/", {"identifier": boss.username, "password": f.PASSWORD})
    client.post("/connexion/code/", {"code": f.code_for(boss)})
    return client
