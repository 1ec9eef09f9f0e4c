"""The holder's signed-in sessions: recorded at login, listed on the account page, ended there.

Django keeps sessions in its session store (the database backend: ``django_session``,
keyed by the raw session key, which is the cookie). To list one account's sessions and
end them without keeping that key anywhere else, each login writes an ``AccountSession``
holding only the SHA-256 of the key, the way the holder signed in, a summary of the
browser ("Firefox sur Windows") and the client address. Ending a session marks its
record; ``SessionRevocationMiddleware`` logs out any request whose session is marked, on
that very request (one indexed read per request of a signed-in session that has a
record). Logging out marks the record too.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from axes.models import AccessAttempt
from django.conf import settings
from django.contrib import messages
from django.contrib.auth import logout
from django.db import transaction
from django.db.models import Q
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect
from django.utils import timezone
from django.utils.translation import gettext as _

from accounts import services
from accounts.access import PSC_SESSION_KEY
from accounts.models import AccountSession, User
from audit import journal
from audit.models import AuditEvent

# The session key holding the id of this session's record (no read for sessions without
# one). Django changes a session's key while keeping its data (a password change:
# update_session_auth_hash): the record follows the new key.
RECORDED = "account_session"
# The session key a login path sets before ``login()`` to name its method.
LOGIN_METHOD = "login_method"
# Written at most this often (a write per request would cost a commit each time).
LAST_SEEN_STEP = timedelta(minutes=1)
RECENT_LIMIT = 15


def key_hash(session_key: str) -> str:
    return hashlib.sha256(session_key.encode()).hexdigest()


# --- The browser, in a few words ------------------------------------------------------------

_BROWSERS = (
    ("Edge", re.compile(r"Edg(e|A|iOS)?/")),
    ("Opera", re.compile(r"OPR/|Opera")),
    ("Firefox", re.compile(r"Firefox/|FxiOS/")),
    ("Chrome", re.compile(r"Chrome/|CriOS/|Chromium/")),
    ("Safari", re.compile(r"Safari/")),
)
_SYSTEMS = (
    ("Android", re.compile(r"Android")),
    ("iOS", re.compile(r"iPhone|iPad|iPod")),
    ("Windows", re.compile(r"Windows")),
    ("macOS", re.compile(r"Mac OS X|Macintosh")),
    ("ChromeOS", re.compile(r"CrOS")),
    ("Linux", re.compile(r"Linux|X11")),
)


def summarise_user_agent(user_agent: str) -> str:
    """'Firefox sur Windows' from a User-Agent header (never the header itself)."""
    text = user_agent[:512]
    browser = next((name for name, rx in _BROWSERS if rx.search(text)), "")
    system = next((name for name, rx in _SYSTEMS if rx.search(text)), "")
    if browser and system:
        return _("%(browser)s sur %(system)s") % {"browser": browser, "system": system}
    return browser or system or _("Navigateur inconnu")


# --- Recording ---------------------------------------------------------------------------------


def _method(request: HttpRequest, user: Any) -> str:
    named = str(request.session.get(LOGIN_METHOD, ""))
    if named in AccountSession.Method.values:
        return named
    if request.session.get(PSC_SESSION_KEY):
        return AccountSession.Method.PSC
    return AccountSession.Method.PASSWORD_CODE


def opened(request: HttpRequest, user: Any) -> None:
    """Record the session ``login()`` has just opened (receiver of ``user_logged_in``)."""
    if not isinstance(user, User) or not hasattr(request, "session"):
        return
    if request.session.session_key is None:
        request.session.save()
    key = request.session.session_key
    if key is None:
        return
    now = timezone.now()
    record, _created = AccountSession.objects.update_or_create(
        key_hash=key_hash(key),
        defaults={
            "user": user,
            "method": _method(request, user),
            "device": summarise_user_agent(str(request.META.get("HTTP_USER_AGENT", ""))),
            "ip": journal.client_ip(request),
            "created_at": now,
            "last_seen_at": now,
            "ended_at": None,
        },
    )
    request.session.pop(LOGIN_METHOD, None)
    request.session[RECORDED] = record.pk


def closed(request: HttpRequest, user: Any) -> None:
    """Mark the session ending by logout (receiver of ``user_logged_out``)."""
    session = getattr(request, "session", None)
    if session is None:
        return
    record_id = session.get(RECORDED)
    key = session.session_key
    rows = AccountSession.objects.filter(ended_at=None)
    if record_id is not None:
        rows = rows.filter(pk=record_id)
    elif key:
        rows = rows.filter(key_hash=key_hash(key))
    else:
        return
    rows.update(ended_at=timezone.now())


def current_hash(request: HttpRequest) -> str:
    key = request.session.session_key
    return key_hash(key) if key else ""


# --- Reading -----------------------------------------------------------------------------------


def open_sessions(user: User) -> list[AccountSession]:
    """The holder's sessions not ended nor expired, newest activity first."""
    oldest = timezone.now() - timedelta(seconds=settings.SESSION_COOKIE_AGE)
    return list(
        AccountSession.objects.filter(user=user, ended_at=None, created_at__gt=oldest).order_by(
            "-last_seen_at"
        )[:50]
    )


