"""Who acts in the tests, defined once, and how they act: log in, submit, send.

The cast (``tests/fixtures.py`` hands each one to a test by name; tests/README.md says how):

- ``claire``: Dr Claire Martin, médecin, with her nominative box at hopital.mssante.test;
  responsible for the cardiology secretariat (as in the demo);
- ``julien``: Julien Dupont, infirmier, with his own box; may send from the secretariat;
- ``lea``: Léa Petit, with her own box; may only read the secretariat (the read-only delegate);
- ``anne``: Anne Lambert, secrétaire médicale: no box of her own, she works in the boxes
  others let her use;
- ``paul``: Paul Durand, a professional with his own box and no right in anyone else's;
- ``lucie``: Lucie Anne MOREAU, a patient, with her box in the patient domain;
- ``staff``: the operator's team (a superuser of the admin);
- the ``secretariat``: the cardiology secretariat (ORG) with the grants above;
- the ``laboratoire``: Sophie Bernard's lab, an applicative (APP) box and its API token;
- the remote ``peer`` (clinique.peer.test), an operator of the liste blanche, talking to
  ``here`` (our operator) over mutual TLS: see ``tests/smtp_peers.py``.

Every person has the password ``factories.PASSWORD`` and an authenticator app
(``factories.code_for(user)`` gives its current code).

The authorisation matrix speaks of the same people by their role (``build()``): ``owner`` is
Claire, ``outsider`` is Paul, ``patient`` is a patient like Lucie, and three delegates are
named for what they may do.
"""

from __future__ import annotations

import json
import re
import urllib.error
import urllib.request
from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import dataclass
from typing import Any, NamedTuple, TypeVar

from django.test import Client, TestCase
from django.urls import reverse
from django_otp import DEVICE_ID_SESSION_KEY

from accounts.models import TOTPDevice, User
from mailboxes import services
from mailboxes.models import ApiToken, Draft, Mailbox, Membership, Message
from tests import factories

DOMAIN = factories.HOSPITAL
T = TypeVar("T")


class Person(NamedTuple):
    """A professional or a patient and their own box; unpacks as ``user, box``."""

    user: User
    box: Mailbox


@dataclass
class Lab:
    """An applicative box (the lab's software sends through the API) and its token."""

    box: Mailbox
    token: ApiToken
    raw: str
    responsible: User


# --- The cast ---------------------------------------------------------------------------


def person(first_name: str, last_name: str, **kwargs: Any) -> Person:
    """A professional (médecin unless ``profession`` says otherwise) with a box at DOMAIN."""
    user = factories.professional(first_name=first_name, last_name=last_name, **kwargs)
    return Person(user, factories.mailbox(user, domain=factories.hosted_domain(DOMAIN)))


def claire(**kwargs: Any) -> Person:
    return person("Claire", "Martin", **kwargs)


def julien(**kwargs: Any) -> Person:
    return person("Julien", "Dupont", profession="60", **kwargs)


def lea(**kwargs: Any) -> Person:
    return person("Léa", "Petit", **kwargs)


def anne(**kwargs: Any) -> User:
    return factories.professional(first_name="Anne", last_name="Lambert", **kwargs)


def paul(**kwargs: Any) -> Person:
    return person("Paul", "Durand", **kwargs)


def lucie(**kwargs: Any) -> Person:
    user = factories.patient(**kwargs)
    return Person(user, factories.patient_mailbox(user))


def secretariat(
    responsible: User, *, send: tuple[User, ...] = (), read: tuple[User, ...] = ()
) -> Mailbox:
    """The cardiology secretariat (ORG), run by ``responsible``, with the members given."""
    box = factories.shared_mailbox(
        responsible, local="cardiologie", domain=factories.hosted_domain(DOMAIN)
    )
    for role, users in ((Membership.Role.SEND, send), (Membership.Role.READ, read)):
        for user in users:
            factories.member(box, user, role)
    return box


def laboratoire() -> Lab:
    """Sophie Bernard's lab: an APP box at DOMAIN and a token for its software."""
    biologist = factories.professional(first_name="Sophie", last_name="Bernard")
    box = factories.shared_mailbox(
        biologist,
        kind=Mailbox.Kind.APPLICATIVE,
        local="labo",
        domain=factories.hosted_domain(DOMAIN),
        display_name="Laboratoire",
    )
    token, raw = factories.api_token(box, label="SIL")
    return Lab(box=box, token=token, raw=raw, responsible=biologist)


# --- How they act -----------------------------------------------------------------------


def login(user: User, **client_kwargs: Any) -> Client:
    """A client of ``user`` past both login steps (a session, as after the two-step login).

    For the login pages themselves, use ``logged_in``.
    """
    client = Client(**client_kwargs)
    client.force_login(user, backend="accounts.backends.IdentifierBackend")
    session = client.session
    session[DEVICE_ID_SESSION_KEY] = TOTPDevice.objects.get(user=user).persistent_id
    session.save()
    return client


def logged_in(user: User, *, identifier: str | None = None, **client_kwargs: Any) -> Client:
    """A client that logged in as ``user`` through the pages: identifier and password, code."""
    client = Client(**client_kwargs)
    if identifier is None:
        professional = user.kind == User.Kind.PROFESSIONAL
        identifier = user.professional.id_number if professional else user.username
    client.post("/connexion/", {"identifier": identifier, "password": factories.PASSWORD})
    response = client.post("/connexion/code/", {"code": factories.code_for(user)})
    assert response.status_code == 302, "login failed"
    return client


