"""The peer accepted the message, then our database failed: the message is not sent twice.

Found by the fault-injection suite (PostgreSQL restarted mid-delivery): the peer's
250 could not be recorded, the deliveries stayed claimed, and once the claim's lease
was over they were sent again: the remote recipient got the message twice.
"""

from __future__ import annotations

import contextlib
import email
import time
from typing import Any

import pytest
from django.db import OperationalError

from mailboxes import services
from mailboxes.models import Delivery, Message
from mailboxes.transport import outbound
from tests import factories
from tests.smtp_peers import HERE, PEER, Operator, Sink, free_port, sink

pytestmark = pytest.mark.django_db(transaction=True)


def test_a_database_hiccup_after_the_peers_250_does_not_send_the_message_again(
    here: Operator, peer: Operator, settings: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    box = factories.mailbox(domain=factories.hosted_domain(HERE))
    port = free_port()
    # A claim's lease of 3 s (3 x SMTP_TIMEOUT) rather than 3 min.
    settings.SMTP_TIMEOUT = settings.DELIVERY_RETRY_SECONDS = 1
    settings.SMTP_ROUTES = {PEER: ("127.0.0.1", port)}
    real_record = outbound._record
    calls: list[int] = []

    def record_after_a_hiccup(*args: Any, **kwargs: Any) -> None:
        calls.append(1)
        if len(calls) == 1:
            raise OperationalError("server closed the connection unexpectedly")
        real_record(*args, **kwargs)

    monkeypatch.setattr(outbound, "_record", record_after_a_hiccup)
    handler = Sink()
    with sink(peer, handler, port=port):
        with contextlib.suppress(OperationalError):
            services.submit_message(
                mailbox=box, author=box.owner, to=[f"dr.durand@{PEER}"], cc=[],
                subject="Résultats", text="Bonjour.",
            )  # fmt: skip
        # Once the claim's lease is over, the sweeper finds nothing left to send.
        time.sleep(outbound._lease().total_seconds() + 0.5)
        services.sweep()
    assert len(handler.messages) == 1
    assert Delivery.objects.get().status == Delivery.Status.DELIVERED


class _Consumer:
    """What Celery passes as ``worker_ready``'s sender (its consumer): a node name."""

    def __init__(self, hostname: str) -> None:
        self.hostname = hostname


def test_a_worker_restarted_after_a_crash_mid_send_sends_at_once_what_it_held(
    here: Operator, peer: Operator, settings: Any
) -> None:
    """Killed between its claim and the peer's answer, a worker left deliveries leased
    for 3 x SMTP_TIMEOUT (3 min); restarted, it takes them back at once. What another
    worker holds stays held: that worker may still be sending it."""
    from celery import signals
    from django.utils import timezone

    from mailboxes import reasons

    box = factories.mailbox(domain=factories.hosted_domain(HERE))
    port = free_port()
    settings.SMTP_ROUTES = {PEER: ("127.0.0.1", port)}
    for subject in ("held by the dead worker", "held by a live worker"):
        # Nobody listens yet: the deliveries wait, deferred.
        services.submit_message(
            mailbox=box, author=box.owner, to=[f"dr.durand@{PEER}"], cc=[],
            subject=subject, text="Bonjour.",
        )  # fmt: skip
    now = timezone.now()
    for holder, subject in (
        ("celery@a", "held by the dead worker"),
        ("celery@b", "held by a live worker"),
    ):
        message = next(m for m in Message.objects.all() if m.subject == subject)
        Delivery.objects.filter(message=message).update(
            status=Delivery.Status.DEFERRED,
            reason=reasons.SENDING,
            reason_params={"holder": holder},
            next_attempt_at=now + outbound._lease(),
            updated_at=now,
        )
    handler = Sink()
    with sink(peer, handler, port=port):
        signals.worker_ready.send(sender=_Consumer("celery@a"))
        services.sweep()  # nothing else is due: the live worker's lease runs
    sent = [email.message_from_bytes(raw)["Subject"] for _, _, raw in handler.messages]
    assert sent == ["held by the dead worker"]
    states = dict(Delivery.objects.values_list("message__subject", "status"))
    assert states == {
        "held by the dead worker": Delivery.Status.DELIVERED,
        "held by a live worker": Delivery.Status.DEFERRED,
    }
