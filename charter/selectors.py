"""Reads of the charter used by other apps (the liste blanche's are in charter.listeblanche)."""

from __future__ import annotations

from datetime import datetime

from django.utils import timezone

from charter.models import RecipientLimitException
from mailboxes.models import Mailbox


def recipient_limit_exception_active(mailbox: Mailbox, *, at: datetime | None = None) -> bool:
    """Whether staff currently allow this mailbox more than MAX_RECIPIENTS recipients."""
    return RecipientLimitException.objects.filter(
        mailbox=mailbox, revoked_at__isnull=True, valid_until__gt=at or timezone.now()
    ).exists()
