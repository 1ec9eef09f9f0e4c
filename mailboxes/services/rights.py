"""Who may act in a mailbox: every service that writes for a person checks it here.

The views resolve ids inside the user's boxes first (404 for a stranger); the services
check the actor's level again, where the write happens, so that no door (a view that
forgot, a new view, a command, a task) can write past a missing right.
"""

from __future__ import annotations

from typing import Any

from accounts.models import User
from mailboxes import selectors
from mailboxes.models import Mailbox
from mailboxes.selectors import Access


def is_operator(actor: Any) -> bool:
    """The operator's staff, acting from the admin (never a professional or a patient)."""
    return bool(
        getattr(actor, "kind", None) == User.Kind.STAFF and getattr(actor, "is_staff", False)
    )


def authorise(actor: Any, mailbox: Mailbox, need: Access, *, operator: bool = False) -> None:
    """Refuse (404 for a stranger, 403 for a member short of ``need``) unless ``actor`` may.

    ``actor`` None is the platform itself, not a person: the SMTP gateway, the delivery
    pipeline, a command run by the operator, the API once the token's box and scope were
    checked. ``operator``: staff may do this from the admin (memberships, tokens).
    """
    if actor is None:
        return
    if operator and is_operator(actor):
        return
    selectors.require(actor, mailbox, need)
