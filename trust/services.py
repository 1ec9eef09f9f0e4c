"""Writes of the trust rules: staff exceptions to the recipient limit.

(The liste blanche is replaced only by an import: trust.listeblanche.import_liste_blanche.)
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from accounts.models import User
from audit import journal
from trust.models import RecipientLimitException


class TrustError(Exception):
    """A request staff can get wrong; the message is shown to them."""


@transaction.atomic
def grant_recipient_exception(
    mailbox: Any, *, reason: str, valid_until: datetime, by: User
) -> RecipientLimitException:
    """Staff let a mailbox (a mailboxes.Mailbox) exceed MAX_RECIPIENTS until ``valid_until``."""
    reason = reason.strip()
    if not reason:
        raise TrustError(_("Un motif est obligatoire pour accorder une dérogation."))
    now = timezone.now()
    if valid_until <= now:
        raise TrustError(_("La date de fin de la dérogation doit être dans le futur."))
    exception = RecipientLimitException.objects.create(
        mailbox=mailbox, reason=reason, valid_until=valid_until, granted_by=by, granted_at=now
    )
    # The action names stay those the journal has always held (stable for the indicators
    # and for anyone reading the journal), whatever app the code lives in.
    journal.record(
        "charter.recipient_exception_granted",
        actor=by,
        obj=exception,
        mailbox=mailbox.pk,
        until=valid_until.isoformat(),
        reason=reason,
    )
    return exception


@transaction.atomic
def revoke_recipient_exception(exception: RecipientLimitException, *, by: User) -> None:
    """End a recipient-limit exception now."""
    if exception.revoked_at is not None:
        return
    exception.revoked_at = timezone.now()
    exception.revoked_by = by
    exception.save(update_fields=["revoked_at", "revoked_by"])
    journal.record(
        "charter.recipient_exception_revoked", actor=by, obj=exception, mailbox=exception.mailbox_id
    )
