"""Markers of the test modules that drive the real services `make test` starts."""

from __future__ import annotations

import os

import pytest

# Outside `make test` (a bare `pytest` on SQLite) these modules have nothing to run against.
NEEDS_SERVICES = pytest.mark.skipif(
    not os.environ.get("MSSANTE_TEST_SERVICES"),
    reason="needs scripts/services (MSSANTE_TEST_SERVICES=1)",
)

# A module of such tests: selected by the `services` marker, its tables emptied between tests
# (a worker or a server in another process must see what the test committed).
SERVICES = [pytest.mark.services, pytest.mark.django_db(transaction=True), NEEDS_SERVICES]
