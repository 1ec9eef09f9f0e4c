"""The REST API: tokens, sending with idempotency, reading, listing, flags, refusals."""

from __future__ import annotations

import base64
import json
from datetime import timedelta
from typing import Any

import pytest
from django.test import Client
from django.utils import timezone

from audit.models import AuditEvent
from mailboxes import services
from mailboxes.models import AccessEvent, ApiToken, Entry, Mailbox, Message
from tests import factories
from tests.personas import Lab, after_commit, login

pytestmark = pytest.mark.django_db

PDF = b"%PDF-1.4\n1 0 obj<<>>endobj\ntrailer<<>>\n%%EOF\n"


@pytest.fixture
def lab(laboratoire: Lab, doctor: Mailbox) -> dict[str, Any]:
    return {
        "box": laboratoire.box,
        "token": laboratoire.token,
        "raw": laboratoire.raw,
        "doctor_box": doctor,
    }


class Api:
    def __init__(self, raw: str | None) -> None:
        self.client = Client()
        self.headers = {"Authorization": f"Bearer {raw}"} if raw else {}

    def post(self, path: str, body: Any, **headers: str) -> Any:
        with after_commit():
            return self.client.post(
                f"/api/v1{path}",
                data=body if isinstance(body, (str, bytes)) else json.dumps(body),
                content_type="application/json",
                headers={**self.headers, **headers},
            )

    def get(self, path: str, **params: Any) -> Any:
        return self.client.get(f"/api/v1{path}", params, headers=self.headers)


def results(to: str, n: int = 1) -> dict[str, Any]:
    return {
        "to": [to],
        "subject": f"Résultats {n}",
        "text": "Résultats d'analyse en pièce jointe.",
        "attachments": [
            {
                "filename": "resultats.pdf",
                "content_type": "application/pdf",
                "content": base64.b64encode(PDF).decode(),
            }
        ],
    }


def test_a_lab_sends_results_and_the_doctor_receives_them(lab) -> None:
    api = Api(lab["raw"])
    response = api.post("/messages", results(lab["doctor_box"].address))
    assert response.status_code == 201, response.content
    public_id = response.json()["id"]
    message = Message.objects.get(public_id=public_id)
    assert message.origin == Message.Origin.API
    assert Entry.objects.filter(mailbox=lab["doctor_box"], message=message).exists()
    detail = api.get(f"/messages/{public_id}").json()
    assert detail["deliveries"][0]["status"] == "delivered"
    assert detail["attachments"][0]["filename"] == "resultats.pdf"


def test_multipart_is_accepted(lab) -> None:
    client = Client()
    from django.core.files.uploadedfile import SimpleUploadedFile

    with after_commit():
        response = client.post(
            "/api/v1/messages",
            {
                "to": lab["doctor_box"].address,
                "subject": "CR",
                "text": "Bonjour",
                "attachments": SimpleUploadedFile("cr.pdf", PDF, "application/pdf"),
            },
            headers={"Authorization": f"Bearer {lab['raw']}"},
        )
    assert response.status_code == 201, response.content
    message = Message.objects.get(public_id=response.json()["id"])
    assert message.attachments[0]["filename"] == "cr.pdf"


def test_the_same_idempotency_key_and_body_replays_the_first_answer(lab) -> None:
    api = Api(lab["raw"])
    body = results(lab["doctor_box"].address)
    first = api.post("/messages", body, **{"Idempotency-Key": "res-42"})
    second = api.post("/messages", body, **{"Idempotency-Key": "res-42"})
    assert (first.status_code, second.status_code) == (201, 201)
    assert first.json() == second.json()
    assert Message.objects.count() == 1


def test_the_same_idempotency_key_with_another_body_is_a_409(lab) -> None:
    api = Api(lab["raw"])
    api.post("/messages", results(lab["doctor_box"].address, 1), **{"Idempotency-Key": "k"})
    response = api.post(
        "/messages", results(lab["doctor_box"].address, 2), **{"Idempotency-Key": "k"}
    )
    assert response.status_code == 409
    assert response.json()["code"] == "idempotency_conflict"
    assert Message.objects.count() == 1


@pytest.mark.parametrize(
    ("headers", "code"),
    [
        ({}, "token_missing"),
        ({"Authorization": "Bearer mss_nimporte"}, "token_invalid"),
        ({"Authorization": "Basic abc"}, "token_invalid"),
    ],
)
def test_no_or_unknown_token_is_a_401(lab, headers, code) -> None:
    response = Client().get(
        "/api/v1/messages/00000000-0000-0000-0000-000000000000", headers=headers
    )
    assert response.status_code == 401
    assert response.json()["code"] == code
    assert response.json()["message"]


