"""Passkey endpoints: the JSON steps of the WebAuthn ceremonies, and the forms that manage them.

static/js/passkeys.js asks for options (POST, CSRF), hands them to the browser's
``navigator.credentials``, and posts the answer back. Every refusal is a 400 with a French
``error`` the page shows; nothing here can answer 500 for a malformed body.
"""

from __future__ import annotations

from typing import Any

from django.contrib import messages
from django.contrib.auth import logout
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import redirect
from django.urls import reverse
from django.utils.translation import gettext as _
from django.views.decorators.cache import never_cache
from django.views.decorators.csrf import csrf_protect
from django.views.decorators.http import require_POST

from accounts import account_sessions, passkeys
from accounts.access import current_user, is_verified, verified_required
from accounts.models import AccountSession, PasskeyDevice
from accounts.views import login as login_views


def _options(json_text: str) -> HttpResponse:
    return HttpResponse(json_text, content_type="application/json")


def _refused(exc: Exception, status: int = 400) -> JsonResponse:
    return JsonResponse({"error": str(exc)}, status=status)


# --- Enrolment, from the account page (after the second factor) --------------------------------


@never_cache
@verified_required()
@require_POST
@csrf_protect
def register_options_view(request: HttpRequest) -> HttpResponse:
    try:
        return _options(passkeys.registration_options(request, current_user(request)))
    except passkeys.PasskeyError as exc:
        return _refused(exc)


@never_cache
@verified_required()
@require_POST
@csrf_protect
def register_view(request: HttpRequest) -> JsonResponse:
    user = current_user(request)
    try:
        answer = passkeys.parse_answer(request)
        device = passkeys.register(request, user, answer)
    except passkeys.PasskeyError as exc:
        return _refused(exc)
    messages.success(
        request, _("La clé d'accès « %(name)s » est enregistrée.") % {"name": device.name}
    )
    target = login_views._next_url(request) or reverse("accounts:account") + "#cles-d-acces"
    return JsonResponse({"redirect": target})


@verified_required()
@require_POST
@csrf_protect
def rename_view(request: HttpRequest, passkey_id: int) -> HttpResponse:
    user = current_user(request)
    try:
        device = passkeys.rename(user, passkey_id, request.POST.get("name", ""), request=request)
    except LookupError:
        raise Http404 from None
    except passkeys.PasskeyError as exc:
        messages.error(request, str(exc))
    else:
        messages.success(request, _("Clé d'accès renommée « %(name)s ».") % {"name": device.name})
    return redirect(reverse("accounts:account") + "#cles-d-acces")


@verified_required()
@require_POST
@csrf_protect
def revoke_view(request: HttpRequest, passkey_id: int) -> HttpResponse:
    user = current_user(request)
    device = getattr(request.user, "otp_device", None)
    this_session = isinstance(device, PasskeyDevice) and device.pk == passkey_id
    try:
        passkeys.revoke(user, passkey_id, request=request)
    except LookupError:
        raise Http404 from None
    if this_session:
        # The passkey that proved this session: the session ends with it (django-otp
        # would no longer count it as verified anyway), and the holder is told why.
        logout(request)
        messages.info(
            request,
            _(
                "La clé d'accès a été supprimée. C'est elle qui avait ouvert cette session : "
                "reconnectez-vous."
            ),
        )
        return redirect("accounts:login")
    messages.success(
        request, _("La clé d'accès a été supprimée : elle ne permet plus de se connecter.")
    )
    return redirect(reverse("accounts:account") + "#cles-d-acces")


# --- Confirming this session with a passkey (staff before the admin) ---------------------------


@never_cache
@verified_required()
@require_POST
@csrf_protect
def confirm_options_view(request: HttpRequest) -> HttpResponse:
    user = current_user(request)
    if not passkeys.passkeys_of(user):
        return _refused(passkeys.PasskeyError(_("Enregistrez d'abord une clé d'accès.")))
    return _options(passkeys.authentication_options(request, user))


@never_cache
@verified_required()
@require_POST
@csrf_protect
def confirm_view(request: HttpRequest) -> JsonResponse:
    user = current_user(request)
    try:
        passkeys.confirm(request, user, passkeys.parse_answer(request))
    except passkeys.PasskeyError as exc:
        return _refused(exc)
    target = login_views._next_url(request) or login_views.landing_url(user)
    return JsonResponse({"redirect": target})


# --- Signing in: with a passkey alone, or as the step after the password -----------------------


@never_cache
@require_POST
@csrf_protect
def login_options_view(request: HttpRequest) -> HttpResponse:
    """Options for the login page (any passkey) or the code step (the pending user's)."""
    if is_verified(request.user):
        return _refused(passkeys.PasskeyError(_("Vous êtes déjà connecté.")))
    pending = login_views._pending(request) if request.GET.get("etape") == "code" else None
    if request.GET.get("etape") == "code" and pending is None:
        return _refused(passkeys.PasskeyError(_("Votre connexion a expiré : recommencez.")))
    user = pending[0] if pending is not None else None
    if user is not None and not passkeys.passkeys_of(user):
        return _refused(passkeys.PasskeyError(_("Aucune clé d'accès n'est enregistrée.")))
    return _options(passkeys.authentication_options(request, user))


@never_cache
@require_POST
@csrf_protect
def login_view(request: HttpRequest) -> HttpResponse:
    if is_verified(request.user):
        return _refused(passkeys.PasskeyError(_("Vous êtes déjà connecté.")))
    second_step = request.GET.get("etape") == "code"
    pending = login_views._pending(request) if second_step else None
    if second_step and pending is None:
        return _refused(passkeys.PasskeyError(_("Votre connexion a expiré : recommencez.")))
    try:
        answer = passkeys.parse_answer(request)
        assertion = passkeys.verify_assertion(
            request, answer, user=pending[0] if pending is not None else None
        )
    except passkeys.PasskeyError as exc:
        return _refused(exc)
    state: dict[str, Any]
    if pending is not None:
        state = pending[1]
        method = AccountSession.Method.PASSWORD_PASSKEY
    else:
        request.session.cycle_key()
        state = {"next": login_views._next_url(request)}
        method = AccountSession.Method.PASSKEY
    request.session[account_sessions.LOGIN_METHOD] = str(method)
    finished = login_views._finish(
        request, assertion.user, assertion.device, state, method=str(method)
    )
    passkeys.mark_strong(request)
    response = JsonResponse({"redirect": finished["Location"]})
    # The "known browser" cookie the login sets (accounts.lockout.remember_client).
    response.cookies = finished.cookies
    return response
