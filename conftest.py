"""Fixtures shared by every test: personas, logged-in clients, Celery mode, the browser."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from typing import Any

import pytest

from mssante.celery import app as celery_app
from tests import db_roles, flush

os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")

# The personas (claire, julien, lucie, staff, the secretariat, the lab, the remote peer...):
# tests/personas.py says who they are, tests/README.md how a test uses them.
pytest_plugins = ["tests.fixtures"]


@pytest.fixture(scope="session")
def django_db_modify_db_settings(django_db_modify_db_settings_parallel_suffix: None) -> None:
    """PostgreSQL: the test database is created and migrated by the schema owner."""
    db_roles.login_as_owner()


@pytest.fixture(scope="session")
def django_db_setup(django_db_setup: None) -> Iterator[None]:
    """Then every test runs as the application's restricted role (tests/db_roles.py).

    Transactional tests are emptied between them without rebuilding the content types and
    permissions (tests/flush.py).
    """
    with db_roles.as_app_role(), flush.keeping_content_types():
        yield


@pytest.fixture(autouse=True)
def _audit_anchor_file(settings: Any, tmp_path_factory: pytest.TempPathFactory) -> None:
    # Each test anchors the audit journal in a file of its own, never in the real one
    # under var/ (it would then name rows of a test database that are gone).
    anchors = tmp_path_factory.getbasetemp() / "audit-anchors"
    settings.AUDIT_ANCHOR_FILE = str(anchors / f"{uuid.uuid4().hex}.jsonl")


@pytest.fixture(autouse=True)
def _celery_eager(request: pytest.FixtureRequest) -> Iterator[None]:
    """Tasks run in-process unless the test drives the real worker (marker ``services``)."""
    if request.node.get_closest_marker("services"):
        old = celery_app.conf.task_always_eager
        celery_app.conf.task_always_eager = False
        yield
        celery_app.conf.task_always_eager = old
        return
    old = celery_app.conf.task_always_eager
    celery_app.conf.task_always_eager = True
    yield
    celery_app.conf.task_always_eager = old


@pytest.fixture(autouse=True)
def _blob_dir(
    request: pytest.FixtureRequest, settings: Any, tmp_path_factory: pytest.TempPathFactory
) -> None:
    if request.node.get_closest_marker("services"):
        # A real worker (another process) reads these blobs: keep the directory it was
        # started with (BLOB_ROOT, or MSSANTE_VAR_DIR/blobs, from the same environment).
        return
    settings.BLOB_ROOT = tmp_path_factory.mktemp("blobs")


@pytest.fixture(scope="session")
def browser_type_launch_args(browser_type_launch_args: dict[str, Any]) -> dict[str, Any]:
    """Debian's Chromium, headless, with no call to Google's hosts (closed network)."""
    return {
        **browser_type_launch_args,
        "executable_path": "/usr/bin/chromium",
        "headless": True,
        "args": [
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--no-first-run",
            "--disable-quic",
        ],
    }


@pytest.fixture(scope="session")
def browser_context_args(browser_context_args: dict[str, Any]) -> dict[str, Any]:
    """A French browser, as most of our users have: the pages are checked in French."""
    return {**browser_context_args, "locale": "fr-FR", "timezone_id": "Europe/Paris"}


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    # Browser tests are slow to start: run them last so unit failures show first. The
    # fault-injection suite comes after everything: it restarts PostgreSQL under the
    # session's feet (and reconnects before it hands over).
    items.sort(
        key=lambda item: (
            item.get_closest_marker("faults") is not None,
            item.get_closest_marker("browser") is not None,
        )
    )


@pytest.fixture(autouse=True)
def _fast_hasher(settings: Any) -> None:
    # PBKDF2's real cost is for production; tests only need a correct hasher.
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture(autouse=True)
def _staff_strong_factor_off(settings: Any) -> None:
    # Staff need a passkey in their session to reach the admin in production; the tests
    # that check it turn it on (accounts/tests/test_staff_strong_factor.py).
    settings.STAFF_REQUIRE_PHISHING_RESISTANT = False


@pytest.fixture(autouse=True)
def _scanning_off(settings: Any) -> None:
    # `make test` exports CLAMD_ADDRESS for the worker; tests in this process scan
    # only when they ask for it (the `clamd` fixtures of the scanning tests), so
    # the rest neither waits on clamd nor depends on it.
    settings.CLAMD_ADDRESS = ""


@pytest.fixture(autouse=True)
def _french_again() -> Iterator[None]:
    # A request in English (the language switch, Accept-Language) leaves English active in
    # this thread after it: the next test would read English where it expects French.
    yield
    from django.conf import settings
    from django.utils import translation

    translation.activate(settings.LANGUAGE_CODE)


@pytest.fixture(autouse=True)
def _content_types_read_again() -> None:
    # Tests that migrate or flush the database give the content types new ids; Django's
    # cache of them would hand a later test a stale id (the admin's log entry then fails its
    # foreign key when the test's transaction ends), in whatever order the tests run.
    from django.contrib.contenttypes.models import ContentType

    ContentType.objects.clear_cache()
