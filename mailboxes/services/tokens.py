"""API tokens: created for one mailbox, shown once, kept only as a SHA-256."""

from __future__ import annotations

import hashlib
import secrets
from datetime import timedelta
from typing import TYPE_CHECKING

from django.conf import settings
from django.db import transaction
from django.db.models import Case, F, PositiveIntegerField, Value, When
from django.utils import timezone
from django.utils.translation import gettext as _

from charter import audit
from mailboxes.models import ApiToken, IdempotencyRecord, Mailbox
from mailboxes.services.errors import TokenError

if TYPE_CHECKING:
    from datetime import datetime

    from accounts.models import User

# "mss_" + 8 characters of prefix (shown in the admin to tell tokens apart) + the secret.
TOKEN_PREFIX = "mss_"  # noqa: S105 - a marker, not a secret


def hash_token(raw: str) -> str:
    # The token has 256 bits of entropy: a plain SHA-256 cannot be brute-forced,
    # so no slow hash (and no salt) is needed, and lookup stays one indexed query.
    return hashlib.sha256(raw.encode()).hexdigest()


@transaction.atomic
def create_api_token(
    mailbox: Mailbox,
    *,
    by: User | None,
    label: str = "",
    expires_at: datetime | None = None,
    raw: str | None = None,
) -> tuple[ApiToken, str]:
    """Create a token for ``mailbox``; return it with the clear value, never stored or shown again.

    ``raw`` is only for the demo data, whose token is published on purpose.
    """
    if not mailbox.is_active:
        raise TokenError(_("La boîte %(address)s est fermée.") % {"address": mailbox.address})
    if mailbox.kind == Mailbox.Kind.PATIENT:
        raise TokenError(_("Une boîte patient ne reçoit pas de jeton d'API."))
    if expires_at is not None and expires_at <= timezone.now():
        raise TokenError(_("La date d'expiration doit être dans le futur."))
    raw = raw or TOKEN_PREFIX + secrets.token_urlsafe(32)
    token = ApiToken.objects.create(
        mailbox=mailbox,
        label=label.strip()[:200],
        prefix=raw[: len(TOKEN_PREFIX) + 8],
        token_hash=hash_token(raw),
        created_by=by,
        expires_at=expires_at,
    )
    audit.record(
        "api_token.created",
        actor=by,
        obj=token,
        mailbox=mailbox.address,
        prefix=token.prefix,
        expires_at=expires_at.isoformat() if expires_at else None,
    )
    return token, raw


@transaction.atomic
def revoke_api_token(token: ApiToken, *, by: User | None) -> ApiToken:
    """Revoke a token at once: its next request gets 401."""
    if token.revoked_at is None:
        token.revoked_at = timezone.now()
        token.save(update_fields=["revoked_at"])
        audit.record("api_token.revoked", actor=by, obj=token, mailbox=token.mailbox.address)
    return token


def find_token(raw: str) -> ApiToken | None:
    """The token with this value, usable or not (the API tells expired from revoked)."""
    if not raw or len(raw) > 200:
        return None
    return (
        ApiToken.objects.select_related("mailbox", "mailbox__domain")
        .filter(token_hash=hash_token(raw))
        .first()
    )


def authenticate_token(raw: str) -> ApiToken | None:
    """The usable token with this value (not revoked, not expired), or None."""
    token = find_token(raw)
    if token is None or not token.is_usable():
        return None
    return token


def count_request(token: ApiToken) -> int | None:
    """Note the token's use; past its rate limit, the seconds to wait (else None).

    A fixed window counted on the token's row in one UPDATE: every web process
    shares it, and the row lock serialises concurrent calls of one token.
    """
    window_seconds = settings.API_RATE_WINDOW_SECONDS
    now = timezone.now()
    window = int(now.timestamp()) // window_seconds
    # SET expressions all read the row as it was: the CASE sees the old window.
    ApiToken.objects.filter(pk=token.pk).update(
        rate_count=Case(
            When(rate_window=window, then=F("rate_count") + 1),
            default=Value(1),
            output_field=PositiveIntegerField(),
        ),
        rate_window=window,
        last_used_at=now,
    )
    count = ApiToken.objects.filter(pk=token.pk).values_list("rate_count", flat=True).first()
    token.last_used_at = now
    # The charter's journal traces every use of a token (which box, when), never the request body.
    audit.record("api_token.used", obj=token, mailbox=token.mailbox.address)
    if count is not None and count > settings.API_RATE_LIMIT:
        return max(1, (window + 1) * window_seconds - int(now.timestamp()))
    return None


def purge_idempotency_keys() -> int:
    """Forget idempotency keys older than ``API_IDEMPOTENCY_HOURS``; return how many."""
    cutoff = timezone.now() - timedelta(hours=settings.API_IDEMPOTENCY_HOURS)
    deleted, _detail = IdempotencyRecord.objects.filter(created_at__lt=cutoff).delete()
    return deleted
