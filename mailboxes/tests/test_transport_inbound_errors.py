"""The gateway under its own failures and hostile envelopes: always one clean reply line.

A failure of ours (the database unreachable, a bug) must be a 4xx — the peer keeps the
message and tries again — never a 5xx that bounces it, and never our internals
(exception class, database host and port) in the reply. A malformed envelope from the
peer is a clean 5xx, not a crash.
"""

from __future__ import annotations

import logging
import smtplib
from collections.abc import Iterator
from pathlib import Path

import pytest
import trustme
from django.conf import settings as django_settings

from mailboxes.models import Delivery, Entry, Mailbox, Message
from tests.smtp_peers import (
    HERE,
    PEER,
    DatabaseSwitch,
    Operator,
    gateway_with_database_switch,
    make_operator,
    simple_message,
)

pytestmark = pytest.mark.django_db(transaction=True)

SENDER = f"dr.martin@{PEER}"
# What a PostgreSQL outage put in the reply before: none of it may reach a peer.
INTERNALS = (b"Error", b"OperationalError", b"port", b"127.0.0.1", b"sqlite", b"connection")


@pytest.fixture
def box(doctor: Mailbox) -> Mailbox:
    """Dr Martin's box, where the peer's messages arrive."""
    return doctor


@pytest.fixture
def switched(here: Operator) -> Iterator[tuple[int, DatabaseSwitch]]:
    with gateway_with_database_switch(here) as (controller, switch):
        yield controller.port, switch


@pytest.fixture
def client(switched: tuple[int, DatabaseSwitch], peer: Operator) -> Iterator[smtplib.SMTP]:
    port, _switch = switched
    with smtplib.SMTP("127.0.0.1", port, timeout=10) as smtp:
        yield smtp


def _tls(client: smtplib.SMTP, peer: Operator) -> None:
    assert client.ehlo("mx.peer.test")[0] == 250
    assert client.starttls(context=peer.client_context())[0] == 220
    assert client.ehlo("mx.peer.test")[0] == 250


def assert_temporary(reply: tuple[int, bytes]) -> None:
    code, text = reply
    assert 400 <= code < 500, reply
    assert b"\n" not in text and b"\r" not in text, reply
    for word in INTERNALS:
        assert word.lower() not in text.lower(), reply


def _logged(caplog: pytest.LogCaptureFixture) -> bool:
    return any(
        r.name == "mailboxes.transport.inbound" and r.levelno >= logging.ERROR
        for r in caplog.records
    )


def test_the_database_down_before_mail_from_gives_a_clean_451_and_the_peer_can_retry(
    switched: tuple[int, DatabaseSwitch],
    client: smtplib.SMTP,
    peer: Operator,
    box: Mailbox,
    caplog: pytest.LogCaptureFixture,
) -> None:
    _port, switch = switched
    switch.down()
    # EHLO and STARTTLS need no database: they still answer.
    _tls(client, peer)
    assert_temporary(client.mail(SENDER))
    assert _logged(caplog)

    # The database is back: the same session goes on and the message arrives once.
    switch.up()
    client.rset()
    assert client.mail(SENDER)[0] == 250
    assert client.rcpt(box.address)[0] == 250
    assert client.data(simple_message(SENDER, box.address))[0] == 250
    assert Entry.objects.filter(mailbox=box).count() == 1


def test_the_database_down_at_rcpt_to_gives_a_clean_451(
    switched: tuple[int, DatabaseSwitch],
    client: smtplib.SMTP,
    peer: Operator,
    box: Mailbox,
    caplog: pytest.LogCaptureFixture,
) -> None:
    _port, switch = switched
    _tls(client, peer)
    assert client.mail(SENDER)[0] == 250
    switch.down()
    assert_temporary(client.rcpt(box.address))
    assert _logged(caplog)


def test_the_database_down_at_data_gives_a_clean_451_and_stores_nothing(
    switched: tuple[int, DatabaseSwitch],
    client: smtplib.SMTP,
    peer: Operator,
    box: Mailbox,
    caplog: pytest.LogCaptureFixture,
) -> None:
    _port, switch = switched
    _tls(client, peer)
    assert client.mail(SENDER)[0] == 250
    assert client.rcpt(box.address)[0] == 250
    switch.down()
    assert_temporary(client.data(simple_message(SENDER, box.address)))
    assert _logged(caplog)
    assert not Message.objects.exists()
    assert not Delivery.objects.exists()
    blobs = Path(django_settings.BLOB_ROOT)
    assert not [p for p in blobs.rglob("*") if p.is_file()]


def test_a_refused_peer_is_still_answered_cleanly_when_the_journal_cannot_be_written(
    ca: trustme.CA,
    tmp_path: Path,
    switched: tuple[int, DatabaseSwitch],
    box: Mailbox,
) -> None:
    port, switch = switched
    stranger = make_operator(ca, "inconnu.test", tmp_path / "stranger")
    switch.down()
    with smtplib.SMTP("127.0.0.1", port, timeout=10) as client:
        _tls(client, stranger)
        assert_temporary(client.mail("x@inconnu.test"))


