"""API tokens: created for one mailbox, shown once, kept only as a SHA-256.

A token for a nominative (PER) or organisational (ORG) box is issued only under the
holder's recorded agreement (``ApiAgreement``), which they give themselves from the
webmail's preferences after entering their second factor again, and may withdraw there:
withdrawing revokes the token at once. The token gets the agreement's scope (read, or
read and send) and at most one token lives per agreement (a new one replaces it).
Applicative (APP) boxes are the operator's software boxes: staff issue their tokens.
"""

from __future__ import annotations

import hashlib
import logging
import secrets
from datetime import timedelta
from typing import TYPE_CHECKING

import redis
from django.conf import settings
from django.db import transaction
from django.db.models import Case, F, PositiveIntegerField, Value, When
from django.utils import timezone
from django.utils.translation import gettext as _

from accounts.models import User
from audit import journal
from mailboxes.models import ApiAgreement, ApiScope, ApiToken, IdempotencyRecord, Mailbox
from mailboxes.selectors import Access
from mailboxes.services import queue
from mailboxes.services.errors import ScopeError, TokenError
from mailboxes.services.rights import authorise

if TYPE_CHECKING:
    from datetime import datetime

    from django.http import HttpRequest

# Boxes whose tokens need their holder's agreement: a person's or a structure's box,
# as opposed to an applicative box, which is software already.
log = logging.getLogger(__name__)

NEEDS_AGREEMENT = (Mailbox.Kind.PERSONAL, Mailbox.Kind.ORGANISATIONAL)
_SCOPE_LEVEL = {ApiScope.READ: Access.READ, ApiScope.SEND: Access.SEND}


def scope_level(scope: str) -> Access:
    """The webmail level a token's scope stands for (read, or send)."""
    return _SCOPE_LEVEL[ApiScope(scope)]


def require_scope(token: ApiToken, need: Access) -> None:
    """Refuse (``ScopeError``) a use of ``token`` that its holder did not agree to."""
    if scope_level(token.scope) < need:
        raise ScopeError(
            _(
                "Ce jeton ne permet pas d'envoyer : le titulaire de %(address)s n'a accordé "
                "que la lecture."
            )
            % {"address": token.mailbox.address}
        )


# "mss_" + 8 characters of prefix (shown in the admin to tell tokens apart) + the secret.
TOKEN_PREFIX = "mss_"  # noqa: S105 - a marker, not a secret


def hash_token(raw: str) -> str:
    # The token has 256 bits of entropy: a plain SHA-256 cannot be brute-forced,
    # so no slow hash (and no salt) is needed, and lookup stays one indexed query.
    return hashlib.sha256(raw.encode()).hexdigest()


@transaction.atomic
def record_api_agreement(
    mailbox: Mailbox,
    *,
    by: User,
    scope: str,
    software: str = "",
    request: HttpRequest | None = None,
) -> ApiAgreement:
    """The holder (or the responsible) agrees that software may use their box through the API.

    The view asks for the second factor again before calling this: the agreement is the
    holder's own act, never staff's, and is journaled.
    """
    if by is None:
        raise ValueError("an agreement is a person's act: by is required")
    if mailbox.kind not in NEEDS_AGREEMENT:
        raise TokenError(_("Cette boîte ne demande pas d'accord pour l'API."))
    if not mailbox.is_active:
        raise TokenError(_("La boîte %(address)s est fermée.") % {"address": mailbox.address})
    if scope not in ApiScope.values:
        raise TokenError(_("Droits inconnus : %(scope)s.") % {"scope": scope})
    # The holder alone: not a delegate, not a manager, not staff.
    authorise(by, mailbox, Access.HOLDER)
    agreement = ApiAgreement.objects.create(
        mailbox=mailbox, holder=by, scope=scope, software=software.strip()[:200]
    )
    journal.record(
        "api_agreement.granted",
        actor=by,
        obj=agreement,
        request=request,
        mailbox=mailbox.address,
        scope=scope,
    )
    return agreement