def test_a_revoked_token_is_refused_at_once(lab) -> None:
    api = Api(lab["raw"])
    path = f"/mailboxes/{lab['box'].address}/messages"
    assert api.get(path).status_code == 200
    services.revoke_api_token(lab["token"], by=None)
    response = api.get(path)
    assert (response.status_code, response.json()["code"]) == (401, "token_revoked")


def test_an_expired_token_is_refused(lab) -> None:
    ApiToken.objects.filter(pk=lab["token"].pk).update(
        expires_at=timezone.now() - timedelta(seconds=1)
    )
    response = Api(lab["raw"]).get(f"/mailboxes/{lab['box'].address}/messages")
    assert (response.status_code, response.json()["code"]) == (401, "token_expired")


def test_a_token_for_another_mailbox_is_a_403(lab) -> None:
    response = Api(lab["raw"]).get(f"/mailboxes/{lab['doctor_box'].address}/messages")
    assert response.status_code == 403
    assert response.json()["code"] == "wrong_mailbox"


def test_a_message_of_another_mailbox_is_not_found(lab) -> None:
    other = factories.mailbox()
    with after_commit():
        message = services.submit_message(
            mailbox=other,
            author=other.owner,
            to=[lab["doctor_box"].address],
            cc=[],
            subject="x",
            text="y",
        )
    response = Api(lab["raw"]).get(f"/messages/{message.public_id}")
    assert response.status_code == 404
    assert response.json()["code"] == "not_found"


def test_the_rate_limit_answers_429_with_retry_after(lab, settings) -> None:
    settings.API_RATE_LIMIT = 2
    api = Api(lab["raw"])
    path = f"/mailboxes/{lab['box'].address}/messages"
    assert [api.get(path).status_code for _ in range(2)] == [200, 200]
    response = api.get(path)
    assert response.status_code == 429
    assert 1 <= int(response["Retry-After"]) <= settings.API_RATE_WINDOW_SECONDS
    assert response.json()["code"] == "rate_limited"


def test_a_body_too_large_is_a_413(lab, settings) -> None:
    settings.API_MAX_REQUEST_BYTES = 2048
    body = results(lab["doctor_box"].address)
    body["text"] = "x" * 5000
    response = Api(lab["raw"]).post("/messages", body)
    assert response.status_code == 413
    assert response.json()["code"] == "too_large"


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"subject": "x"}, "to"),
        ({"to": "pas-une-liste"}, "to"),
        ({"to": ["a@b.fr"], "attachments": [{"filename": "a.pdf"}]}, "attachments.0.content"),
        (
            {"to": ["a@b.fr"], "attachments": [{"filename": "a.pdf", "content": "%%%"}]},
            "attachments.0.content",
        ),
    ],
)
def test_bad_input_is_a_400_naming_the_field(lab, body, field) -> None:
    response = Api(lab["raw"]).post("/messages", body)
    assert response.status_code == 400
    assert f"« {field} »" in response.json()["message"]


def test_malformed_json_is_a_400(lab) -> None:
    response = Api(lab["raw"]).post("/messages", "{pas du json")
    assert response.status_code == 400
    assert response.json()["code"] == "invalid_json"


def test_a_refused_submission_is_a_422_with_the_reason(lab) -> None:
    response = Api(lab["raw"]).post("/messages", results("inconnu@hopital.mssante.test"))
    assert response.status_code == 422
    assert "inconnu@hopital.mssante.test" in response.json()["message"]


def test_software_lists_reads_raw_and_files_its_inbox(lab) -> None:
    doctor_box, box = lab["doctor_box"], lab["box"]
    with after_commit():
        message = services.submit_message(
            mailbox=doctor_box,
            author=doctor_box.owner,
            to=[box.address],
            cc=[],
            subject="Demande",
            text="Merci",
        )
    api = Api(lab["raw"])
    page = api.get(f"/mailboxes/{box.address}/messages", folder="inbox").json()
    assert [m["id"] for m in page["messages"]] == [str(message.public_id)]
    raw = api.get(f"/messages/{message.public_id}/raw")
    assert raw["Content-Type"] == "message/rfc822"
    assert b"Subject: Demande" in raw.content
    state = api.post(f"/messages/{message.public_id}/flags", {"seen": True, "folder": "archive"})
    assert state.status_code == 200, state.content
    assert state.json()["folder"] == "archive" and state.json()["seen"] is True
    assert AccessEvent.objects.filter(mailbox=box, action=AccessEvent.Action.OPEN).exists()


