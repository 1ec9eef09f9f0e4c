"""Bounding password and code guessing without letting anyone lock a holder out.

Three layers (the reasoning and the figures are in docs/decisions.md):

1. django-axes locks a login key *from one client address* after LOGIN_FAILURE_LIMIT
   failures, for LOGIN_LOCK_MINUTES: someone guessing from their own address stops
   there, and the holder, elsewhere, is not affected.
2. Across every address, attempts on one key from clients the account does not know
   are slowed down: LOGIN_IDENTIFIER_FREE_ATTEMPTS are free within a window, then each
   further attempt must wait a delay that doubles up to LOGIN_IDENTIFIER_MAX_DELAY_MINUTES.
   The slot is claimed atomically before the password is checked, so any number of
   addresses, in parallel, share the same few guesses.
3. A client the account knows (a browser holding the device cookie set after a full
   login, or an address the account completed a login from) skips the slow-down, so
   the holder keeps logging in from their usual places while an attack goes on.

The holder is told by e-mail (no content, at most once per LOGIN_ALERT_HOURS) when an
address gets locked or the slow-down starts. Every identifier of one account (RPPS,
national id, former Adeli) shares one key; an unknown identifier is keyed by its
normalised form and treated exactly like a known one, so nothing tells them apart.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from axes.handlers.proxy import AxesProxyHandler
from django.conf import settings
from django.contrib.auth import user_login_failed
from django.core import signing
from django.core.mail import send_mail
from django.db import transaction
from django.http import HttpRequest, HttpResponse
from django.template.loader import render_to_string
from django.utils import timezone
from django.utils.crypto import salted_hmac
from django.utils.translation import gettext as _
from django_otp import match_token

from accounts.identity import login_key, resolve
from accounts.models import KnownAddress, LoginThrottle, User
from audit import journal
from mssante.lib import untrusted
from mssante.lib.identifiers import IdentifierError

log = logging.getLogger(__name__)

DEVICE_COOKIE = "mss_appareil"
LOCK_KEY = "lock_key"
_DEVICE_SALT = "accounts.lockout.device"
_DEVICE_MAX_ACCOUNTS = 8


# --- Who is asking ----------------------------------------------------------------------


def client_ip(request: HttpRequest) -> str:
    """The client's address: REMOTE_ADDR, or the one our own proxies saw (TRUSTED_PROXY_HOPS).

    Each trusted proxy appends the address it received from to X-Forwarded-For; the
    entries further left were written by the client and prove nothing.
    """
    address = untrusted.client_address(
        str(request.META.get("REMOTE_ADDR") or ""),
        str(request.META.get("HTTP_X_FORWARDED_FOR") or ""),
        int(getattr(settings, "TRUSTED_PROXY_HOPS", 0)),
    )
    return address or "0.0.0.0"  # noqa: S104 (a placeholder key, never a bind address)


def axes_client_ip(request: HttpRequest) -> str:
    return client_ip(request)


# --- Which counter ------------------------------------------------------------------------


@dataclass(frozen=True)
class Target:
    """The counter a typed identifier falls under, and the account behind it if any."""

    key: str
    user: User | None


def target(raw: str) -> Target:
    """The lockout key of a typed identifier: the account's, or the normalised string's."""
    try:
        found = resolve(raw)
        normalised = login_key(raw).key
    except IdentifierError:
        found = None
        normalised = " ".join(str(raw).split())
    if found is not None:
        return Target(f"account:{found.user.pk}", found.user)
    return Target(f"id:{normalised}"[:160], None)


def target_for(user: User) -> Target:
    return Target(f"account:{user.pk}", user)


def axes_username(request: HttpRequest, credentials: dict[str, Any] | None) -> str:
    """django-axes' key: every identifier of one account shares a counter.

    Our own calls pass the key itself as ``lock_key``; ``username`` is always what was
    typed (or a username), never taken for a key, whatever it looks like.
    """
    credentials = credentials or {}
    if credentials.get(LOCK_KEY):
        return str(credentials[LOCK_KEY])
    raw = str(credentials.get("username") or "")
    cache: dict[str, str] = request.__dict__.setdefault("_lock_keys", {})
    if raw not in cache:
        cache[raw] = target(raw).key
    return cache[raw]


# --- Clients the account knows -------------------------------------------------------------


def _address_hash(ip: str) -> str:
    return salted_hmac("accounts.lockout.address", ip, algorithm="sha256").hexdigest()


def _device_accounts(request: HttpRequest) -> list[int]:
    value = request.COOKIES.get(DEVICE_COOKIE)
    if not value:
        return []
    try:
        data = signing.loads(
            value, salt=_DEVICE_SALT, max_age=timedelta(days=settings.LOGIN_TRUSTED_DAYS)
        )
    except signing.BadSignature:
        return []
    accounts = data.get("a") if isinstance(data, dict) else None
    if not isinstance(accounts, list):
        return []
    return [a for a in accounts if isinstance(a, int)]


def is_known_client(request: HttpRequest, key: Target) -> bool:
    """Whether this browser or this address completed a login to the account lately."""
    if key.user is None:
        return False
    if key.user.pk in _device_accounts(request):
        return True
    since = timezone.now() - timedelta(days=settings.LOGIN_TRUSTED_DAYS)
    return KnownAddress.objects.filter(
        user=key.user, address_hash=_address_hash(client_ip(request)), last_login_at__gte=since
    ).exists()


def remember_client(request: HttpRequest, response: HttpResponse, user: User) -> None:
    """After a full login (password and code): this browser and address become known."""
    KnownAddress.objects.update_or_create(
        user=user,
        address_hash=_address_hash(client_ip(request)),
        defaults={"last_login_at": timezone.now()},
    )
    accounts = [a for a in _device_accounts(request) if a != user.pk]
    accounts = [user.pk, *accounts][:_DEVICE_MAX_ACCOUNTS]
    response.set_cookie(
        DEVICE_COOKIE,
        signing.dumps({"a": accounts}, salt=_DEVICE_SALT),
        max_age=settings.LOGIN_TRUSTED_DAYS * 24 * 3600,
        secure=settings.SESSION_COOKIE_SECURE,
        httponly=True,
        samesite="Lax",
    )


# --- The slow-down across addresses ----------------------------------------------------------


def _delay(extra: int) -> timedelta:
    """The wait after the extra-th attempt past the free ones: 1, 2, 4… minutes, capped."""
    cap = settings.LOGIN_IDENTIFIER_MAX_DELAY_MINUTES * 60
    return timedelta(seconds=min(60 * 2 ** min(extra - 1, 20), cap))


@dataclass(frozen=True)
class Claim:
    allowed: bool
    retry_at: datetime | None = None
    slowdown_started: bool = False


def claim_attempt(request: HttpRequest, key: Target) -> Claim:
    """Take one attempt for this key before checking a password or a code.

    Known clients always get one (the per-address lock still bounds them). For the
    others, the attempt is counted first and refused when the key is slowed down.
    """
    if is_known_client(request, key):
        return Claim(True)
    now = timezone.now()
    window = timedelta(hours=settings.LOGIN_IDENTIFIER_WINDOW_HOURS)
    free = settings.LOGIN_IDENTIFIER_FREE_ATTEMPTS
    LoginThrottle.objects.get_or_create(key=key.key)
    with transaction.atomic():
        row = LoginThrottle.objects.select_for_update().get(key=key.key)
        if row.last_attempt_at is None or now - row.last_attempt_at > window:
            row.attempts = 0
            row.next_allowed_at = None
        if row.attempts >= free and row.next_allowed_at is not None and now < row.next_allowed_at:
            return Claim(False, row.next_allowed_at)
        row.attempts += 1
        row.last_attempt_at = now
        if row.attempts > free:
            row.next_allowed_at = now + _delay(row.attempts - free)
        row.save(update_fields=["attempts", "last_attempt_at", "next_allowed_at"])
        started = row.attempts == free + 1
    if started and key.user is not None:
        alert_holder(key.user)
    return Claim(True, slowdown_started=started)


def refund_attempt(request: HttpRequest, key: Target) -> None:
    """A right password from an unknown client: that attempt was not a guess."""
    if is_known_client(request, key):
        return
    with transaction.atomic():
        row = LoginThrottle.objects.select_for_update().filter(key=key.key).first()
        if row is not None and row.attempts > 0:
            row.attempts -= 1
            row.save(update_fields=["attempts"])


def purge(now: datetime | None = None) -> int:
    """Forget counters idle for longer than the window (a guesser's junk identifiers too)."""
    now = now or timezone.now()
    cutoff = now - timedelta(hours=settings.LOGIN_IDENTIFIER_WINDOW_HOURS)
    deleted, _rows = LoginThrottle.objects.filter(last_attempt_at__lt=cutoff).delete()
    stale = now - timedelta(days=settings.LOGIN_TRUSTED_DAYS)
    KnownAddress.objects.filter(last_login_at__lt=stale).delete()
    return deleted


# --- One attempt, from the login page or a page asking for a fresh code -------------------


@dataclass(frozen=True)
class Verdict:
    """The outcome of one code checked under the guessing bounds."""

    device: Any = None
    locked: bool = False  # this address is locked for the key (django-axes)
    retry_at: datetime | None = None  # slowed down: unknown clients wait until then


def is_locked(request: HttpRequest, key: Target) -> bool:
    return bool(AxesProxyHandler.is_locked(request, {LOCK_KEY: key.key}))


def failed(request: HttpRequest, key: Target) -> bool:
    """After a failure counted by django-axes: True when it locked this address, holder told."""
    locked = bool(getattr(request, "axes_locked_out", False)) or is_locked(request, key)
    if locked and key.user is not None:
        alert_holder(key.user)
    return locked


def may_try(request: HttpRequest, user: User) -> Verdict | None:
    """Before checking a secret of a logged-in user: a refusal, or None to go on."""
    key = target_for(user)
    if is_locked(request, key):
        return Verdict(locked=True)
    claim = claim_attempt(request, key)
    if not claim.allowed:
        return Verdict(retry_at=claim.retry_at)
    return None


def wrong_secret(request: HttpRequest, user: User) -> Verdict:
    """After a wrong password or code of a logged-in user: counted like a failed login."""
    key = target_for(user)
    user_login_failed.send(sender=__name__, credentials={LOCK_KEY: key.key}, request=request)
    return Verdict(locked=failed(request, key))


def verify_code(request: HttpRequest, user: User, code: str) -> Verdict:
    """Check a one-time code of ``user``; wrong codes count like wrong passwords."""
    refusal = may_try(request, user)
    if refusal is not None:
        return refusal
    device = match_token(user, code)
    if device is not None:
        refund_attempt(request, target_for(user))
        return Verdict(device=device)
    return wrong_secret(request, user)


# --- Telling the holder ------------------------------------------------------------------------


def alert_holder(user: User) -> bool:
    """E-mail the holder that their account is being guessed at (rate-limited); True when sent."""
    if not user.email or not user.is_open:
        return False
    now = timezone.now()
    quiet = timedelta(hours=settings.LOGIN_ALERT_HOURS)
    LoginThrottle.objects.get_or_create(key=target_for(user).key)
    with transaction.atomic():
        row = LoginThrottle.objects.select_for_update().get(key=target_for(user).key)
        if row.notified_at is not None and now - row.notified_at < quiet:
            return False
        row.notified_at = now
        row.save(update_fields=["notified_at"])
        recipient = user.email
        subject = _("Tentatives de connexion à votre compte")
        body = render_to_string(
            "accounts/emails/login_attack.txt",
            {
                "operator": settings.OPERATOR_NAME,
                "url": settings.SITE_URL + "/connexion/",
                "minutes": settings.LOGIN_IDENTIFIER_MAX_DELAY_MINUTES,
            },
        )
        transaction.on_commit(lambda: _send_quietly(subject, body, recipient))
        journal.record("login.holder_alerted", obj=user)
    return True


def _send_quietly(subject: str, body: str, recipient: str) -> None:
    # A mail server that refuses must not turn a login page into an error: the lock
    # itself is what protects the account, the notice is a courtesy.
    try:
        send_mail(subject, body, None, [recipient], fail_silently=False)
    except Exception:
        log.exception("login alert e-mail failed")
