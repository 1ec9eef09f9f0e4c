"""Personas of the patient space: a doctor, a nurse, a patient and another patient."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager
from dataclasses import dataclass
from typing import Any

import pytest
from django.test import Client
from django_otp import DEVICE_ID_SESSION_KEY

from accounts.models import TOTPDevice, User
from mailboxes import services
from mailboxes.models import Entry, Mailbox, Message
from tests import factories

PDF = b"%PDF-1.4\n1 0 obj<<>>endobj\ntrailer<<>>\n%%EOF\n"


@dataclass
class Space:
    doctor: User
    doctor_box: Mailbox
    nurse: User
    nurse_box: Mailbox
    patient: User
    patient_box: Mailbox
    other: User
    other_box: Mailbox
    run: Callable[..., Any]

    def send(self, box: Mailbox, to: list[str], **kwargs: Any) -> Message:
        """Submit and deliver (the on-commit work runs, eager)."""
        params: dict[str, Any] = {"cc": [], "subject": "Résultats d'analyse", "text": "Bonjour."}
        params.update(kwargs)
        return self.run(services.submit_message, mailbox=box, author=box.owner, to=to, **params)

    def entry(self, box: Mailbox, message: Message) -> Entry:
        return Entry.objects.get(mailbox=box, message=message)


@pytest.fixture
def space(
    db: Any, django_capture_on_commit_callbacks: Callable[..., AbstractContextManager[Any]]
) -> Iterator[Space]:
    def run(fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        with django_capture_on_commit_callbacks(execute=True):
            return fn(*args, **kwargs)

    domain = factories.hosted_domain("hopital.mssante.test")
    doctor = factories.professional(first_name="Claire", last_name="Martin")
    nurse = factories.professional(first_name="Julien", last_name="Dupont")
    patient = factories.patient()
    other = factories.patient()
    yield Space(
        doctor=doctor,
        doctor_box=factories.mailbox(doctor, domain=domain),
        nurse=nurse,
        nurse_box=factories.mailbox(nurse, domain=domain),
        patient=patient,
        patient_box=factories.patient_mailbox(patient),
        other=other,
        other_box=factories.patient_mailbox(other),
        run=run,
    )


def login(user: User) -> Client:
    """A client logged in with both factors, as after the two-step login."""
    client = Client()
    client.force_login(user, backend="accounts.backends.IdentifierBackend")
    session = client.session
    session[DEVICE_ID_SESSION_KEY] = TOTPDevice.objects.get(user=user).persistent_id
    session.save()
    return client
