"""Access decorators shared by every app's views: logged in, second factor done, right kind."""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps
from typing import Any

from django.contrib.auth.views import redirect_to_login
from django.http import Http404, HttpRequest, HttpResponse


def verified_required(*kinds: str) -> Callable[[Callable[..., HttpResponse]], Callable[..., HttpResponse]]:
    """The user is logged in with a second factor and, when kinds are given, of one of them.

    Another kind of user gets 404, not 403: a patient has no reason to learn
    that a professional URL exists.
    """

    def decorator(view: Callable[..., HttpResponse]) -> Callable[..., HttpResponse]:
        @wraps(view)
        def wrapper(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
            user = request.user
            if not user.is_authenticated or not user.is_verified():  # type: ignore[union-attr]
                return redirect_to_login(request.get_full_path())
            if kinds and user.kind not in kinds:  # type: ignore[union-attr]
                raise Http404
            return view(request, *args, **kwargs)

        return wrapper

    return decorator
