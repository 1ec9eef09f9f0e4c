"""The API's sending service checks the token's scope itself, whatever door calls it."""

from __future__ import annotations

import pytest

from mailboxes import services
from mailboxes.models import IdempotencyRecord, Mailbox, Message
from tests import factories

pytestmark = pytest.mark.django_db


def test_a_read_only_token_sends_nothing_even_past_the_endpoint() -> None:
    # The endpoint refuses first (test_api_agreement); a door that forgot must not send.
    holder = factories.professional(first_name="Claire", last_name="Martin")
    box = factories.mailbox(holder)
    token, _raw = factories.api_token(box, scope="read")
    with pytest.raises(services.ScopeError) as refused:
        services.send_api_message(
            token,
            to=[factories.mailbox().address],
            cc=[],
            subject="Résultats",
            text="Bonjour.",
            html=None,
            attachments=[],
            idempotency_key="cle-1",
        )
    assert "n'a accordé que la lecture" in str(refused.value)
    assert not Message.objects.exists()
    assert not IdempotencyRecord.objects.exists()


def test_the_same_key_and_request_replays_the_first_answer_without_a_second_message() -> None:
    lab = factories.shared_mailbox(
        factories.professional(), kind=Mailbox.Kind.APPLICATIVE, local="labo"
    )
    token, _raw = factories.api_token(lab)
    request = {
        "to": [factories.mailbox().address],
        "cc": [],
        "subject": "Résultats",
        "text": "Bonjour.",
        "html": None,
        "attachments": [],
    }
    first = services.send_api_message(token, idempotency_key="cle-1", **request)
    again = services.send_api_message(token, idempotency_key="cle-1", **request)
    assert first.status == again.status == 201
    assert again.body == first.body
    assert Message.objects.count() == 1
    with pytest.raises(services.IdempotencyConflict):
        services.send_api_message(
            token, idempotency_key="cle-1", **{**request, "subject": "Autre chose"}
        )
