"""Access decorators shared by every app's views: logged in, second factor done, right kind."""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps
from typing import Any

from django.conf import settings
from django.contrib.auth.views import redirect_to_login
from django.http import Http404, HttpRequest, HttpResponse

from accounts.models import User


def is_verified(user: Any) -> bool:
    """Logged in and past the second factor (django-otp sets ``is_verified`` on request.user)."""
    return bool(user.is_authenticated and getattr(user, "is_verified", lambda: False)())


def current_user(request: HttpRequest) -> User:
    """The logged-in user of a view already guarded by verified_required."""
    user = request.user
    assert isinstance(user, User)
    return user


def verified_required(
    *kinds: str,
) -> Callable[[Callable[..., HttpResponse]], Callable[..., HttpResponse]]:
    """The user is logged in with a second factor and, when kinds are given, of one of them.

    Another kind of user gets 404, not 403: a patient has no reason to learn
    that a professional URL exists.
    """

    def decorator(view: Callable[..., HttpResponse]) -> Callable[..., HttpResponse]:
        @wraps(view)
        def wrapper(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
            if not is_verified(request.user):
                return redirect_to_login(request.get_full_path())
            if kinds and current_user(request).kind not in kinds:
                raise Http404
            return view(request, *args, **kwargs)

        return wrapper

    return decorator


# The session keys that tell how strongly this session's holder was proved (issue 16):
# STRONG_FACTOR is "passkey" once a passkey signed this session in or confirmed it
# (accounts.passkeys); under PSC_SESSION_KEY (accounts.psc.SESSION_KEY) the PSC sign-in
# keeps the level Pro Santé Connect reported, strong when it is one of
# settings.STAFF_PSC_STRONG_LEVELS (a CPS card).
STRONG_FACTOR = "strong_factor"
PSC_SESSION_KEY = "psc"


def phishing_resistant(request: HttpRequest) -> bool:
    """Whether this session was proved with a phishing-resistant factor (passkey, CPS card)."""
    session = getattr(request, "session", None)
    if session is None:
        return False
    if session.get(STRONG_FACTOR) == "passkey":
        return True
    # The Pro Santé Connect sign-in keeps its facts under accounts.psc.SESSION_KEY.
    facts = session.get(PSC_SESSION_KEY)
    level = facts.get("level") if isinstance(facts, dict) else None
    return bool(level) and str(level) in settings.STAFF_PSC_STRONG_LEVELS


def staff_factor_missing(request: HttpRequest) -> bool:
    """A staff member must prove their session with a phishing-resistant factor first."""
    return bool(settings.STAFF_REQUIRE_PHISHING_RESISTANT) and not phishing_resistant(request)