@transaction.atomic
def withdraw_api_agreement(
    agreement: ApiAgreement, *, by: User | None, request: HttpRequest | None = None
) -> ApiAgreement:
    """The holder withdraws an agreement: every token issued under it is revoked at once."""
    authorise(by, agreement.mailbox, Access.HOLDER, operator=True)
    agreement = ApiAgreement.objects.select_for_update().get(pk=agreement.pk)
    if agreement.withdrawn_at is not None:
        return agreement
    now = timezone.now()
    agreement.withdrawn_at = now
    agreement.withdrawn_by = by
    agreement.save(update_fields=["withdrawn_at", "withdrawn_by"])
    revoked = agreement.tokens.filter(revoked_at__isnull=True).update(revoked_at=now)
    journal.record(
        "api_agreement.withdrawn",
        actor=by,
        obj=agreement,
        request=request,
        mailbox=agreement.mailbox.address,
        tokens_revoked=revoked,
    )
    return agreement


def live_agreement(mailbox: Mailbox) -> ApiAgreement | None:
    """The holder's most recent agreement still in force for this box, if any."""
    return (
        ApiAgreement.objects.filter(mailbox=mailbox, withdrawn_at__isnull=True)
        .order_by("-granted_at", "-pk")
        .first()
    )


def agreement_for(mailbox: Mailbox, agreement: ApiAgreement | None = None) -> ApiAgreement | None:
    """The agreement a new token of this box is issued under; TokenError saying why when none.

    None for an applicative box, which needs no agreement.
    """
    if mailbox.kind not in NEEDS_AGREEMENT:
        return None
    agreement = agreement or live_agreement(mailbox)
    if agreement is None or agreement.mailbox_id != mailbox.pk or not agreement.is_live:
        raise TokenError(
            _(
                "Aucun jeton pour %(address)s sans l'accord enregistré de son titulaire : "
                "il le donne lui-même dans la messagerie (Préférences, « Accès d'un logiciel "
                "à ma boîte »), après avoir saisi son code de second facteur."
            )
            % {"address": mailbox.address}
        )
    return agreement


@transaction.atomic
def create_api_token(
    mailbox: Mailbox,
    *,
    by: User | None,
    label: str = "",
    expires_at: datetime | None = None,
    raw: str | None = None,
    scope: str | None = None,
    agreement: ApiAgreement | None = None,
) -> tuple[ApiToken, str]:
    """Create a token for ``mailbox``; return it with the clear value, never stored or shown again.

    A PER or ORG box needs its holder's live agreement (the latest one, or ``agreement``);
    the token gets its scope, or a narrower ``scope``, and replaces the token issued under
    the same agreement before. ``raw`` is only for the demo data, whose token is published
    on purpose.
    """
    authorise(by, mailbox, Access.HOLDER, operator=True)
    if not mailbox.is_active:
        raise TokenError(_("La boîte %(address)s est fermée.") % {"address": mailbox.address})
    if mailbox.kind == Mailbox.Kind.PATIENT:
        raise TokenError(_("Une boîte patient ne reçoit pas de jeton d'API."))
    if expires_at is not None and expires_at <= timezone.now():
        raise TokenError(_("La date d'expiration doit être dans le futur."))
    agreed = agreement_for(mailbox, agreement)
    if scope is not None and scope not in ApiScope.values:
        raise TokenError(_("Droits inconnus : %(scope)s.") % {"scope": scope})
    granted = ApiScope(agreed.scope) if agreed else ApiScope.SEND
    scope = ApiScope(scope or granted)
    if scope_level(scope) > scope_level(granted):
        raise TokenError(
            _("Le titulaire n'a accordé que « %(granted)s » : pas de jeton « %(scope)s ».")
            % {"granted": granted.label, "scope": scope.label}
        )
    now = timezone.now()
    replaced = 0
    if agreed is not None:
        # One live token per agreement: a new one (rotation) ends the previous one.
        replaced = agreed.tokens.filter(revoked_at__isnull=True).update(revoked_at=now)
    raw = raw or TOKEN_PREFIX + secrets.token_urlsafe(32)
    token = ApiToken.objects.create(
        mailbox=mailbox,
        scope=scope,
        agreement=agreed,
        label=label.strip()[:200],
        prefix=raw[: len(TOKEN_PREFIX) + 8],
        token_hash=hash_token(raw),
        created_by=by,
        expires_at=expires_at,
    )
    journal.record(
        "api_token.created",
        actor=by,
        obj=token,
        mailbox=mailbox.address,
        prefix=token.prefix,
        scope=scope,
        agreement=agreed.pk if agreed else None,
        replaced=replaced,
        expires_at=expires_at.isoformat() if expires_at else None,
    )
    return token, raw


