"""The people every permission test speaks of, defined once (healthchecks' owner, member, outsider).

- ``owner``: holds a nominative box (PER) and is responsible for an organisational one (ORG);
- ``delegate_read`` / ``delegate_send``: may read / read and send in both boxes;
- ``delegate_manage``: manages the ORG box (a PER box is never delegated "manage");
- ``outsider``: a professional with a box of their own and no right on the owner's;
- ``patient`` / ``other_patient``: patients with a box each;
- ``staff``: the operator's team (the admin);
- ``anonymous``: nobody logged in.

``build()`` creates them (call it inside a test or a module fixture); ``client_for()``
gives a client logged in with both factors, as after the two-step login.
"""

from __future__ import annotations

from dataclasses import dataclass

from django.test import Client
from django_otp import DEVICE_ID_SESSION_KEY

from accounts.models import TOTPDevice, User
from mailboxes.models import Mailbox
from tests import factories

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
DOMAIN = "hopital.mssante.test"


@dataclass
class Personas:
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
    """Create the personas and their boxes, with the grants described above."""
    from mailboxes import services

    p = factories.professional
    owner = p(first_name="Claire", last_name="Martin")
    delegate_read = p(first_name="Anne", last_name="Lecture")
    delegate_send = p(first_name="Bruno", last_name="Envoi")
    delegate_manage = p(first_name="Emma", last_name="Gestion")
    outsider = p(first_name="Paul", last_name="Durand")
    domain = factories.hosted_domain(DOMAIN)
    per = factories.mailbox(owner, domain=domain)
    org = factories.shared_mailbox(owner, local="cardiologie", domain=domain)
    for box in (per, org):
        services.grant_membership(box, delegate_read, "read", by=owner)
        services.grant_membership(box, delegate_send, "send", by=owner)
    services.grant_membership(org, delegate_manage, "manage", by=owner)
    patient = factories.patient()
    other_patient = factories.patient()
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
        outsider_box=factories.mailbox(outsider, domain=domain),
        patient_box=factories.patient_mailbox(patient),
        other_patient_box=factories.patient_mailbox(other_patient),
    )


def log_in(client: Client, user: User) -> Client:
    """Log ``client`` in as ``user`` with both factors done; return it."""
    client.force_login(user, backend="accounts.backends.IdentifierBackend")
    session = client.session
    session[DEVICE_ID_SESSION_KEY] = TOTPDevice.objects.get(user=user).persistent_id
    session.save()
    return client


def client_for(user: User | None, *, enforce_csrf_checks: bool = False) -> Client:
    """A client logged in as ``user`` (anonymous for None)."""
    client = Client(enforce_csrf_checks=enforce_csrf_checks)
    return log_in(client, user) if user is not None else client
