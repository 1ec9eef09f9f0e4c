"""Services connectés: the patient revokes an application, whose messages are then refused."""

from __future__ import annotations

import base64
import json
from typing import Any

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from audit.models import AuditEvent
from mailboxes.models import Entry, Mailbox, Message
from mailboxes.tests.test_views import open_compose
from patients.models_services import ServiceChange, ServiceRevocation
from patients.tests.conftest import PDF, Space
from tests import factories
from tests.personas import Lab, after_commit, committed, login

pytestmark = pytest.mark.django_db

# The refusal, as the API's JSON says it and as the compose page shows it (escaped).
REASON = "a retiré à « Laboratoire » l'autorisation de lui écrire"
REASON_HTML = "a retiré à « Laboratoire » l&#x27;autorisation de lui écrire"
REASON_TEXT = "a retiré à « Laboratoire » l'autorisation de lui écrire"


def api_send(lab: Lab, to: str, key: str = "k1") -> Any:
    """The lab's software sends results through the API (as practice software does)."""
    body = {
        "to": [to],
        "subject": "Vos résultats",
        "text": "Résultats en pièce jointe.",
        "attachments": [
            {
                "filename": "resultats.pdf",
                "content_type": "application/pdf",
                "content": base64.b64encode(PDF).decode(),
            }
        ],
    }
    with after_commit():
        return Client().post(
            "/api/v1/messages",
            data=json.dumps(body),
            content_type="application/json",
            headers={"Authorization": f"Bearer {lab.raw}", "Idempotency-Key": key},
        )


def choose(client: Client, service: Mailbox, allow: bool) -> Any:
    return client.post(
        reverse("patients:service_change", args=[service.pk]), {"allow": "1" if allow else "0"}
    )


def test_the_catalogue_lists_the_operators_applications_with_what_they_sent(
    space: Space, laboratoire: Lab
) -> None:
    api_send(laboratoire, space.patient_box.address)
    page = login(space.patient).get(reverse("patients:services"))
    html = page.content.decode()
    assert page.status_code == 200
    assert "Laboratoire" in html and laboratoire.box.address in html
    assert "1 message, le" in html and "comptes rendus PDF" in html
    assert "Retirer l'autorisation" in html
    # Professionals' own boxes are not "services": only applicative boxes are listed.
    assert space.doctor_box.address not in html


def test_a_revoked_lab_is_refused_through_the_api_with_the_reason(
    space: Space, laboratoire: Lab
) -> None:
    response = choose(login(space.patient), laboratoire.box, allow=False)
    assert response.status_code == 302
    refused = api_send(laboratoire, space.patient_box.address)
    assert refused.status_code == 422
    assert refused.json()["code"] == "refused"
    assert REASON in refused.json()["message"]
    assert not Entry.objects.filter(mailbox=space.patient_box).exists()
    # The lab still writes to the doctor: only this patient refused it.
    assert api_send(laboratoire, space.doctor_box.address, key="k2").status_code == 201


def test_in_a_batch_only_the_message_to_the_refusing_patient_is_refused(
    space: Space, laboratoire: Lab
) -> None:
    choose(login(space.patient), laboratoire.box, allow=False)
    item = {"subject": "Résultats", "text": "Bonjour."}
    body = {
        "messages": [
            {**item, "to": [space.other_box.address]},
            {**item, "to": [space.patient_box.address]},
        ]
    }
    with after_commit():
        response = Client().post(
            "/api/v1/messages/batch",
            data=json.dumps(body),
            content_type="application/json",
            headers={"Authorization": f"Bearer {laboratoire.raw}"},
        )
    assert response.status_code == 200, response.content
    answers = response.json()["results"]
    assert [a["status"] for a in answers] == [201, 422]
    assert REASON in answers[1]["error"]["message"]
    assert Entry.objects.filter(mailbox=space.other_box).count() == 1
    assert not Entry.objects.filter(mailbox=space.patient_box).exists()


def test_a_revoked_lab_is_refused_in_the_web_compose_of_its_member(
    space: Space, laboratoire: Lab
) -> None:
    choose(login(space.patient), laboratoire.box, allow=False)
    client = login(laboratoire.responsible)
    fields = open_compose(client, reverse("webmail_compose", args=[laboratoire.box.pk]))
    fields.update(to=space.patient_box.address, subject="Résultats", text="Bonjour")
    response = committed(
        client.post, reverse("webmail_compose_send", args=[laboratoire.box.pk]), fields
    )
    assert response.status_code == 400
    assert REASON_HTML in response.content.decode()
    assert not Message.objects.filter(sender_mailbox=laboratoire.box).exists()


