"""Schemathesis against /api/v1/openapi.json on the real server: no request makes it fail (5xx)."""

from __future__ import annotations

from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis.checks import not_a_server_error
from schemathesis.generation.modes import GenerationMode

from mailboxes import services
from mailboxes.models import Mailbox
from tests import factories

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def lab(live_server: Any) -> dict[str, Any]:
    responsible = factories.professional(first_name="Sophie", last_name="Bernard")
    box = factories.shared_mailbox(responsible, kind=Mailbox.Kind.APPLICATIVE, local="labo")
    _token, raw = factories.api_token(box)
    doctor = factories.mailbox()
    # Something to find, so that listing, reading and flags do more than 404.
    services.submit_message(
        mailbox=doctor, author=doctor.owner, to=[box.address], cc=[], subject="Demande", text="."
    )
    return {"url": live_server.url, "token": raw, "box": box}


@pytest.mark.parametrize("mode", [GenerationMode.POSITIVE, GenerationMode.NEGATIVE])
def test_no_generated_request_gets_a_server_error(
    lab: dict[str, Any], mode: GenerationMode
) -> None:
    schema = schemathesis.openapi.from_url(f"{lab['url']}/api/v1/openapi.json")
    headers = {"Authorization": f"Bearer {lab['token']}"}
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) == 5

    for operation in operations:

        @settings(
            max_examples=25,
            deadline=None,
            database=None,
            suppress_health_check=list(HealthCheck),
        )
        @given(case=operation.as_strategy(generation_mode=mode))
        def check(case: Any) -> None:
            case.call_and_validate(
                base_url=lab["url"], headers=headers, checks=[not_a_server_error]
            )

        check()
