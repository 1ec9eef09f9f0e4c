"""The database out of reach is a temporary failure at every door, said plainly.

Found by the fault-injection suite: with PostgreSQL restarting, the gateway answered
MAIL FROM with "500 Error: (OperationalError) connection failed: … port …", a
permanent refusal (the peer bounced messages it would have delivered a second
later), and the web and the API answered a bare 500.
"""

from __future__ import annotations

import smtplib
from typing import Any

import pytest
from django.db import OperationalError

from mailboxes.models import Message
from mailboxes.transport import inbound
from tests import factories
from tests.personas import Lab, login
from tests.smtp_peers import HERE, PEER, Operator, gateway, send, simple_message

pytestmark = pytest.mark.django_db(transaction=True)


def test_the_database_unreachable_at_mail_from_is_a_clean_451(
    here: Operator, peer: Operator, monkeypatch: pytest.MonkeyPatch
) -> None:
    box = factories.mailbox(domain=factories.hosted_domain(HERE))

    def unreachable(*args: Any, **kwargs: Any) -> frozenset[Any]:
        raise OperationalError(
            'connection failed: connection to server at "10.0.0.5", port 5432 failed:\n'
            "Connection refused"
        )

    # What MAIL FROM reads of the liste blanche (then kept a while by the gateway).
    monkeypatch.setattr(inbound, "listed_dns", unreachable)
    raw = simple_message(f"dr.martin@{PEER}", box.address)
    with gateway(here) as controller:
        with pytest.raises(smtplib.SMTPSenderRefused) as refused:
            send(controller.port, peer, f"dr.martin@{PEER}", [box.address], raw)
        assert refused.value.smtp_code == 451
        reply = refused.value.smtp_error.decode()
        assert reply.startswith("4.3.0 ") and "\n" not in reply
        assert "5432" not in reply and "OperationalError" not in reply
        monkeypatch.undo()
        # The dialogue is still usable, and the peer's next try is accepted.
        assert send(controller.port, peer, f"dr.martin@{PEER}", [box.address], raw) == {}
    assert Message.objects.count() == 1


def _database_gone(*args: Any, **kwargs: Any) -> Any:
    raise OperationalError("server closed the connection unexpectedly")


def test_the_webmail_says_in_french_that_the_service_is_briefly_unavailable(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from mailboxes import selectors

    user = factories.professional()
    box = factories.mailbox(user, domain=factories.hosted_domain(HERE))
    client = login(user, raise_request_exception=False)
    monkeypatch.setattr(selectors, "get_mailbox", _database_gone)
    response = client.get(f"/messagerie/bal/{box.pk}/")
    assert response.status_code == 503
    assert response["Retry-After"]
    assert "momentanément indisponible" in response.content.decode()


def test_the_api_answers_503_when_the_database_is_out_of_reach(
    laboratoire: Lab, monkeypatch: pytest.MonkeyPatch
) -> None:
    from django.test import Client

    from mailboxes import services

    app, secret = laboratoire.box, laboratoire.raw
    monkeypatch.setattr(services, "send_api_message", _database_gone)
    response = Client(headers={"Authorization": f"Bearer {secret}"}).post(
        "/api/v1/messages",
        {"to": [app.address], "subject": "Essai", "text": "Texte"},
        content_type="application/json",
    )
    assert response.status_code == 503
    assert response.json()["code"] == "unavailable"
    assert "momentanément indisponible" in response.json()["message"]
