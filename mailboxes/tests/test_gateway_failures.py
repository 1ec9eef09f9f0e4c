"""A failure of ours during an SMTP dialogue is a clean temporary reply, never a permanent one.

Found by the fault-injection suite: with PostgreSQL restarting, MAIL FROM was
answered "500 Error: (OperationalError) connection failed: … port …", a permanent
refusal: the peer bounced messages it would have delivered a second later.
"""

from __future__ import annotations

import smtplib
from pathlib import Path
from typing import Any

import pytest
import trustme
from django.db import OperationalError

from mailboxes.models import Message
from mailboxes.transport import inbound
from tests import factories
from tests.smtp_peers import gateway, make_operator, send, simple_message

pytestmark = pytest.mark.django_db(transaction=True)

HERE = "hopital.mssante.test"
PEER = "clinique.peer.test"


def test_the_database_unreachable_at_mail_from_is_a_clean_451(
    tmp_path: Path, settings: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    ca = trustme.CA()
    here = make_operator(ca, HERE, tmp_path / "here")
    here.settings_for(settings)
    peer = make_operator(ca, PEER, tmp_path / "peer")
    peer.list()
    box = factories.mailbox(domain=factories.hosted_domain(HERE))

    def unreachable(*args: Any, **kwargs: Any) -> bool:
        raise OperationalError(
            'connection failed: connection to server at "10.0.0.5", port 5432 failed:\n'
            "Connection refused"
        )

    monkeypatch.setattr(inbound, "peer_allowed", unreachable)
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
