"""Access decorators shared by every app's views: logged in, second factor done, right kind."""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps
from typing import Any

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