def test_cursor_pagination_walks_every_message_once(lab) -> None:
    doctor_box, box = lab["doctor_box"], lab["box"]
    with after_commit():
        for n in range(5):
            services.submit_message(
                mailbox=doctor_box,
                author=doctor_box.owner,
                to=[box.address],
                cc=[],
                subject=f"m{n}",
                text=".",
            )
    api = Api(lab["raw"])
    seen, cursor = [], None
    while True:
        params = {"limit": 2, **({"cursor": cursor} if cursor else {})}
        page = api.get(f"/mailboxes/{box.address}/messages", **params).json()
        seen += [m["subject"] for m in page["messages"]]
        cursor = page["next_cursor"]
        if not cursor:
            break
    assert sorted(seen) == [f"m{n}" for n in range(5)]


def test_an_unknown_folder_is_a_422(lab) -> None:
    response = Api(lab["raw"]).get(f"/mailboxes/{lab['box'].address}/messages", folder="nope")
    assert response.status_code == 422
    assert "« folder »" in response.json()["message"]


@pytest.mark.parametrize("cursor", ["1-²", "²-1", "٣-٣", "1-1) OR (1=1"])
def test_a_cursor_of_other_digits_is_refused_not_an_error(lab, cursor) -> None:
    """A "²" is a digit to str.isdigit() and not to int(): it was a 500 (issue 13)."""
    response = Api(lab["raw"]).get(f"/mailboxes/{lab['box'].address}/messages", cursor=cursor)
    assert response.status_code == 400, response.content
    assert response.json()["code"] == "invalid_field"
    assert "« cursor »" in response.json()["message"]


def test_the_openapi_document_and_docs_page_are_served() -> None:
    client = Client()
    schema = client.get("/api/v1/openapi.json").json()
    assert "/api/v1/messages" in schema["paths"]
    assert "/api/v1/mailboxes/{address}/messages" in schema["paths"]
    assert client.get("/api/v1/docs").status_code == 200


def test_the_token_is_stored_hashed_only(lab) -> None:
    token = ApiToken.objects.get(pk=lab["token"].pk)
    assert lab["raw"] not in str(token.__dict__)
    assert token.token_hash == services.tokens.hash_token(lab["raw"])


def test_create_api_token_prints_a_token_that_works(lab) -> None:
    import io

    from django.core.management import call_command

    out = io.StringIO()
    call_command(
        "create_api_token",
        "--mailbox",
        lab["box"].address,
        "--expires",
        "30",
        stdout=out,
        stderr=io.StringIO(),
    )
    raw = out.getvalue().strip()
    token = services.authenticate_token(raw)
    assert token is not None and token.mailbox == lab["box"]
    assert token.expires_at is not None
    assert 29 <= (token.expires_at - timezone.now()).days <= 30


def test_staff_create_a_token_in_the_admin_and_see_it_once(lab) -> None:
    client = login(factories.staff())
    response = client.post(
        "/admin/mailboxes/apitoken/add/",
        {
            "mailbox": lab["doctor_box"].pk,
            "label": "Logiciel de cabinet",
            "expires_at_0": "01/01/2099",
            "expires_at_1": "00:00:00",
        },
        follow=True,
    )
    assert "accord enregistré de son titulaire" in response.content.decode()
    assert not ApiToken.objects.filter(mailbox=lab["doctor_box"]).exists()
    factories.api_agreement(lab["doctor_box"], scope="send")
    response = client.post(
        "/admin/mailboxes/apitoken/add/",
        {
            "mailbox": lab["doctor_box"].pk,
            "label": "Logiciel de cabinet",
            "expires_at_0": "01/01/2099",
            "expires_at_1": "00:00:00",
            "scope": "send",
        },
        follow=True,
    )
    page = response.content.decode()
    raw = page.split("Jeton créé : ")[1].split(" ")[0]
    assert services.authenticate_token(raw).mailbox == lab["doctor_box"]
    listing = client.get("/admin/mailboxes/apitoken/").content.decode()
    assert raw not in listing


