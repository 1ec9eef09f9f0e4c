"""What mailboxes does when an app below it tells something (connected in ``ready()``)."""

from __future__ import annotations

from typing import Any

from accounts.models import User
from mailboxes.services import lifecycle


def close_boxes_of_closed_account(
    sender: Any, *, user: User, by: User | None, reason: str, **kwargs: Any
) -> None:
    """An account closed: its holder's own boxes close too and leave the directory.

    Boxes a sanction already closed (with its own cause) are left as they are.
    """
    lifecycle.close_mailboxes_of(user, by=by, cause=lifecycle.ClosureCause.ACCOUNT, reason=reason)