def test_allowing_again_lets_the_lab_write(space: Space, laboratoire: Lab) -> None:
    client = login(space.patient)
    choose(client, laboratoire.box, allow=False)
    assert api_send(laboratoire, space.patient_box.address).status_code == 422
    choose(client, laboratoire.box, allow=True)
    assert not ServiceRevocation.objects.exists()
    accepted = api_send(laboratoire, space.patient_box.address, key="k2")
    assert accepted.status_code == 201, accepted.content
    assert Entry.objects.filter(mailbox=space.patient_box).count() == 1


def test_another_patients_revocation_does_not_affect_this_one(
    space: Space, laboratoire: Lab
) -> None:
    choose(login(space.other), laboratoire.box, allow=False)
    assert api_send(laboratoire, space.patient_box.address).status_code == 201
    assert api_send(laboratoire, space.other_box.address, key="k2").status_code == 422


def test_a_forged_post_without_csrf_changes_nothing(space: Space, laboratoire: Lab) -> None:
    client = login(space.patient, enforce_csrf_checks=True)
    response = choose(client, laboratoire.box, allow=False)
    assert response.status_code == 403
    assert not ServiceRevocation.objects.exists()
    assert not ServiceChange.objects.exists()


def test_a_box_that_is_not_a_service_is_a_404(space: Space, laboratoire: Lab) -> None:
    client = login(space.patient)
    # A professional's box, another patient's box: not in the catalogue.
    for box in (space.doctor_box, space.other_box):
        assert choose(client, box, allow=False).status_code == 404
    assert client.post(reverse("patients:service_change", args=[999999])).status_code == 404
    # A professional cannot reach the patient pages at all.
    assert choose(login(space.doctor), laboratoire.box, allow=False).status_code == 404
    assert not ServiceRevocation.objects.exists()


def test_a_get_or_a_bad_choice_changes_nothing(space: Space, laboratoire: Lab) -> None:
    client = login(space.patient)
    url = reverse("patients:service_change", args=[laboratoire.box.pk])
    assert client.get(url).status_code == 405
    response = client.post(url, {"allow": "peut-être"}, follow=True)
    assert "Choix inconnu" in response.content.decode()
    assert not ServiceChange.objects.exists()


def test_each_change_is_journaled_and_shown_in_mes_echanges(space: Space, laboratoire: Lab) -> None:
    client = login(space.patient)
    choose(client, laboratoire.box, allow=False)
    choose(client, laboratoire.box, allow=False)  # again: nothing changes
    choose(client, laboratoire.box, allow=True)
    actions = list(
        AuditEvent.objects.filter(action__startswith="patient.service_")
        .order_by("pk")
        .values_list("action", flat=True)
    )
    assert actions == ["patient.service_revoked", "patient.service_allowed"]
    event = AuditEvent.objects.filter(action="patient.service_revoked").get()
    assert event.actor_id == space.patient.pk
    html = client.get(reverse("patients:exchanges")).content.decode()
    assert "Vos choix de services connectés" in html
    assert "Vous avez retiré à « Laboratoire » l'autorisation" in html
    assert "Vous avez autorisé « Laboratoire » à vous écrire" in html
    # The other patient sees none of it.
    other = login(space.other).get(reverse("patients:exchanges")).content.decode()
    assert "Vos choix de services connectés" not in other


def _queries(client: Client, url: str) -> int:
    with CaptureQueriesContext(connection) as captured:
        assert client.get(url).status_code == 200
    return len(captured.captured_queries)


def test_the_catalogue_and_the_exchanges_page_cost_the_same_for_one_service_or_six(
    space: Space, laboratoire: Lab
) -> None:
    client = login(space.patient)
    api_send(laboratoire, space.patient_box.address)
    choose(client, laboratoire.box, allow=False)
    pages = [reverse("patients:services"), reverse("patients:exchanges")]
    one = [_queries(client, url) for url in pages]
    for n in range(5):
        other = factories.shared_mailbox(
            laboratoire.responsible, kind=Mailbox.Kind.APPLICATIVE, local=f"app{n}"
        )
        choose(client, other, allow=False)
    assert [_queries(client, url) for url in pages] == one