# --------------------------------------------------------------------------- hostile envelopes


@pytest.fixture
def session(port: int, peer: Operator) -> Iterator[smtplib.SMTP]:
    with smtplib.SMTP("127.0.0.1", port, timeout=10) as smtp:
        _tls(smtp, peer)
        yield smtp


def _command(client: smtplib.SMTP, line: bytes) -> tuple[int, bytes]:
    assert client.sock is not None
    client.sock.sendall(line + b"\r\n")
    return client.getreply()


def assert_clean_refusal(reply: tuple[int, bytes]) -> None:
    code, text = reply
    assert 500 <= code < 600, reply
    assert b"\n" not in text, reply
    assert b"Error: (" not in text, reply  # aiosmtpd's rendering of an exception


@pytest.mark.parametrize(
    "address",
    [
        b"dr\x00martin@" + PEER.encode(),
        b"dr.martin@" + PEER.encode() + b"\x00.evil.test",
        b"dr\x7fmartin@" + PEER.encode(),
        b"x" * 300 + b"@" + PEER.encode(),
    ],
    ids=["nul-local", "nul-domain", "del", "over-long"],
)
def test_a_hostile_mail_from_is_refused_cleanly_and_the_session_goes_on(
    session: smtplib.SMTP, box: Mailbox, address: bytes
) -> None:
    assert_clean_refusal(_command(session, b"MAIL FROM:<" + address + b">"))
    # The session is still usable, nothing was half-started.
    assert session.mail(SENDER)[0] == 250
    assert session.rcpt(box.address)[0] == 250
    assert session.data(simple_message(SENDER, box.address))[0] == 250
    assert Message.objects.count() == 1


@pytest.mark.parametrize(
    "address",
    [
        b"camille\x00@" + HERE.encode(),
        b"camille@" + HERE.encode() + b"\x00",
        b"y" * 400 + b"@" + HERE.encode(),
        b"postmaster",
        b"@relay.test:camille@" + HERE.encode(),
    ],
    ids=["nul-local", "nul-domain", "over-long", "no-domain", "source-route"],
)
def test_a_hostile_rcpt_to_is_refused_cleanly(
    session: smtplib.SMTP, box: Mailbox, address: bytes
) -> None:
    assert session.mail(SENDER)[0] == 250
    assert_clean_refusal(_command(session, b"RCPT TO:<" + address + b">"))
    assert session.rcpt(box.address)[0] == 250
    assert session.data(simple_message(SENDER, box.address))[0] == 250
    assert Entry.objects.filter(mailbox=box).count() == 1


@pytest.mark.parametrize(
    "line",
    [
        b"MAIL FROM:<dr.martin@clinique.peer.test> SIZE=99999999999999999999999999",
        b"MAIL FROM:<dr.martin@clinique.peer.test> BODY=BINARYMIME",
        b"MAIL FROM:<dr.martin@clinique.peer.test> ENVID=\x00",
        b"MAIL FROM:<dr.martin@clinique.peer.test> " + b"X=" + b"a" * 400,
        b"MAIL FROM:<<>>",
        b"MAIL FROM:<\xff\xfe@clinique.peer.test>",
        b"MAIL FROM:<dr.martin@clinique.peer.test\xff>",
    ],
    ids=["huge-size", "binarymime", "nul-param", "long-param", "nested", "not-utf8", "not-utf8-2"],
)
def test_odd_mail_parameters_are_refused_cleanly(
    session: smtplib.SMTP, box: Mailbox, line: bytes
) -> None:
    assert_clean_refusal(_command(session, line))
    session.rset()
    assert session.mail(SENDER)[0] == 250
    assert session.rcpt(box.address)[0] == 250
    assert session.data(simple_message(SENDER, box.address))[0] == 250


def test_a_recipient_that_is_not_utf8_is_refused_cleanly(session: smtplib.SMTP) -> None:
    assert session.mail(SENDER)[0] == 250
    assert_clean_refusal(_command(session, b"RCPT TO:<camille\xff@" + HERE.encode() + b">"))


def test_a_bug_of_ours_anywhere_in_the_dialogue_is_a_clean_451(
    session: smtplib.SMTP, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    from mailboxes.transport import inbound

    def broken(address: str) -> str:
        raise RuntimeError("connection to 10.0.0.5 port 5432 failed\n\tIs the server running?")

    # A bug outside any database call: aiosmtpd's own handler of exceptions answers.
    monkeypatch.setattr(inbound.addresses, "domain_of", broken)
    assert_temporary(session.mail(SENDER))
    assert _logged(caplog)