@dataclass(frozen=True)
class SignInEvent:
    at: datetime
    label: str
    ip: str | None
    failed: bool


def recent_sign_ins(user: User) -> list[SignInEvent]:
    """The holder's last sign-ins and failures: the journal's, and the lockout's counters."""
    labels = {
        "login.succeeded": _("Connexion réussie"),
        "login.failed": _("Échec de connexion"),
        "login.refused": _("Connexion refusée"),
        "login.holder_alerted": _("Alerte : tentatives de connexion répétées"),
        "account.passkey_refused": _("Clé d'accès refusée"),
        "account.code_refused": _("Code refusé"),
        "account.step_up_refused": _("Confirmation d'identité refusée"),
        "logout": _("Déconnexion"),
    }
    rows = (
        AuditEvent.objects.filter(
            object_type=User._meta.label_lower, object_id=str(user.pk), action__in=list(labels)
        )
        .order_by("-at")
        .values_list("at", "action", "ip")[:RECENT_LIMIT]
    )
    events = [
        SignInEvent(at, str(labels[action]), ip, action != "login.succeeded" and action != "logout")
        for at, action, ip in rows
    ]
    # Wrong passwords are journaled without naming the account (no oracle): the lockout's
    # counters, kept per address for this account's key, say how many and from where.
    for attempt in AccessAttempt.objects.filter(username=f"account:{user.pk}").order_by(
        "-attempt_time"
    )[:5]:
        events.append(
            SignInEvent(
                attempt.attempt_time,
                _("%(count)d mot(s) de passe ou code(s) erroné(s)")
                % {"count": attempt.failures_since_start},
                attempt.ip_address,
                True,
            )
        )
    events.sort(key=lambda e: e.at, reverse=True)
    return events[:RECENT_LIMIT]


def purge(now: datetime | None = None) -> int:
    """Delete the records of sessions ended a day ago, or older than a session can live."""
    now = now or timezone.now()
    expired = now - timedelta(seconds=settings.SESSION_COOKIE_AGE)
    deleted, _rows = AccountSession.objects.filter(
        Q(ended_at__lt=now - timedelta(days=1)) | Q(created_at__lt=expired)
    ).delete()
    return deleted


# --- Ending sessions ---------------------------------------------------------------------------


@transaction.atomic
def end_session(user: User, session_id: int, *, request: HttpRequest) -> None:
    """End one of the holder's sessions (another's is the same as none: LookupError → 404)."""
    # Read first: a request naming another's session tries no write at all.
    if not AccountSession.objects.filter(pk=session_id, user=user, ended_at=None).exists():
        raise LookupError(session_id)
    AccountSession.objects.filter(pk=session_id).update(ended_at=timezone.now())
    journal.record("account.session_ended", actor=user, obj=user, request=request, count=1)
    services.notify(user, "sessions_ended")


@transaction.atomic
def end_all_sessions(user: User, *, request: HttpRequest) -> int:
    """End every session of the holder, this one included ("log out everywhere")."""
    ended = AccountSession.objects.filter(user=user, ended_at=None).update(ended_at=timezone.now())
    journal.record("account.sessions_ended", actor=user, obj=user, request=request, count=ended)
    services.notify(user, "sessions_ended")
    return ended


# --- Enforcing it ------------------------------------------------------------------------------


class SessionRevocationMiddleware:
    """Logs out a request whose session the holder ended from another one."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        user_id = request.user.pk if request.user.is_authenticated else None
        record_id = request.session.get(RECORDED) if user_id is not None else None
        if record_id is not None and user_id is not None:
            row = (
                AccountSession.objects.filter(pk=record_id, user_id=user_id)
                .values_list("key_hash", "ended_at", "last_seen_at")
                .first()
            )
            if row is None or row[1] is not None:
                logout(request)
                messages.info(request, _("Cette session a été fermée. Reconnectez-vous."))
                return redirect("accounts:login")
            now = timezone.now()
            digest = current_hash(request)
            if digest != row[0] or now - row[2] >= LAST_SEEN_STEP:
                AccountSession.objects.filter(pk=record_id).update(
                    key_hash=digest or row[0], last_seen_at=now
                )
        return self.get_response(request)


def on_login(
    sender: Any, request: HttpRequest | None = None, user: Any = None, **kwargs: Any
) -> None:
    if request is not None:
        opened(request, user)


def on_logout(
    sender: Any, request: HttpRequest | None = None, user: Any = None, **kwargs: Any
) -> None:
    if request is not None:
        closed(request, user)
