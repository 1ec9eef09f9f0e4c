"""End to end with the real services: a lab (APP box) sends 1,000 results through the API.

The API runs in the live server, the messages go through Redis to a real prefork Celery
worker on PostgreSQL (the worker fixture of ``test_pipeline_services``), and each of the
40 doctors' boxes must hold each of its results exactly once — retries included.
"""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor

import pytest

from mailboxes.models import Delivery, Entry, Message
from tests import factories
from tests.personas import Lab, api_post
from tests.test_pipeline_services import wait_for, worker  # noqa: F401 - the worker fixture

pytestmark = [
    pytest.mark.services,
    pytest.mark.django_db(transaction=True),
    pytest.mark.skipif(
        not os.environ.get("MSSANTE_TEST_SERVICES"),
        reason="needs scripts/services (MSSANTE_TEST_SERVICES=1)",
    ),
]

RESULTS = 1000
DOCTORS = 40
RETRIED = 50  # results whose POST is sent twice with the same Idempotency-Key


def test_a_lab_sends_1000_results_to_40_doctors_each_arrives_once(
    live_server, settings, laboratoire: Lab
) -> None:
    settings.API_RATE_LIMIT = 100_000
    lab, raw = laboratoire.box, laboratoire.raw
    doctors = [
        factories.mailbox(
            factories.professional(first_name="Médecin", last_name=f"N{i:02d}", enrol=False)
        )
        for i in range(DOCTORS)
    ]
    url = f"{live_server.url}/api/v1/messages"
    jobs = []
    for n in range(RESULTS):
        box = doctors[n % DOCTORS]
        body = {
            "to": [box.address],
            "subject": f"Résultat {n:04d}",
            "text": f"Résultat d'analyse n° {n}.",
        }
        jobs.append((body, f"resultat-{n:04d}"))
    # Some results are posted twice (a client retrying after a timeout).
    jobs += jobs[:RETRIED]

    with ThreadPoolExecutor(max_workers=8) as pool:
        answers = list(pool.map(lambda job: api_post(url, raw, *job), jobs))

    assert {status for status, _b in answers} == {201}, [a for a in answers if a[0] != 201][:3]
    ids = {b["id"] for _s, b in answers}
    assert len(ids) == RESULTS
    assert Message.objects.filter(sender_mailbox=lab).count() == RESULTS

    wait_for(
        lambda: not Delivery.objects.exclude(status=Delivery.Status.DELIVERED).exists(),
        "every result delivered",
        timeout=300,
    )
    assert Delivery.objects.count() == RESULTS
    for i, box in enumerate(doctors):
        subjects = sorted(
            Entry.objects.filter(mailbox=box, folder__role="inbox").values_list(
                "message__subject", flat=True
            )
        )
        assert subjects == [f"Résultat {n:04d}" for n in range(i, RESULTS, DOCTORS)], box.address
