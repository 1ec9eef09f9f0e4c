"""Reads of the trust rules used by other apps (the liste blanche's are in trust.listeblanche)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from django.utils import timezone

from trust.models import RecipientLimitException


def recipient_limit_exception_active(mailbox: Any, *, at: datetime | None = None) -> bool:
    """Whether staff currently allow this mailbox (or mailbox id) more than MAX_RECIPIENTS."""
    return RecipientLimitException.objects.filter(
        mailbox=mailbox, revoked_at__isnull=True, valid_until__gt=at or timezone.now()
    ).exists()