@transaction.atomic
def revoke_api_token(token: ApiToken, *, by: User | None) -> ApiToken:
    """Revoke a token at once: its next request gets 401."""
    authorise(by, token.mailbox, Access.HOLDER, operator=True)
    if token.revoked_at is None:
        token.revoked_at = timezone.now()
        token.save(update_fields=["revoked_at"])
        journal.record("api_token.revoked", actor=by, obj=token, mailbox=token.mailbox.address)
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


# A token's "last used" is written again only when older than this: the journal line
# dates every use; the row is what staff and the holder glance at.
LAST_USED_STEP = timedelta(seconds=30)


def count_request(token: ApiToken) -> int | None:
    """Note the token's use; past its rate limit, the seconds to wait (else None).

    A fixed window of API_RATE_WINDOW_SECONDS, counted where every web process sees it:
    in the broker's Redis when there is one (one INCR, no row lock that would make
    concurrent requests of one token wait for each other's commit), else, and whenever
    Redis does not answer, on the token's row in one UPDATE. Every use is journaled.
    """
    window_seconds = settings.API_RATE_WINDOW_SECONDS
    now = timezone.now()
    window = int(now.timestamp()) // window_seconds
    count = _count_in_redis(token, window, window_seconds)
    if count is None:
        count = _count_on_the_row(token, window, now)
    else:
        if token.last_used_at is None or now - token.last_used_at >= LAST_USED_STEP:
            ApiToken.objects.filter(pk=token.pk).update(last_used_at=now)
            token.last_used_at = now
        # The charter's journal traces every use of a token (which box, when), never the
        # request body. One INSERT, committed on its own.
        journal.record("api_token.used", obj=token, mailbox=token.mailbox.address)
    if count is not None and count > settings.API_RATE_LIMIT:
        return max(1, (window + 1) * window_seconds - int(now.timestamp()))
    return None


def _count_in_redis(token: ApiToken, window: int, window_seconds: int) -> int | None:
    """The token's requests in this window, this one included; None without Redis."""
    client = queue.broker_redis()
    if client is None:
        return None
    key = f"mssante:api-rate:{token.pk}:{window}"
    try:
        pipe = client.pipeline(transaction=False)
        pipe.incr(key)
        pipe.expire(key, window_seconds + 5)
        count, _expiry = pipe.execute()
    except redis.RedisError:
        log.warning("API rate counter: Redis did not answer; counting on the token's row")
        return None
    return int(count)


def _count_on_the_row(token: ApiToken, window: int, now: datetime) -> int | None:
    # One transaction, one commit (one WAL flush) for the count and its journal line.
    with transaction.atomic():
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
        journal.record("api_token.used", obj=token, mailbox=token.mailbox.address)
    return count


def purge_idempotency_keys() -> int:
    """Forget idempotency keys older than ``API_IDEMPOTENCY_HOURS``; return how many."""
    cutoff = timezone.now() - timedelta(hours=settings.API_IDEMPOTENCY_HOURS)
    deleted, _detail = IdempotencyRecord.objects.filter(created_at__lt=cutoff).delete()
    return deleted
