"""Two MSSanté operators exchanging mail over SMTP with mutual TLS, in one test run.

Operator A hosts ``opa.test``, operator B hosts ``opb.test``. Each has its own
certificate from one trustme CA, its own inbound gateway (our real handler on a
free port) and is listed in the liste blanche with its certificate's DN;
SMTP_ROUTES points each domain at the other's gateway.

The two operators share one database, which works because their domains
differ: each gateway is told which domains it serves, and the side that sends
sees only its own domain as hosted (the other one's HostedDomain row is
inactive, as it would be absent from a real second instance). Switching sides
flips those two flags and the client certificate (``SMTP_TLS_*``) in settings.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import trustme

from mailboxes import services
from mailboxes.models import Delivery, Entry, HostedDomain, Mailbox, Message
from tests import factories
from tests.smtp_peers import Operator, gateway, make_operator, simple_message

pytestmark = pytest.mark.django_db(transaction=True)

DOCS = Path(__file__).resolve().parents[1] / "docs" / "operations.md"


@dataclass
class World:
    a: Operator
    b: Operator
    alice: Mailbox  # at operator A
    bob: Mailbox  # at operator B
    ports: dict[str, int]

    def act_as(self, settings: Any, operator: Operator) -> None:
        """This process now plays ``operator``: its domain is the hosted one, its cert is ours."""
        operator.settings_for(settings)
        for op in (self.a, self.b):
            HostedDomain.objects.filter(name=op.domain).update(active=op is operator)


@pytest.fixture
def world(ca: trustme.CA, tmp_path: Path, settings: Any) -> Iterator[World]:
    a = make_operator(ca, "opa.test", tmp_path / "a")
    b = make_operator(ca, "opb.test", tmp_path / "b")
    a.list()
    b.list()
    alice = factories.mailbox(domain=factories.hosted_domain(a.domain))
    bob = factories.mailbox(domain=factories.hosted_domain(b.domain))
    with gateway(a, domains=[a.domain]) as gw_a, gateway(b, domains=[b.domain]) as gw_b:
        settings.SMTP_ROUTES = {
            a.domain: ("127.0.0.1", gw_a.port),
            b.domain: ("127.0.0.1", gw_b.port),
        }
        yield World(a, b, alice, bob, {a.domain: gw_a.port, b.domain: gw_b.port})


def test_a_message_crosses_to_the_other_operator_and_the_reply_joins_the_conversation(
    world: World, settings: Any
) -> None:
    world.act_as(settings, world.a)
    sent = services.submit_message(
        mailbox=world.alice,
        author=world.alice.owner,
        to=[world.bob.address],
        cc=[],
        subject="Patient commun",
        text="Pouvez-vous le recevoir jeudi ?",
    )
    outgoing = Delivery.objects.get(message=sent)
    assert outgoing.remote and outgoing.status == Delivery.Status.DELIVERED

    arrived = Message.objects.get(origin=Message.Origin.SMTP, entries__mailbox=world.bob)
    assert arrived.message_id == sent.message_id
    assert arrived.subject == "Patient commun"
    assert services.parse(arrived).headers["X-MSS-NIL"].startswith("mssante-portal/")

    world.act_as(settings, world.b)
    reply = services.submit_message(
        mailbox=world.bob,
        author=world.bob.owner,
        to=[world.alice.address],
        cc=[],
        subject="Re: Patient commun",
        text="Oui, jeudi 10 h.",
        in_reply_to=arrived,
    )
    assert Delivery.objects.get(message=reply).status == Delivery.Status.DELIVERED

    back = Message.objects.get(origin=Message.Origin.SMTP, entries__mailbox=world.alice)
    assert back.message_id == reply.message_id
    assert back.in_reply_to == sent.message_id
    # Same conversation as the message Alice sent.
    assert back.thread_key == sent.thread_key
    assert Entry.objects.get(mailbox=world.alice, message=back).folder.role == "inbox"


def test_a_peer_cannot_send_with_the_other_operators_domain(world: World, settings: Any) -> None:
    import smtplib

    from tests.smtp_peers import send

    # B's certificate, but a sender address of A's domain: B is not listed for it.
    raw = simple_message(f"faux@{world.a.domain}", world.bob.address)
    with pytest.raises(smtplib.SMTPSenderRefused):
        send(
            world.ports[world.b.domain], world.b, f"faux@{world.a.domain}", [world.bob.address], raw
        )
    assert not Message.objects.exists()


def _documented_command() -> str:
    text = DOCS.read_text(encoding="utf-8")
    found = re.search(r"<!-- smtp-cli-example -->\s*```sh\n(.*?)```", text, re.S)
    assert found, "docs/operations.md lost its smtplib example"
    return found.group(1)


def test_the_documented_command_line_delivers_with_a_client_certificate(
    world: World, settings: Any, tmp_path: Path
) -> None:
    world.act_as(settings, world.b)
    eml = tmp_path / "message.eml"
    eml.write_bytes(simple_message(f"dr.durand@{world.a.domain}", world.bob.address))
    command = _documented_command()
    env = {
        **os.environ,
        "SMTP_HOST": "127.0.0.1",
        "SMTP_PORT": str(world.ports[world.b.domain]),
        "CA": str(world.a.ca_file),
        "CERT": str(world.a.cert),
        "KEY": str(world.a.key),
        "FROM": f"dr.durand@{world.a.domain}",
        "TO": world.bob.address,
        "MESSAGE": str(eml),
        "PYTHON": sys.executable,
    }
    done = subprocess.run(
        ["bash", "-c", command], env=env, capture_output=True, text=True, timeout=30
    )
    assert done.returncode == 0, done.stderr
    assert Entry.objects.filter(mailbox=world.bob, message__origin=Message.Origin.SMTP).exists()


def test_a_read_receipt_crosses_back_and_the_timeline_says_read(
    world: World, settings: Any
) -> None:
    from mailboxes.transport.timeline import timeline

    world.act_as(settings, world.a)
    sent = services.submit_message(
        mailbox=world.alice,
        author=world.alice.owner,
        to=[world.bob.address],
        cc=[],
        subject="Avec accusé",
        text="Merci de confirmer la lecture.",
        extra_headers={"Disposition-Notification-To": world.alice.address},
    )
    sent.refresh_from_db()
    assert [s.state for s in timeline(sent)[0].steps] == ["submitted", "scanned", "delivered"]

    world.act_as(settings, world.b)
    entry = Entry.objects.get(mailbox=world.bob, message__origin=Message.Origin.SMTP)
    services.open_entry(entry, by=world.bob.owner)
    services.open_entry(entry, by=world.bob.owner)  # a second opening sends nothing more

    receipts = [
        m
        for m in Message.objects.filter(origin=Message.Origin.SMTP, entries__mailbox=world.alice)
        if m.subject.startswith("Accusé")
    ]
    assert len(receipts) == 1
    # The receipt is kept (what the peer said) but not as unread inbox mail: the timeline
    # of the original says "Lu"; the receipt is filed, read, in the archive.
    receipt = receipts[0]
    assert receipt.receipt_of_id == sent.pk
    filed = Entry.objects.get(mailbox=world.alice, message=receipt)
    assert filed.seen and filed.folder.role == "archive"
    assert not Entry.objects.filter(mailbox=world.alice, folder__role="inbox", seen=False).exists()
    delivery = Delivery.objects.get(message=sent)
    assert delivery.read_at is not None
    line = timeline(sent)[0]
    assert line.recipient == world.bob.address and line.remote
    assert line.current.state == "read"
