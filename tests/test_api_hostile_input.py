"""The API refuses broken and hostile bodies with a 400 in French, and stores nothing of them.

Each case below was a 500 (or, for a mismatched multipart boundary, a message other
than the one meant) before the checks of ``mssante.lib.untrusted`` and the multipart
framing check of ``mailboxes.api``.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from django.conf import settings
from django.test import Client

from mailboxes.models import Entry, IdempotencyRecord, Mailbox, Message
from tests.personas import Lab, send

pytestmark = pytest.mark.django_db


@pytest.fixture
def lab(laboratoire: Lab, doctor: Mailbox) -> dict[str, Any]:
    box = laboratoire.box
    send(doctor, [box.address], subject="Demande", text=".")
    entry = Entry.objects.get(mailbox=box)
    return {"box": box, "raw": laboratoire.raw, "to": doctor.address, "entry": entry}


def _stored() -> tuple[int, int, int]:
    blobs = sum(1 for p in Path(settings.BLOB_ROOT).rglob("*") if p.is_file())
    return Message.objects.count(), IdempotencyRecord.objects.count(), blobs


def _post(lab: dict[str, Any], body: str | bytes, content_type: str, **headers: str) -> Any:
    client = Client(raise_request_exception=False)
    return client.post(
        "/api/v1/messages",
        data=body,
        content_type=content_type,
        headers={"Authorization": f"Bearer {lab['raw']}", **headers},
    )


def _assert_refused(response: Any, *words: str) -> dict[str, Any]:
    assert response.status_code == 400, response.content
    body = response.json()
    assert body["code"] in {"invalid_json", "invalid_field", "invalid_multipart"}
    for word in words:
        assert word in body["message"], body["message"]
    return body


DEEP = "[" * 50_000 + "]" * 50_000


def _raw(to: str, rest: str) -> str:
    """A JSON object written by hand (json.dumps cannot write a lone surrogate escape)."""
    return '{"to": ["' + to + '"]' + rest + "}"


@pytest.mark.parametrize(
    ("case", "words"),
    [
        ("deep_array", ("trop imbriqué",)),
        ("deep_value", ("trop imbriqué",)),
        ("deep_33_levels", ("au plus 32 niveaux",)),
        ("nul_in_subject", ("subject", "caractère nul")),
        ("nul_in_recipient", ("to.0", "caractère nul")),
        ("nul_in_a_key", ("caractère nul",)),
        ("surrogate_in_text", ("text", "demi-paire")),
        ("surrogate_in_html", ("html", "demi-paire")),
        ("surrogate_in_filename", ("attachments.0.filename", "demi-paire")),
        ("not_utf8", ("UTF-8",)),
        ("truncated", ("mal formé",)),
    ],
)
def test_a_hostile_json_body_gets_a_400_in_french_and_nothing_is_stored(
    lab: dict[str, Any], case: str, words: tuple[str, ...]
) -> None:
    to = lab["to"]
    bodies: dict[str, str | bytes] = {
        "deep_array": DEEP,
        "deep_value": json.dumps({"to": [to]})[:-1] + ', "text": ' + DEEP + "}",
        "deep_33_levels": _raw(to, ', "text": ' + "[" * 32 + '"x"' + "]" * 32),
        "nul_in_subject": json.dumps({"to": [to], "subject": "Bilan\x00 sanguin"}),
        "nul_in_recipient": json.dumps({"to": [to + "\x00"]}),
        "nul_in_a_key": json.dumps({"to": [to], "sub\x00ject": "x"}),
        "surrogate_in_text": _raw(to, ', "text": "avant \\ud800 après"'),
        "surrogate_in_html": _raw(to, ', "html": "<p>\\udfff</p>"'),
        "surrogate_in_filename": _raw(
            to, ', "attachments": [{"filename": "cr\\ud83d.pdf", "content": "JVBERg=="}]'
        ),
        "not_utf8": b'{"to": ["\xff\xfe"]}',
        "truncated": _raw(to, ', "subject": "coup')[:-1],
    }
    before = _stored()
    _assert_refused(_post(lab, bodies[case], "application/json"), *words)
    assert _stored() == before


def test_a_paired_surrogate_escape_is_an_ordinary_character(lab: dict[str, Any]) -> None:
    # "\ud83d\ude00" is how JSON writes 😀: valid, and kept.
    body = _raw(lab["to"], ', "subject": "Merci \\ud83d\\ude00"')
    response = _post(lab, body, "application/json")
    assert response.status_code == 201, response.content
    assert Message.objects.get(public_id=response.json()["id"]).subject == "Merci 😀"


def test_a_nul_in_a_key_with_idempotency_stores_no_key(lab: dict[str, Any]) -> None:
    body = json.dumps({"to": [lab["to"]], "subject": "\x00"})
    _assert_refused(_post(lab, body, "application/json", **{"Idempotency-Key": "k-1"}))
    assert not IdempotencyRecord.objects.exists()


def _multipart(boundary: str, to: str) -> bytes:
    return (
        f"--{boundary}\r\n"
        'Content-Disposition: form-data; name="to"\r\n\r\n'
        f"{to}\r\n"
        f"--{boundary}\r\n"
        'Content-Disposition: form-data; name="text"\r\n\r\n'
        "Bonjour\r\n"
        f"--{boundary}--\r\n"
    ).encode()


@pytest.mark.parametrize(
    ("content_type", "boundary"),
    [
        ("multipart/form-data", "xyz"),  # no boundary parameter
        ("multipart/form-data; boundary=", "xyz"),  # an empty one
        ("multipart/form-data; boundary=autre", "xyz"),  # one the body does not use
        ("multipart/form-data; boundary=" + "b" * 71, "b" * 71),  # longer than RFC 2046 allows
    ],
)
def test_a_multipart_body_with_a_missing_or_wrong_boundary_is_refused(
    lab: dict[str, Any], content_type: str, boundary: str
) -> None:
    before = _stored()
    body = _assert_refused(_post(lab, _multipart(boundary, lab["to"]), content_type), "boundary")
    assert body["code"] == "invalid_multipart"
    assert _stored() == before


def test_a_multipart_body_never_closed_is_refused(lab: dict[str, Any]) -> None:
    body = _multipart("xyz", lab["to"]).replace(b"--xyz--", b"--xyz")
    _assert_refused(_post(lab, body, "multipart/form-data; boundary=xyz"), "boundary")


def test_a_well_framed_multipart_body_is_sent(lab: dict[str, Any]) -> None:
    response = _post(lab, _multipart("xyz", lab["to"]), "multipart/form-data; boundary=xyz")
    assert response.status_code == 201, response.content
    assert Message.objects.get(public_id=response.json()["id"]).to_addrs == [lab["to"]]


def test_a_nul_in_a_multipart_field_is_refused(lab: dict[str, Any]) -> None:
    body = _multipart("xyz", lab["to"]).replace(b"Bonjour", b"Bon\x00jour")
    before = _stored()
    _assert_refused(_post(lab, body, "multipart/form-data; boundary=xyz"), "text", "nul")
    assert _stored() == before


def test_flags_refuse_a_nul_folder_and_deep_json(lab: dict[str, Any]) -> None:
    client = Client(raise_request_exception=False)
    url = f"/api/v1/messages/{lab['entry'].message.public_id}/flags"
    headers = {"Authorization": f"Bearer {lab['raw']}"}
    for body, words in (
        (json.dumps({"folder": "archive\x00"}), ("folder", "caractère nul")),
        ('{"folder": "\\udc00"}', ("folder", "demi-paire")),
        ('{"seen": ' + DEEP + "}", ("trop imbriqué",)),
        ("[]", ("objet JSON",)),
    ):
        response = client.post(url, body, content_type="application/json", headers=headers)
        _assert_refused(response, *words)
    entry = Entry.objects.get(pk=lab["entry"].pk)
    assert entry.folder_id == lab["entry"].folder_id


@pytest.mark.parametrize(
    "params",
    [{"folder": "inbox\x00"}, {"cursor": "1-1\x00"}, {"limit": "\x00"}, {"x\x00": "1"}],
)
def test_listing_refuses_a_nul_in_the_query(lab: dict[str, Any], params: dict[str, str]) -> None:
    client = Client(raise_request_exception=False)
    response = client.get(
        f"/api/v1/mailboxes/{lab['box'].address}/messages",
        params,
        headers={"Authorization": f"Bearer {lab['raw']}"},
    )
    _assert_refused(response, "caractère nul")
