"""Logged-in clients for the directory tests: a professional and a patient, neither with a box."""

from __future__ import annotations

import pytest
from django.test import Client

from tests import factories as f
from tests.personas import logged_in


@pytest.fixture
def doctor_client(db) -> Client:
    return logged_in(f.professional())


@pytest.fixture
def patient_client(db) -> Client:
    return logged_in(f.patient())
