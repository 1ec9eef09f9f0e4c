"""The sender another operator wrote is shown for what it is: "via <operator>" when not its own.

A listed peer writes any From: it likes. It speaks for a domain only when the liste
blanche lists its certificate for that domain; otherwise the inbox list and the
reading view say through which operator the message came (as the big webmails do).
Each test sends through the real gateway and reads the webmail pages.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import trustme
from django.test import Client
from django.urls import reverse

from mailboxes.models import Entry, Mailbox
from tests import factories
from tests.personas import Person, login
from tests.smtp_peers import HERE, PEER, Operator, make_operator, send, simple_message
from trust.models import ListedDomain, OperatorCertificate

pytestmark = pytest.mark.django_db(transaction=True)

VIA = f"via {PEER}"


@pytest.fixture
def reader(claire: Person) -> tuple[Mailbox, Client]:
    return claire.box, login(claire.user)


def _raw(from_header: str, to: str, subject: str) -> bytes:
    raw = simple_message("placeholder@x.test", to, subject=subject)
    return raw.replace(b"From: placeholder@x.test", f"From: {from_header}".encode())


def _pages(box: Mailbox, client: Client) -> tuple[str, str]:
    inbox = client.get(reverse("webmail_home"))
    assert inbox.status_code == 200
    entry = Entry.objects.get(mailbox=box)
    reading = client.get(reverse("webmail_read", args=[entry.pk]))
    assert reading.status_code == 200
    return inbox.content.decode(), reading.content.decode()


def test_a_peer_showing_a_local_colleague_as_sender_is_shown_via_the_peer(
    port: int, peer: Operator, reader: tuple[Mailbox, Client]
) -> None:
    box, client = reader
    colleague = factories.mailbox(
        factories.professional(first_name="Paul", last_name="Durand"),
        domain=factories.hosted_domain(HERE),
    )
    raw = _raw(f"Dr Paul Durand <{colleague.address}>", box.address, "Urgent : appelez-moi")
    assert send(port, peer, f"secretariat@{PEER}", [box.address], raw) == {}

    inbox, reading = _pages(box, client)
    assert "Dr Paul Durand" in inbox and VIA in inbox
    assert VIA in reading
    assert "n'est pas habilité à écrire au nom de cette adresse" in reading


def test_a_peer_writing_for_another_operators_domain_is_shown_via_the_peer(
    ca: trustme.CA, tmp_path: Path, port: int, peer: Operator, reader: tuple[Mailbox, Client]
) -> None:
    make_operator(ca, "chu.autre.test", tmp_path / "other").list()
    box, client = reader
    raw = _raw("Pr Leroy <pr.leroy@chu.autre.test>", box.address, "Avis")
    send(port, peer, f"secretariat@{PEER}", [box.address], raw)

    inbox, reading = _pages(box, client)
    assert "Pr Leroy" in inbox and VIA in inbox
    assert VIA in reading


def test_a_peer_writing_for_its_own_domain_is_shown_plainly(
    port: int, peer: Operator, reader: tuple[Mailbox, Client]
) -> None:
    box, client = reader
    send(
        port,
        peer,
        f"dr.martin@{PEER}",
        [box.address],
        _raw(f"Dr Martin <dr.martin@{PEER}>", box.address, "CR"),
    )

    inbox, reading = _pages(box, client)
    assert "Dr Martin" in inbox and "via " not in inbox
    assert "via " not in reading


def test_a_domain_the_liste_blanche_gives_to_the_peers_certificate_is_shown_plainly(
    port: int, peer: Operator, reader: tuple[Mailbox, Client]
) -> None:
    # The same operator serves a second domain, under the same certificate.
    other, _ = ListedDomain.objects.get_or_create(name="cabinet.peer-heberge.test")
    OperatorCertificate.objects.create(domain=other, dn=peer.dn)
    box, client = reader
    raw = _raw("Dr Roux <dr.roux@cabinet.peer-heberge.test>", box.address, "CR")
    send(port, peer, f"secretariat@{PEER}", [box.address], raw)

    inbox, reading = _pages(box, client)
    assert "Dr Roux" in inbox and "via " not in inbox
    assert "via " not in reading


def test_a_display_name_posing_as_an_address_is_not_shown_as_the_sender(
    port: int, peer: Operator, reader: tuple[Mailbox, Client]
) -> None:
    box, client = reader
    raw = _raw(f'"direction@{HERE}" <dr.martin@{PEER}>', box.address, "Note de service")
    send(port, peer, f"dr.martin@{PEER}", [box.address], raw)

    inbox, _reading = _pages(box, client)
    row = inbox[inbox.index("webmail-list__who") :]
    row = row[: row.index("</td>")]
    assert f"dr.martin@{PEER}" in row and f"direction@{HERE}" not in row


def test_the_api_gives_the_operator_it_came_through(
    port: int, peer: Operator, reader: tuple[Mailbox, Client]
) -> None:
    box, _client = reader
    colleague = factories.mailbox(domain=factories.hosted_domain(HERE))
    send(port, peer, f"x@{PEER}", [box.address], _raw(f"<{colleague.address}>", box.address, "A"))

    _token, secret = factories.api_token(box)
    listing = Client().get(
        f"/api/v1/mailboxes/{box.address}/messages", HTTP_AUTHORIZATION=f"Bearer {secret}"
    )
    assert listing.status_code == 200, listing.content
    assert listing.json()["messages"][0]["from_via"] == PEER