def test_idempotency_keys_are_forgotten_after_their_retention(lab, settings) -> None:
    from mailboxes.models import IdempotencyRecord

    api = Api(lab["raw"])
    api.post("/messages", results(lab["doctor_box"].address), **{"Idempotency-Key": "old"})
    IdempotencyRecord.objects.update(
        created_at=timezone.now() - timedelta(hours=settings.API_IDEMPOTENCY_HOURS + 1)
    )
    assert services.purge_idempotency_keys() == 1
    assert not IdempotencyRecord.objects.exists()


def test_each_use_of_a_token_is_traced_in_the_audit_journal(lab) -> None:
    before = AuditEvent.objects.filter(action="api_token.used").count()
    assert Api(lab["raw"]).get(f"/mailboxes/{lab['box'].address}/messages").status_code == 200
    assert AuditEvent.objects.filter(action="api_token.used").count() == before + 1


# --------------------------------------------------------------------------- batch


def test_a_batch_is_sent_together_and_each_item_answered_in_its_place(lab) -> None:
    api = Api(lab["raw"])
    doctor = lab["doctor_box"]
    body = {
        "messages": [
            results(doctor.address, 1),
            results("inconnu@hopital.mssante.test", 2),
            results(doctor.address, 3),
        ]
    }
    response = api.post("/messages/batch", body)
    assert response.status_code == 200, response.content
    answers = response.json()["results"]
    assert [a["status"] for a in answers] == [201, 422, 201]
    assert "inconnu@hopital.mssante.test" in answers[1]["error"]["message"]
    sent = Message.objects.filter(origin=Message.Origin.API)
    assert sorted(sent.values_list("subject", flat=True)) == ["Résultats 1", "Résultats 3"]
    # Delivered by the pipeline like any message, each once.
    assert Entry.objects.filter(mailbox=doctor).count() == 2
    assert {str(m.public_id) for m in sent} == {answers[0]["id"], answers[2]["id"]}


def test_a_batch_with_a_malformed_message_is_refused_whole_naming_it(lab) -> None:
    body = {"messages": [results(lab["doctor_box"].address), {"to": ["x"], "sujet": "?"}]}
    response = Api(lab["raw"]).post("/messages/batch", body)
    assert response.status_code == 400
    assert "messages.1.sujet" in response.json()["message"]
    assert not Message.objects.exists()


def test_a_batch_retried_with_its_key_is_replayed_not_sent_twice(lab) -> None:
    api = Api(lab["raw"])
    body = {"messages": [results(lab["doctor_box"].address, n) for n in range(3)]}
    first = api.post("/messages/batch", body, **{"Idempotency-Key": "lot-7"})
    again = api.post("/messages/batch", body, **{"Idempotency-Key": "lot-7"})
    assert first.status_code == again.status_code == 200
    assert first.json() == again.json()
    assert Message.objects.filter(origin=Message.Origin.API).count() == 3
    other = api.post(
        "/messages/batch", {"messages": body["messages"][:1]}, **{"Idempotency-Key": "lot-7"}
    )
    assert other.status_code == 409


@pytest.mark.parametrize(
    "body",
    [
        {"messages": []},
        {"messages": "x"},
        {"messages": [{}], "extra": 1},
        [],
        {"messages": [results("a@b.c")] * 101},
    ],
)
def test_a_batch_that_is_not_a_list_of_1_to_100_messages_is_a_400(lab, body) -> None:
    response = Api(lab["raw"]).post("/messages/batch", body)
    assert response.status_code == 400
    assert response.json()["message"]
    assert not Message.objects.exists()


def test_a_batch_whose_commit_fails_stores_none_of_it(lab, monkeypatch) -> None:
    from mailboxes.services import api as api_service

    def broken(*args: Any, **kwargs: Any) -> None:
        raise RuntimeError("the journal is gone")

    body = {"messages": [results(lab["doctor_box"].address, n) for n in range(3)]}
    monkeypatch.setattr(api_service, "record_access", broken)
    response = Api(lab["raw"]).post("/messages/batch", body)
    # No answer of success for any of them: the client sends the batch again.
    assert response.status_code == 500
    assert "results" not in response.json()
    assert not Message.objects.exists()
    assert not Entry.objects.filter(mailbox=lab["doctor_box"]).exists()


def test_a_batch_over_the_request_limit_is_a_413_and_nothing_is_stored(lab, settings) -> None:
    settings.API_MAX_REQUEST_BYTES = 5_000
    body = {"messages": [results(lab["doctor_box"].address, n) for n in range(100)]}
    response = Api(lab["raw"]).post("/messages/batch", body)
    assert response.status_code == 413
    assert response.json()["code"] == "too_large"
    assert not Message.objects.exists()