def start_draft(client: Client, box: Mailbox, subject: str = "Brouillon") -> Draft:
    """Écrire un message, then type a subject: the page's first autosave makes its draft."""
    page = client.get(reverse("webmail_compose", args=[box.pk]))
    assert page.status_code == 200, page.status_code
    found = re.search(r'name="compose_key" value="([^"]+)"', page.content.decode())
    assert found is not None
    response = client.post(
        reverse("webmail_compose_save", args=[box.pk]),
        {"compose_key": found.group(1), "subject": subject},
        headers={"HX-Request": "true"},
    )
    assert response.status_code == 200, response.status_code
    return Draft.objects.filter(mailbox=box).latest("pk")


def after_commit() -> AbstractContextManager[list[Callable[[], Any]]]:
    """``with after_commit():`` runs, at the end of the block, the work queued on commit in it
    (scan, deliveries, receipts): a test's transaction never commits, so without this
    nothing queued on commit would run."""
    return TestCase.captureOnCommitCallbacks(execute=True)


def committed(fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
    """Call ``fn``, then the work it queued for after commit (see ``after_commit``)."""
    with after_commit():
        return fn(*args, **kwargs)


def submit(box: Mailbox, to: list[str], *, author: User | None = None, **kwargs: Any) -> Message:
    """Submit a message from ``box`` (by its holder unless ``author``): stored, not yet sent.

    What it queued for after commit does not run (use ``send`` to have it delivered).
    """
    params: dict[str, Any] = {"cc": [], "subject": "Compte rendu", "text": "Bonjour."}
    params.update(kwargs)
    return services.submit_message(mailbox=box, author=author or box.owner, to=to, **params)


def send(box: Mailbox, to: list[str], *, author: User | None = None, **kwargs: Any) -> Message:
    """Submit a message and deliver it, as the web compose does once its request commits."""
    return committed(submit, box, to, author=author, **kwargs)


def api_post(url: str, token: str, body: dict[str, Any], key: str) -> tuple[int, dict[str, Any]]:
    """POST ``body`` to the API of a running server (``live_server``), as software holding
    ``token`` does, with an Idempotency-Key; the status and the JSON answer."""
    request = urllib.request.Request(  # noqa: S310 - the test server
        url,
        method="POST",
        data=json.dumps(body).encode(),
        headers={
            "Authorization": f"Bearer {token}",
            "Content-Type": "application/json",
            "Idempotency-Key": key,
        },
    )
    try:
        with urllib.request.urlopen(request, timeout=60) as response:  # noqa: S310
            return response.status, json.load(response)
    except urllib.error.HTTPError as exc:
        return exc.code, json.load(exc)


# --- The authorisation matrix: the same people, named for their rights -----------------

NAMES = (
    "owner",
    "delegate_read",
    "delegate_send",
    "delegate_manage",
    "outsider",
    "patient",
    "other_patient",
    "staff",
    "anonymous",
)
PROFESSIONALS = ("owner", "delegate_read", "delegate_send", "delegate_manage", "outsider")


@dataclass
class Personas:
    """``owner`` holds a nominative box (``per``) and runs an organisational one (``org``);
    ``delegate_read`` / ``delegate_send`` may read / read and send in both; ``delegate_manage``
    manages ``org`` (a PER box is never delegated "manage"); ``outsider`` has a box of their
    own and no right on the owner's; ``patient`` / ``other_patient`` have a box each;
    ``staff`` is the operator's team; ``anonymous`` is nobody logged in.
    """

    owner: User
    delegate_read: User
    delegate_send: User
    delegate_manage: User
    outsider: User
    patient: User
    other_patient: User
    staff: User
    per: Mailbox
    org: Mailbox
    outsider_box: Mailbox
    patient_box: Mailbox
    other_patient_box: Mailbox

    def user(self, name: str) -> User | None:
        """The persona called ``name``; None for ``anonymous``."""
        return None if name == "anonymous" else getattr(self, name)

    def box(self, key: str) -> Mailbox:
        return self.per if key == "per" else self.org


def build() -> Personas:
    """Create the matrix's personas and their boxes, with the grants described above."""
    owner, per = claire()
    outsider, outsider_box = paul()
    delegate_read = factories.professional(first_name="Anne", last_name="Lecture")
    delegate_send = factories.professional(first_name="Bruno", last_name="Envoi")
    delegate_manage = factories.professional(first_name="Emma", last_name="Gestion")
    org = secretariat(owner, send=(delegate_send,), read=(delegate_read,))
    factories.member(per, delegate_read, Membership.Role.READ)
    factories.member(per, delegate_send, Membership.Role.SEND)
    factories.member(org, delegate_manage, Membership.Role.MANAGE)
    patient, patient_box = lucie()
    other_patient, other_patient_box = lucie()
    return Personas(
        owner=owner,
        delegate_read=delegate_read,
        delegate_send=delegate_send,
        delegate_manage=delegate_manage,
        outsider=outsider,
        patient=patient,
        other_patient=other_patient,
        staff=factories.staff(),
        per=per,
        org=org,
        outsider_box=outsider_box,
        patient_box=patient_box,
        other_patient_box=other_patient_box,
    )


def client_for(user: User | None, *, enforce_csrf_checks: bool = False) -> Client:
    """A client logged in as ``user`` with both factors (anonymous for None)."""
    if user is None:
        return Client(enforce_csrf_checks=enforce_csrf_checks)
    return login(user, enforce_csrf_checks=enforce_csrf_checks)
