"""Helpers for the charter's tests that go through the messaging core."""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractContextManager
from typing import Any

from django.test import Client
from django_otp import DEVICE_ID_SESSION_KEY

from accounts.models import TOTPDevice, User
from mailboxes import services
from mailboxes.models import Mailbox, Message

Capture = Callable[..., AbstractContextManager[Any]]


def login(user: User) -> Client:
    """A client logged in with both factors, as after the two-step login."""
    client = Client()
    client.force_login(user, backend="accounts.backends.IdentifierBackend")
    session = client.session
    session[DEVICE_ID_SESSION_KEY] = TOTPDevice.objects.get(user=user).persistent_id
    session.save()
    return client


def send(capture: Capture, box: Mailbox, to: list[str], **kwargs: Any) -> Message:
    """submit_message, then the work it queued on commit (the eager scan and deliveries)."""
    params: dict[str, Any] = {"cc": [], "subject": "Compte rendu", "text": "Bonjour."}
    params.update(kwargs)
    with capture(execute=True):
        return services.submit_message(mailbox=box, author=box.owner, to=to, **params)
