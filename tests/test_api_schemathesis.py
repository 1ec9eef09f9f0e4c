"""Schemathesis against /api/v1/openapi.json on the real server, every check on.

Three runs, each with all of schemathesis's checks (not only "no 5xx": status codes,
content types, headers and bodies conform to the document, invalid data is
refused, authentication is not ignored…):

- each operation alone, with valid and with invalid generated requests, strings
  allowed to hold NUL and lone surrogates (no UTF-8 codec filter);
- stateful: sequences that follow the document's links (send a message, then read
  it, its raw form, its flags), so the operations are tried on resources that exist;
- hostile cases written out: NUL, lone surrogates and deeply nested JSON in every
  string field of every body.

Bounded (max examples) to keep the suite's time reasonable.
"""

from __future__ import annotations

from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis.config._checks import PositiveDataAcceptanceConfig
from schemathesis.config._phases import InferenceConfig
from schemathesis.generation.modes import GenerationMode

from mailboxes.models import Mailbox
from tests.personas import Lab, submit

pytestmark = pytest.mark.django_db(transaction=True)

HYPOTHESIS = {
    "deadline": None,
    "database": None,
    "suppress_health_check": list(HealthCheck),
}


@pytest.fixture
def lab(live_server: Any, laboratoire: Lab, doctor: Mailbox) -> dict[str, Any]:
    box = laboratoire.box
    # Something to find, so that listing, reading and flags do more than 404.
    submit(doctor, [box.address], subject="Demande", text=".")
    return {"url": live_server.url, "token": laboratoire.raw, "box": box, "doctor": doctor}


def _schema(lab: dict[str, Any], *, any_code_point: bool = False) -> Any:
    schema = schemathesis.openapi.from_url(f"{lab['url']}/api/v1/openapi.json")
    schema.config.generation.allow_x00 = True
    # Only the document's own links: inference would pair the path's message_id (our
    # UUID) with the body's message_id (the RFC 5322 Message-ID), which are not the same.
    schema.config.phases.stateful.inference = InferenceConfig(algorithms=[])
    if any_code_point:
        # Strings may hold lone surrogates (the default filters generated text through
        # the UTF-8 codec, which drops them). A lone surrogate is not Unicode text, so
        # not schema-valid: only the invalid (negative) requests use this.
        schema.config.generation.codec = None
    # A schema-valid message may still be refused by a rule of the trust space (an
    # unknown or unlisted recipient, a blocked attachment type): 422, documented as such.
    schema.config.checks.positive_data_acceptance = PositiveDataAcceptanceConfig(
        expected_statuses=["2xx", "3xx", "401", "403", "404", "409", "422", "429"]
    )
    return schema


def _headers(lab: dict[str, Any]) -> dict[str, str]:
    return {"Authorization": f"Bearer {lab['token']}"}


@pytest.mark.parametrize("mode", [GenerationMode.POSITIVE, GenerationMode.NEGATIVE])
def test_every_operation_passes_every_check(lab: dict[str, Any], mode: GenerationMode) -> None:
    schema = _schema(lab, any_code_point=mode == GenerationMode.NEGATIVE)
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) == 6

    for operation in operations:

        @settings(max_examples=25, **HYPOTHESIS)
        @given(case=operation.as_strategy(generation_mode=mode))
        def check(case: Any) -> None:
            case.call_and_validate(base_url=lab["url"], headers=_headers(lab))

        check()


def test_stateful_sequences_following_the_links_pass_every_check(lab: dict[str, Any]) -> None:
    schema = _schema(lab)
    headers = _headers(lab)
    recipient = lab["doctor"].address

    class Workflow(schema.as_state_machine()):  # type: ignore[misc]
        def get_call_kwargs(self, case: Any) -> dict[str, Any]:
            return {"base_url": lab["url"], "headers": headers}

        def before_call(self, case: Any) -> None:
            # Now and then a real recipient, so that a message exists to follow links to.
            # Only in a valid request: an invalid one stays invalid (replacing its
            # recipients could make it valid while schemathesis still expects a refusal).
            if (
                case.meta is not None
                and case.meta.generation.mode == GenerationMode.POSITIVE
                and case.method == "POST"
                and case.path == "/api/v1/messages"
                and isinstance(case.body, dict)
                and isinstance(case.body.get("to"), list)
                and len(case.body["to"]) % 2 == 1
            ):
                case.body["to"] = [recipient]

    Workflow.run(settings=settings(max_examples=15, stateful_step_count=6, **HYPOTHESIS))


DEEP: Any = "fond"
for _ in range(200):
    DEEP = [DEEP]


@pytest.mark.parametrize(
    "value",
    ["avant\x00après", "\x00", "demi\ud800paire", "\udfff", DEEP],
    ids=["nul", "nul_alone", "surrogate", "low_surrogate", "deep"],
)
def test_hostile_strings_in_every_body_field_pass_every_check(
    lab: dict[str, Any], value: Any
) -> None:
    schema = _schema(lab)
    headers = _headers(lab)
    recipient = lab["doctor"].address
    send = schema["/api/v1/messages"]["POST"]
    flags = schema["/api/v1/messages/{message_id}/flags"]["POST"]
    listing = schema["/api/v1/mailboxes/{address}/messages"]["GET"]
    created = send.Case(
        body={"to": [recipient], "subject": "Hôte"}, media_type="application/json"
    ).call(base_url=lab["url"], headers=headers)
    assert created.status_code == 201, created.text
    message_id = created.json()["id"]
    bodies = [
        {"to": [recipient], "subject": value},
        {"to": [recipient], "text": value},
        {"to": [recipient], "html": value},
        {"to": [value]},
        {"to": [recipient], "cc": [value]},
        {"to": [recipient], "attachments": [{"filename": value, "content": "JVBERg=="}]},
        {
            "to": [recipient],
            "attachments": [{"filename": "a.pdf", "content_type": value, "content": "JVBERg=="}],
        },
        {"to": [recipient], "attachments": [{"filename": "a.pdf", "content": value}]},
    ]
    for body in bodies:
        case = send.Case(body=body, media_type="application/json")
        response = case.call_and_validate(base_url=lab["url"], headers=headers)
        assert response.status_code == 400, (body, response.text)
    for body in ({"folder": value}, {"seen": value}):
        case = flags.Case(
            path_parameters={"message_id": message_id}, body=body, media_type="application/json"
        )
        response = case.call_and_validate(base_url=lab["url"], headers=headers)
        assert response.status_code == 400, (body, response.text)
    if isinstance(value, str) and "\x00" in value:
        # (A lone surrogate cannot travel in a URL: it has no UTF-8 form to percent-encode.)
        for query in ({"folder": value}, {"cursor": value}):
            case = listing.Case(path_parameters={"address": lab["box"].address}, query=query)
            response = case.call_and_validate(base_url=lab["url"], headers=headers)
            assert response.status_code == 400, (query, response.text)
