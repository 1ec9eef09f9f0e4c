"""Ends idle sessions with a message saying why."""

from __future__ import annotations

import time
from collections.abc import Callable

from django.conf import settings
from django.contrib import messages
from django.contrib.auth import logout
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect
from django.utils.translation import gettext as _

# Seconds between two writes of a session's last activity.
LAST_SEEN_STEP = 60


class SessionGuardMiddleware:
    """Logs out a session idle for more than SESSION_IDLE_MINUTES (health data on shared screens)."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        if request.user.is_authenticated:
            now = time.time()
            last = request.session.get("last_seen")
            if last is not None and now - last > settings.SESSION_IDLE_MINUTES * 60:
                logout(request)
                messages.info(
                    request,
                    _(
                        "Votre session a expiré après %(minutes)d minutes d'inactivité. Reconnectez-vous."
                    )
                    % {"minutes": settings.SESSION_IDLE_MINUTES},
                )
                if getattr(request, "htmx", False):
                    response = HttpResponse(status=204)
                    response["HX-Redirect"] = settings.LOGIN_URL_PATH
                    return response
                return redirect(f"{settings.LOGIN_URL_PATH}?next={request.path}")
            if last is None or now - last >= LAST_SEEN_STEP:
                # Written once a minute at most, not at every page: each write is a
                # database commit (the idle limit may end up to a minute early).
                request.session["last_seen"] = now
        return self.get_response(request)
