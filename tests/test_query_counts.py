"""List pages run a constant number of queries, whatever the number of rows they show.

zulip's rule: a page that lists things asserts its query count, so that a relation read
row by row (an N+1) fails a test instead of slowing the page down as a box fills up.
Each test counts the queries of one request with 2 rows, adds 18 rows, and expects the
same count with 20 (the webmail's folder list has its own, in mailboxes/tests/test_views.py).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager
from typing import Any

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from accounts.models import User
from mailboxes import services
from mailboxes.models import AccessEvent, Mailbox, Membership, Message
from mssante.lib import mime
from tests import factories
from tests.personas import client_for

pytestmark = pytest.mark.django_db

PDF = b"%PDF-1.4\n1 0 obj<<>>endobj\ntrailer<<>>\n%%EOF\n"
Run = Callable[..., Any]


@pytest.fixture
def run(
    django_capture_on_commit_callbacks: Callable[..., AbstractContextManager[Any]],
) -> Iterator[Run]:
    """Call a service and run what it enqueued on commit (the eager pipeline delivers)."""

    def call(fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        with django_capture_on_commit_callbacks(execute=True):
            return fn(*args, **kwargs)

    yield call


def _queries(client: Client, url: str, **headers: str) -> list[str]:
    """The SQL of one GET of ``url`` (which must answer 200)."""
    with CaptureQueriesContext(connection) as captured:
        response = client.get(url, headers=headers)
    assert response.status_code == 200, response.content[:500]
    return [q["sql"] for q in captured.captured_queries]


def _assert_same(two: list[str], twenty: list[str]) -> None:
    assert len(twenty) == len(two), (
        f"{len(two)} queries for 2 rows, {len(twenty)} for 20:\n" + "\n".join(twenty)
    )


def _send(run: Run, box: Mailbox, to: str, n: int, **kwargs: Any) -> Message:
    return run(
        services.submit_message,
        mailbox=box,
        author=box.owner,
        to=[to],
        cc=[],
        subject=f"Résultats {n}",
        text="Bonjour.",
        **kwargs,
    )


def _professionals(count: int, start: int) -> list[User]:
    return [
        factories.professional(first_name="Membre", last_name=f"Numéro{start + i}", enrol=False)
        for i in range(count)
    ]


def test_the_patient_home_runs_the_same_queries_for_2_and_20_conversations(run: Run) -> None:
    domain = factories.hosted_domain("hopital.mssante.test")
    senders = [factories.mailbox(factories.professional(), domain=domain) for _ in range(4)]
    patient = factories.patient()
    box = factories.patient_mailbox(patient)
    pdf = [mime.Attachment("resultats.pdf", "application/pdf", PDF)]

    def receive(start: int, count: int) -> None:
        for n in range(start, start + count):
            # Several professionals, a document now and then, some conversations closed.
            headers = {"X-MSS-MES": "FIN"} if n % 3 == 0 else None
            attachments = pdf if n % 2 else []
            sender = senders[n % len(senders)]
            _send(run, sender, box.address, n, attachments=attachments, extra_headers=headers)

    client = client_for(patient)
    url = reverse("patient_home")
    receive(0, 2)
    client.get(url)  # the session and the catalogues, loaded once per process
    two = _queries(client, url)
    receive(2, 18)
    twenty = _queries(client, url)
    _assert_same(two, twenty)
    assert client.get(url).content.decode().count('<li class="patient-card') == 20


def test_the_api_message_list_runs_the_same_queries_for_2_and_20_messages(run: Run) -> None:
    responsible = factories.professional(first_name="Sophie", last_name="Bernard")
    lab = factories.shared_mailbox(responsible, kind=Mailbox.Kind.APPLICATIVE, local="labo")
    _token, raw = factories.api_token(lab)
    doctor_box = factories.mailbox(factories.professional())
    pdf = [mime.Attachment("demande.pdf", "application/pdf", PDF)]

    def receive(start: int, count: int) -> None:
        for n in range(start, start + count):
            _send(run, doctor_box, lab.address, n, attachments=pdf if n % 2 else [])

    client = Client()
    url = f"/api/v1/mailboxes/{lab.address}/messages"
    auth = {"Authorization": f"Bearer {raw}"}
    receive(0, 2)
    client.get(url, headers=auth)
    two = _queries(client, url, **auth)
    receive(2, 18)
    twenty = _queries(client, url, **auth)
    _assert_same(two, twenty)
    listed = json.loads(client.get(url, headers=auth).content)["messages"]
    assert len(listed) == 20
    assert sum(m["has_attachments"] for m in listed) == 10


def test_the_members_page_runs_the_same_queries_for_2_and_20_members() -> None:
    holder = factories.professional(first_name="Claire", last_name="Martin")
    box = factories.shared_mailbox(holder, local="cardiologie")
    manager = factories.professional(first_name="Emma", last_name="Gestion")
    factories.member(box, manager, Membership.Role.MANAGE)

    def grant(start: int, count: int) -> None:
        for i, user in enumerate(_professionals(count, start)):
            # Granted by the holder or by the manager; a few of them revoked since.
            by = manager if i % 2 else holder
            grant = services.grant_membership(box, user, Membership.Role.READ, by=by)
            if i % 4 == 3:
                services.revoke_membership(grant, by=holder)

    client = client_for(holder)
    url = reverse("webmail_members", args=[box.pk])
    grant(0, 1)  # with the manager: 2 rows
    client.get(url)
    two = _queries(client, url)
    grant(1, 18)
    twenty = _queries(client, url)
    _assert_same(two, twenty)
    assert client.get(url).content.decode().count('class="webmail-members__item') == 20


def test_the_access_journal_runs_the_same_queries_for_2_and_20_events(run: Run) -> None:
    holder = factories.professional(first_name="Claire", last_name="Martin")
    box = factories.shared_mailbox(holder, local="cardiologie")
    sender = factories.mailbox(factories.professional())
    message = _send(run, sender, box.address, 1)

    def journal(start: int, count: int) -> None:
        for i, user in enumerate(_professionals(count, start)):
            factories.member(box, user, Membership.Role.READ)
            # Each member opens the message once: one more row and one more person.
            opened = message if i % 2 else None
            services.record_access(box, AccessEvent.Action.OPEN, actor=user, messages=[opened])

    client = client_for(holder)
    url = reverse("webmail_journal", args=[box.pk])
    journal(0, 2)
    client.get(url)
    two = _queries(client, url)
    journal(2, 18)
    twenty = _queries(client, url)
    _assert_same(two, twenty)
    page = client.get(url).content.decode()
    assert page.count("<time datetime=") == 20
