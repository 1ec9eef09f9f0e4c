"""Fixtures of the fault-injection suite, and the fault table printed at the end of the run."""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from django.conf import settings as django_settings
from django.db import connection

from accounts.models import User
from mailboxes.models import Mailbox
from tests import factories
from tests.faults.cluster import OUR_DOMAIN, REMOTE_RECIPIENT, Cluster, Row, make_cluster, table
from tests.faults.doors import ApiDoor, Outcome, SmtpDoor, WebDoor
from tests.faults.processes import port_open

ROWS: list[Row] = []


@pytest.fixture(scope="module")
def cluster(
    django_db_setup: Any, django_db_blocker: Any, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Cluster]:
    """The worker, beat, the gateway and the web on the test database, and the peer."""
    import redis

    clamd = os.environ.get("CLAMD_ADDRESS", "")
    if clamd:
        # Without clamd every message waits, unscanned, for ever: say so now, not in minutes.
        host, _, port = clamd.rpartition(":")
        assert port_open(int(port), host), f"clamd is not answering on {clamd}"
    with django_db_blocker.unblock():
        made = make_cluster(tmp_path_factory.mktemp("faults"))
        redis.Redis.from_url(made.broker_url).flushdb()
        made.build()
        try:
            made.start()
            yield made
        finally:
            made.stop()
            # Connections the processes left would make DROP DATABASE fail at the end;
            # a terminated backend takes a moment to go.
            deadline = time.monotonic() + 10
            with connection.cursor() as cursor:
                while True:
                    cursor.execute(
                        "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
                        "WHERE datname = current_database() AND pid <> pg_backend_pid()"
                    )
                    if not cursor.fetchone()[0] or time.monotonic() > deadline:
                        break
                    time.sleep(0.2)
            # This connection too: it may not be the one pytest-django closes before the drop.
            connection.close()


@dataclass
class World:
    """The people and programs behind each door, for one fault."""

    cluster: Cluster
    doctor: User
    doctor_box: Mailbox
    nurse: Mailbox
    pharmacist: Mailbox
    app_box: Mailbox
    web: WebDoor
    api: ApiDoor
    smtp: SmtpDoor

    def outcomes(self, prefix: str, door: str, n: int, *, remote: bool = True) -> list[Outcome]:
        local = [self.nurse.address, self.pharmacist.address]
        if door == "api":
            local.reverse()
        far = [REMOTE_RECIPIENT] if remote and door != "smtp" else []
        return [Outcome(f"{prefix} {door} {i:03d}", door, local, far) for i in range(n)]


@pytest.fixture
def world(cluster: Cluster, transactional_db: None, settings: Any) -> World:
    # The web server checks the password with the real hashers, not the tests' fast one.
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.PBKDF2PasswordHasher"]
    domain = factories.hosted_domain(OUR_DOMAIN)
    cluster.peer.list()
    identifier = factories.rpps()
    doctor = factories.professional(identifier=identifier, first_name="Claire", last_name="Martin")
    doctor_box = factories.mailbox(doctor, domain=domain)
    nurse = factories.mailbox(
        factories.professional(first_name="Julien", last_name="Dupont", password=None, enrol=False),
        domain=domain,
    )
    pharmacist = factories.mailbox(
        factories.professional(
            first_name="Sophie", last_name="Bernard", password=None, enrol=False
        ),
        domain=domain,
    )
    app_box = factories.shared_mailbox(
        doctor, kind=Mailbox.Kind.APPLICATIVE, local="logiciel", domain=domain
    )
    _token, secret = factories.api_token(app_box)
    web = WebDoor(cluster.base_url, doctor_box.pk)
    web.login(identifier, factories.PASSWORD, lambda: factories.code_for(doctor))
    cluster.sink.reset()
    return World(
        cluster=cluster,
        doctor=doctor,
        doctor_box=doctor_box,
        nurse=nurse,
        pharmacist=pharmacist,
        app_box=app_box,
        web=web,
        api=ApiDoor(cluster.base_url, secret),
        smtp=SmtpDoor(cluster.smtp_port, cluster.peer),
    )


def table_file() -> Path:
    return Path(django_settings.VAR_DIR) / "fault-table.md"


def pytest_terminal_summary(terminalreporter: Any) -> None:
    if not ROWS:
        return
    text = table(ROWS)
    notes = [f"- {row.fault}: {'; '.join(row.notes)}" for row in ROWS if row.notes]
    terminalreporter.section("fault injection")
    terminalreporter.write_line(text)
    for line in notes:
        terminalreporter.write_line(line)
    try:
        table_file().write_text(text + "\n\n" + "\n".join(notes) + "\n")
        terminalreporter.write_line(f"(written to {table_file()})")
    except OSError:
        pass
