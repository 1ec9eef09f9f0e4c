"""Group commit at the gateway: concurrent sessions' messages stored in one transaction.

Each test makes its sessions meet in one group: the committer takes at most ``n`` messages
and waits (up to 10 s here) for more once it has one, so ``n`` sessions sending at once are
stored by one transaction. A session hears 250 only once that transaction committed.
"""

from __future__ import annotations

import smtplib
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from django.db import connection

from audit.models import AuditEvent
from mailboxes.models import Delivery, Entry, Mailbox, Message
from mailboxes.transport import mdn
from tests.smtp_peers import PEER, Operator, gateway, send, simple_message
from trust.models import OperatorCertificate

pytestmark = pytest.mark.django_db(transaction=True)

SENDER = f"dr.martin@{PEER}"


@contextmanager
def grouped(settings: Any, here: Operator, n: int) -> Iterator[Controller]:
    """Our gateway, whose committer stores ``n`` messages together (waiting for them)."""
    settings.SMTP_GROUP_COMMIT_MAX = n
    settings.SMTP_GROUP_COMMIT_WAIT_MS = 10_000
    with gateway(here) as controller:
        yield controller


def send_together(port: int, peer: Operator, raws: list[bytes], to: str) -> list[Any]:
    """Each message on a connection of its own, all at once: what each sender was told.

    An outcome is smtplib's dict of refused recipients (empty: 250) or the exception.
    """
    outcomes: list[Any] = [None] * len(raws)

    def deliver(i: int) -> None:
        try:
            outcomes[i] = send(port, peer, SENDER, [to], raws[i])
        except (smtplib.SMTPException, OSError) as exc:
            outcomes[i] = exc

    threads = [threading.Thread(target=deliver, args=(i,)) for i in range(len(raws))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    return outcomes


def code(outcome: Any) -> int:
    if outcome == {}:
        return 250
    assert isinstance(outcome, smtplib.SMTPResponseException), outcome
    return outcome.smtp_code


def messages(box: Mailbox, n: int, prefix: str = "Compte rendu") -> list[bytes]:
    return [simple_message(SENDER, box.address, subject=f"{prefix} {i}") for i in range(n)]


def fail_for(subject: str, action: Callable[[Message], None]) -> Callable[..., int]:
    """``mdn.apply_report``, run inside each message's transaction, doing ``action`` for one."""
    real = mdn.apply_report

    def apply_report(message: Message, raw: bytes, peer: Any = None) -> int:
        if message.subject == subject:
            action(message)
        return real(message, raw=raw, peer=peer)

    return apply_report


def test_sessions_sending_at_once_share_one_commit_and_each_message_is_stored_once(
    settings: Any, here: Operator, peer: Operator, doctor: Mailbox
) -> None:
    raws = messages(doctor, 4)
    with grouped(settings, here, 4) as controller:
        outcomes = send_together(controller.port, peer, raws, doctor.address)
        sizes = controller.handler.committer.sizes

    assert [code(o) for o in outcomes] == [250] * 4
    assert sizes == [4]  # one transaction for the four
    subjects = Entry.objects.filter(mailbox=doctor).values_list("message__subject", flat=True)
    assert sorted(subjects) == [f"Compte rendu {i}" for i in range(4)]
    assert Message.objects.count() == 4 and Delivery.objects.count() == 4
    assert AuditEvent.objects.filter(action="message.received").count() == 4


def test_one_message_whose_rows_fail_gets_451_and_the_rest_of_its_group_is_stored(
    settings: Any,
    here: Operator,
    peer: Operator,
    doctor: Mailbox,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    def broken_statement(message: Message) -> None:
        # A statement of this message's transaction fails, after its Message and Delivery
        # rows were written: on PostgreSQL the whole transaction is then aborted, unless
        # rolled back to the message's savepoint.
        with connection.cursor() as cursor:
            cursor.execute("SELECT * FROM no_such_table_in_the_gateway_test")

    monkeypatch.setattr(mdn, "apply_report", fail_for("Compte rendu 1", broken_statement))
    raws = messages(doctor, 3)
    with grouped(settings, here, 3) as controller:
        outcomes = send_together(controller.port, peer, raws, doctor.address)
        sizes = controller.handler.committer.sizes

    assert sizes == [3]
    assert [code(o) for o in outcomes] == [250, 451, 250]
    assert b"4.3.0" in outcomes[1].smtp_error and b"\n" not in outcomes[1].smtp_error
    subjects = sorted(Message.objects.values_list("subject", flat=True))
    assert subjects == ["Compte rendu 0", "Compte rendu 2"]
    assert Delivery.objects.count() == 2
    assert Entry.objects.filter(mailbox=doctor).count() == 2
    assert AuditEvent.objects.filter(action="message.received").count() == 2


def test_a_commit_that_fails_answers_451_to_every_session_of_the_group_and_stores_none(
    settings: Any,
    here: Operator,
    peer: Operator,
    doctor: Mailbox,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    def dangling_reference(message: Message) -> None:
        # Foreign keys are checked at COMMIT (deferred): every statement succeeds, every
        # savepoint is released, and the database refuses the commit itself.
        Delivery.objects.filter(message=message).update(mailbox_id=2_000_000_000)

    monkeypatch.setattr(mdn, "apply_report", fail_for("Compte rendu 2", dangling_reference))
    raws = messages(doctor, 3)
    with grouped(settings, here, 3) as controller:
        outcomes = send_together(controller.port, peer, raws, doctor.address)
        sizes = controller.handler.committer.sizes

    assert sizes == [3]
    assert [code(o) for o in outcomes] == [451, 451, 451]
    assert not Message.objects.exists()
    assert not Delivery.objects.exists()
    assert not AuditEvent.objects.filter(action="message.received").exists()

    # The peers try again; without the fault, all three are stored once.
    monkeypatch.undo()
    with grouped(settings, here, 3) as controller:
        again = send_together(controller.port, peer, raws, doctor.address)
    assert [code(o) for o in again] == [250] * 3
    assert Entry.objects.filter(mailbox=doctor).count() == 3


@pytest.mark.skipif(
    connection.vendor != "postgresql", reason="ends the gateway's own PostgreSQL backend"
)
def test_the_connection_lost_in_the_middle_of_a_group_answers_451_to_all_and_stores_none(
    settings: Any,
    here: Operator,
    peer: Operator,
    doctor: Mailbox,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    def connection_lost(message: Message) -> None:
        # As a PostgreSQL restart does: the backend ends, its transaction with it. Django
        # cannot roll back to the savepoint and rolls back without raising at the end.
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_terminate_backend(pg_backend_pid())")

    monkeypatch.setattr(mdn, "apply_report", fail_for("Compte rendu 1", connection_lost))
    raws = messages(doctor, 3)
    with grouped(settings, here, 3) as controller:
        outcomes = send_together(controller.port, peer, raws, doctor.address)

    assert [code(o) for o in outcomes] == [451, 451, 451]
    assert not Message.objects.exists()
    assert not Delivery.objects.exists()


def test_two_copies_of_one_resend_in_the_same_group_are_one_message(
    settings: Any, here: Operator, peer: Operator, doctor: Mailbox
) -> None:
    # Its 250 lost, the peer sends the message again on another connection at once.
    raw = simple_message(SENDER, doctor.address)
    with grouped(settings, here, 2) as controller:
        outcomes = send_together(controller.port, peer, [raw, raw], doctor.address)
        sizes = controller.handler.committer.sizes

    assert sizes == [2]
    assert [code(o) for o in outcomes] == [250, 250]
    assert Message.objects.count() == 1
    assert Delivery.objects.count() == 1
    assert Entry.objects.filter(mailbox=doctor).count() == 1
    assert AuditEvent.objects.filter(action="message.resent").count() == 1


def test_a_certificate_taken_off_the_liste_blanche_is_refused_once_the_cache_time_is_over(
    settings: Any, here: Operator, peer: Operator, doctor: Mailbox
) -> None:
    settings.SMTP_CACHE_SECONDS = 1
    with gateway(here) as controller:
        assert send(controller.port, peer, SENDER, [doctor.address], messages(doctor, 1)[0]) == {}
        OperatorCertificate.objects.filter(dn=peer.dn).delete()
        time.sleep(1.1)
        with pytest.raises(smtplib.SMTPSenderRefused) as refused:
            send(controller.port, peer, SENDER, [doctor.address], messages(doctor, 1)[0])
    assert refused.value.smtp_code == 550
    assert Message.objects.count() == 1
