"""The account page (/compte/): how the holder signs in, their sessions, recent sign-ins.

Reached only past the second factor. Each change (a passkey, backup codes, a session
ended) is journaled and notified by e-mail by its service; this module parses, checks
that the object is the holder's (another's is a 404) and renders.
"""

from __future__ import annotations

from typing import Any

from django.contrib import messages
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.http import url_has_allowed_host_and_scheme
from django.utils.translation import gettext as _
from django.utils.translation import ngettext
from django.views.decorators.cache import never_cache
from django.views.decorators.csrf import csrf_protect
from django.views.decorators.http import require_POST, require_safe

from accounts import account_sessions, passkeys, psc, services
from accounts.access import (
    current_user,
    phishing_resistant,
    staff_factor_missing,
    verified_required,
)
from accounts.models import BackupCode, ProSanteConnectDevice, TOTPDevice, User


def _apps_available(user: User) -> bool:
    # Application passwords (clients app) are for professionals' practice software.
    return user.kind == User.Kind.PROFESSIONAL


@never_cache
@verified_required()
@require_safe
def account_view(request: HttpRequest) -> HttpResponse:
    user = current_user(request)
    sessions = account_sessions.open_sessions(user)
    current = request.session.get(account_sessions.RECORDED)
    context = {
        "account_user": user,
        "totp_devices": list(
            TOTPDevice.objects.filter(user=user, confirmed=True).order_by("created_at")
        ),
        "email_codes": services.email_device(user) is not None,
        "backup_codes_left": BackupCode.objects.filter(device__user=user).count(),
        "passkeys": passkeys.passkeys_of(user),
        "passkey_max": passkeys.MAX_PASSKEYS,
        "passkey_name_max": passkeys.NAME_MAX,
        "sessions": sessions,
        "current_session": current,
        "recent": account_sessions.recent_sign_ins(user),
        "apps_available": _apps_available(user),
        "strong_session": phishing_resistant(request),
        **_psc_method(user),
    }
    return render(request, "accounts/account.html", context)


def _psc_method(user: User) -> dict[str, Any]:
    """Pro Santé Connect among the sign-in methods: when it was last used, at what level."""
    device = ProSanteConnectDevice.objects.filter(user=user).first()
    labels = {psc.LEVEL_CARD: _("la carte CPS"), psc.LEVEL_ECPS: _("l'application e-CPS")}
    return {
        "psc_enabled": psc.enabled(),
        "is_professional": user.is_professional,
        "psc_device": device,
        "psc_level_label": labels.get(device.last_level, _("un moyen non précisé"))
        if device
        else "",
    }


@never_cache
@verified_required()
@require_POST
@csrf_protect
def backup_codes_regenerate_view(request: HttpRequest) -> HttpResponse:
    user = current_user(request)
    try:
        codes = services.regenerate_backup_codes(user, request=request)
    except services.AccountError as exc:
        messages.error(request, str(exc))
        return redirect("accounts:account")
    # Shown once, in the answer to this request, never kept.
    return render(
        request,
        "accounts/backup_codes.html",
        {"codes": codes, "continue_url": reverse("accounts:account")},
    )


@verified_required()
@require_POST
@csrf_protect
def session_end_view(request: HttpRequest, session_id: int) -> HttpResponse:
    user = current_user(request)
    try:
        account_sessions.end_session(user, session_id, request=request)
    except LookupError:
        raise Http404 from None
    if session_id == request.session.get(account_sessions.RECORDED):
        # The holder ended this very session: the middleware logs it out on the next page.
        return redirect("accounts:login")
    messages.success(request, _("La session a été fermée."))
    return redirect(reverse("accounts:account") + "#sessions")


@verified_required()
@require_POST
@csrf_protect
def sessions_end_all_view(request: HttpRequest) -> HttpResponse:
    user = current_user(request)
    ended = account_sessions.end_all_sessions(user, request=request)
    messages.success(
        request,
        ngettext(
            "%(count)d session fermée, celle-ci comprise : reconnectez-vous.",
            "%(count)d sessions fermées, celle-ci comprise : reconnectez-vous.",
            ended,
        )
        % {"count": ended},
    )
    return redirect("accounts:login")


@never_cache
@verified_required()
@require_safe
def strong_factor_view(request: HttpRequest) -> HttpResponse:
    """What a staff member sees before the admin when this session lacks a passkey."""
    user = current_user(request)
    if not user.is_staff:
        # The admin's door: whoever cannot go through it has no reason to see it.
        raise Http404
    target = request.GET.get("next") or reverse("admin:index")
    if not url_has_allowed_host_and_scheme(target, {request.get_host()}, request.is_secure()):
        target = reverse("admin:index")
    if not staff_factor_missing(request):
        return redirect(target)
    return render(
        request,
        "accounts/strong_factor.html",
        {"passkeys": passkeys.passkeys_of(user), "next": target},
        status=403,
    )
