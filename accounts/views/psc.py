"""Sign-in with Pro Santé Connect: the way out to PSC and the way back (accounts/psc.py)."""

from __future__ import annotations

import time
from typing import Any

from django.conf import settings
from django.contrib.auth import login
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.translation import gettext as _
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_safe
from django_otp import login as otp_login

from accounts import account_sessions, lockout, psc, psc_services, services
from accounts.access import current_user, is_verified
from accounts.forms import LoginForm
from accounts.models import AccountSession, User
from accounts.views.login import PENDING, _next_url, _status_message, landing_url

# Where to go after the sign-in, kept across the trip to PSC.
NEXT_KEY = "psc_next"


def _login_page(request: HttpRequest, status: int, **context: Any) -> HttpResponse:
    context.setdefault("form", LoginForm())
    return render(request, "accounts/login.html", context, status=status)


def _failed(request: HttpRequest, error: psc.PscError) -> HttpResponse:
    psc_services.record_failure(error.reason, request)
    # PSC unreachable is no fault of the request nor ours: the login page, told why, as a
    # plain 200 (a 5xx would page whoever watches our errors for another site's outage).
    status = 200 if error.reason == "provider" else 400
    return _login_page(request, status, psc_error=error.message)


@never_cache
@require_safe
def psc_start(request: HttpRequest) -> HttpResponse:
    """Off to PSC (a plain link: the PSC button on the login page)."""
    if not psc.enabled():
        raise Http404
    if is_verified(request.user):
        return redirect(_next_url(request) or landing_url(current_user(request)))
    request.session[NEXT_KEY] = _next_url(request)
    try:
        return psc.start(request, request.build_absolute_uri(reverse("accounts:psc_callback")))
    except psc.PscError as error:
        return _failed(request, error)


@never_cache
@require_safe
def psc_callback(request: HttpRequest) -> HttpResponse:
    """Back from PSC: check the answer, find the professional by national id, log in."""
    if not psc.enabled():
        raise Http404
    try:
        identity = psc.finish(request)
    except psc.PscError as error:
        return _failed(request, error)
    user = psc_services.professional_for(identity)
    if user is None:
        psc_services.record_unknown(identity, request)
        return render(
            request,
            "accounts/psc_unknown.html",
            {"national_id": identity.national_id},
            status=403,
        )
    if user.status != User.Status.ACTIVE:
        psc_services.record_failure("account_" + user.status, request)
        return _login_page(request, 403, refused=_status_message(user))
    if not user.is_active:
        # Django's own switch, turned off by the staff in the admin: no session would hold.
        psc_services.record_failure("account_inactive", request)
        return _login_page(request, 403, refused=_("Ce compte est désactivé."))
    then = request.session.pop(NEXT_KEY, "") or ""
    request.session.cycle_key()
    if psc.is_strong(identity.level):
        device = psc_services.record_strong_sign_in(user, identity, request)
        request.session[account_sessions.LOGIN_METHOD] = AccountSession.Method.PSC
        login(request, user, backend="accounts.backends.IdentifierBackend")
        otp_login(request, device)
        request.session["last_seen"] = time.time()
        request.session[psc.SESSION_KEY] = identity.session_data()
        response = redirect(then or landing_url(user))
        lockout.remember_client(request, response, user)
        return response
    # Not strong enough alone: the one-time code as after a password (views.login), the
    # PSC facts carried to the session when the code is given (login._finish).
    psc_services.record_code_asked(user, identity, request)
    request.session[PENDING] = {
        "uid": user.pk,
        "at": time.time(),
        "next": then,
        "former_adeli_until": "",
        "psc": identity.session_data(),
    }
    if services.has_second_factor(user):
        return redirect("accounts:login_code")
    return redirect("accounts:login_enrol")


def psc_context(request: HttpRequest) -> dict[str, Any]:
    """What the PSC block of the login page needs (templatetags/psc.py)."""
    return {
        "psc_enabled": psc.enabled(),
        "psc_start_url": reverse("accounts:psc_start"),
        "psc_next": _next_url(request),
        "psc_about_url": settings.PSC_ABOUT_URL,
    }
