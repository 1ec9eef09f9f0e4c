"""What mailboxes does when an app below it tells something (connected in ``ready()``)."""

from __future__ import annotations

import logging
from typing import Any

from accounts.models import User
from mailboxes.services import lifecycle, pipeline

log = logging.getLogger(__name__)


def close_boxes_of_closed_account(
    sender: Any, *, user: User, by: User | None, reason: str, **kwargs: Any
) -> None:
    """An account closed: its holder's own boxes close too and leave the directory.

    Boxes a sanction already closed (with its own cause) are left as they are.
    """
    lifecycle.close_mailboxes_of(user, by=by, cause=lifecycle.ClosureCause.ACCOUNT, reason=reason)


def worker_ready(sender: Any = None, **kwargs: Any) -> None:
    """A Celery worker is ready: resume at once what its previous run left mid-way.

    Never stops the worker from starting: the sweeper does the same later.
    """
    name = str(getattr(sender, "hostname", "") or "")
    try:
        pipeline.resume_after_restart(name)
    except Exception:
        log.exception("worker %s: could not resume its previous run's work", name)
