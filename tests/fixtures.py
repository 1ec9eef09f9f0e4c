"""The personas as pytest fixtures (registered by the root conftest.py for every test).

A test names who acts: ``def test_x(claire, julien)`` gets Dr Claire Martin and Julien
Dupont, each with their box (``claire.user``, ``claire.box``, or ``user, box = claire``).
Who they are is written once, in ``tests/personas.py``; tests/README.md says how to use them.

They open the test database (the ``db`` fixture, which a ``django_db(transaction=True)``
mark turns into a transactional one).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import trustme
from django.test import Client

from accounts.models import User
from mailboxes.models import Mailbox
from tests import factories, personas
from tests.personas import Lab, Person
from tests.smtp_peers import HERE, PEER, Operator, gateway, make_operator


@pytest.fixture
def claire(db: None) -> Person:
    """Dr Claire Martin, médecin, and her nominative box."""
    return personas.claire()


@pytest.fixture
def julien(db: None) -> Person:
    """Julien Dupont, infirmier, and his nominative box."""
    return personas.julien()


@pytest.fixture
def doctor(claire: Person) -> Mailbox:
    """Claire's box: the box a service test sends from."""
    return claire.box


@pytest.fixture
def nurse(julien: Person) -> Mailbox:
    """Julien's box: the box a service test sends to."""
    return julien.box


@pytest.fixture
def lea(db: None) -> Person:
    """Léa Petit and her box; a reader of the secretariat (``secretariat``)."""
    return personas.lea()


@pytest.fixture
def anne(db: None) -> User:
    """Anne Lambert: no box of her own; works in the boxes others let her use."""
    return personas.anne()


@pytest.fixture
def paul(db: None) -> Person:
    """Paul Durand and his box: no right in anyone else's."""
    return personas.paul()


@pytest.fixture
def lucie(db: None) -> Person:
    """Lucie Anne MOREAU, a patient, and her box in the patient domain."""
    return personas.lucie()


@pytest.fixture
def staff(db: None) -> User:
    """The operator's team: a superuser of the admin."""
    return factories.staff()


@pytest.fixture
def staff_client(staff: User) -> Client:
    """A client of ``staff`` logged in through the login pages, so the admin opens."""
    return personas.logged_in(staff)


@pytest.fixture
def secretariat(claire: Person, julien: Person, lea: Person) -> Mailbox:
    """The cardiology secretariat (ORG): Claire runs it, Julien may send, Léa may read."""
    return personas.secretariat(claire.user, send=(julien.user,), read=(lea.user,))


@pytest.fixture
def laboratoire(db: None) -> Lab:
    """Sophie Bernard's lab: an APP box and its API token (``raw`` is the clear value)."""
    return personas.laboratoire()


# --- Two operators over SMTP: ``here`` (us) and a remote ``peer`` -----------------------


@pytest.fixture(scope="session")
def ca() -> trustme.CA:
    """The certificate authority both operators' certificates come from."""
    return trustme.CA()


@pytest.fixture
def here(ca: trustme.CA, tmp_path: Path, settings: Any) -> Operator:
    """Our operator (hopital.mssante.test): this process delivers with its certificate."""
    operator = make_operator(ca, HERE, tmp_path / "here")
    operator.settings_for(settings)
    return operator


@pytest.fixture
def peer(db: None, ca: trustme.CA, tmp_path: Path) -> Operator:
    """Another operator of the trust space (clinique.peer.test), on the liste blanche."""
    operator = make_operator(ca, PEER, tmp_path / "peer")
    operator.list()
    return operator


@pytest.fixture
def port(here: Operator) -> Iterator[int]:
    """The port of our inbound SMTP gateway, running for the test."""
    with gateway(here) as controller:
        yield controller.port
