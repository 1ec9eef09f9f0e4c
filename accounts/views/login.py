"""Login in two steps: identifier + password, then a one-time code (or enrolment)."""

from __future__ import annotations

import time
from datetime import datetime
from typing import Any

from django.conf import settings
from django.contrib import messages
from django.contrib.auth import authenticate, login, logout
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone
from django.utils.formats import date_format
from django.utils.http import url_has_allowed_host_and_scheme
from django.utils.translation import gettext as _
from django.views.decorators.cache import never_cache
from django.views.decorators.csrf import csrf_protect
from django.views.decorators.http import require_http_methods, require_POST, require_safe
from django_otp import login as otp_login

from accounts import account_sessions, lockout, psc, services
from accounts.access import current_user, is_verified
from accounts.forms import CodeForm, LoginForm
from accounts.models import AccountSession, PasskeyDevice, User
from accounts.views.enrolment import enrolment_context
from audit import journal

PENDING = "login_pending"
BAD_CREDENTIALS = "Identifiant ou mot de passe incorrect."


def lockout_message() -> str:
    minutes = int(settings.AXES_COOLOFF_TIME.total_seconds() // 60)
    return _(
        "Trop d'essais infructueux depuis votre connexion : cet identifiant y est bloqué "
        "pendant %(minutes)d minutes. Réessayez plus tard, depuis un autre réseau, "
        "ou contactez le support."
    ) % {"minutes": minutes}


def slowdown_message(retry_at: datetime | None) -> str:
    wait = max(1, int(((retry_at or timezone.now()) - timezone.now()).total_seconds()))
    minutes = (wait + 59) // 60
    return _(
        "Par sécurité, après des essais infructueux, les connexions à cet identifiant depuis "
        "un appareil ou un réseau inconnu sont ralenties. Réessayez dans %(minutes)d minute(s), "
        "ou connectez-vous depuis un appareil ou un réseau d'où vous vous êtes déjà connecté."
    ) % {"minutes": minutes}


def _refused(
    request: HttpRequest, context: dict[str, Any], *, retry_at: datetime | None = None
) -> HttpResponse:
    """The login page saying why no attempt was made (429, with Retry-After when known)."""
    if retry_at is None:
        context["locked"] = lockout_message()
        wait = int(settings.AXES_COOLOFF_TIME.total_seconds())
    else:
        context["locked"] = slowdown_message(retry_at)
        wait = max(1, int((retry_at - timezone.now()).total_seconds()))
    context.setdefault("form", LoginForm())
    response = render(request, "accounts/login.html", context, status=429)
    response["Retry-After"] = str(wait)
    return response


def lockout_response(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
    """What django-axes answers once the identifier is locked: the login page with the reason."""
    form = LoginForm(request.POST or None)
    form.is_valid()
    return _refused(request, {"form": form})


def _next_url(request: HttpRequest) -> str:
    target = request.POST.get("next") or request.GET.get("next") or ""
    if target and url_has_allowed_host_and_scheme(
        target, {request.get_host()}, request.is_secure()
    ):
        return target
    return ""


def landing_url(user: User) -> str:
    if user.kind == User.Kind.PATIENT:
        return reverse("patient_home")
    if user.kind == User.Kind.STAFF:
        return reverse("admin:index")
    return reverse("webmail_home")


def _status_message(user: User) -> str:
    if user.status == User.Status.SUSPENDED:
        text = _("Votre compte est suspendu.")
    else:
        text = _("Votre compte est clôturé.")
    if user.status_reason:
        text += " " + _("Motif : %(reason)s") % {"reason": user.status_reason}
    return text


def masked_address(address: str) -> str:
    local, _at, domain = address.partition("@")
    return f"{local[:1]}•••@{domain}" if domain else ""


def _pending(request: HttpRequest) -> tuple[User, dict[str, Any]] | None:
    state = request.session.get(PENDING)
    if not state:
        return None
    started = datetime.fromtimestamp(state["at"], tz=timezone.get_current_timezone())
    if services.login_expired(started):
        request.session.pop(PENDING, None)
        return None
    user = User.objects.filter(pk=state["uid"], status=User.Status.ACTIVE).first()
    if user is None:
        request.session.pop(PENDING, None)
        return None
    return user, state


@never_cache
@csrf_protect
@require_http_methods(["GET", "POST"])
def login_view(request: HttpRequest) -> HttpResponse:
    """Step 1: identifier and password."""
    if is_verified(request.user):
        return redirect(_next_url(request) or landing_url(current_user(request)))
    form = LoginForm(request.POST or None)
    context: dict[str, Any] = {"form": form, "next": _next_url(request)}
    if request.method == "POST" and form.is_valid():
        identifier = form.cleaned_data["identifier"]
        key = lockout.target(identifier)
        if lockout.is_locked(request, key):
            return _refused(request, context)
        claim = lockout.claim_attempt(request, key)
        if not claim.allowed:
            return _refused(request, context, retry_at=claim.retry_at)
        user = authenticate(request, username=identifier, password=form.cleaned_data["password"])
        if user is None:
            journal.record("login.failed", request=request, step="password")
            if lockout.failed(request, key):
                return _refused(request, context)
            context["error"] = _(BAD_CREDENTIALS)
            return render(request, "accounts/login.html", context, status=200)
        lockout.refund_attempt(request, key)
        if user.status != User.Status.ACTIVE:
            journal.record(
                "login.refused", actor=user, obj=user, request=request, status=user.status
            )
            context["refused"] = _status_message(user)
            return render(request, "accounts/login.html", context, status=403)
        request.session.cycle_key()
        former = getattr(user, "via_former_adeli", None)
        request.session[PENDING] = {
            "uid": user.pk,
            "at": time.time(),
            "next": _next_url(request),
            "former_adeli_until": former.accepted_until.isoformat() if former else "",
        }
        if services.has_second_factor(user):
            return redirect("accounts:login_code")
        return redirect("accounts:login_enrol")
    return render(request, "accounts/login.html", context)


def _finish(
    request: HttpRequest,
    user: User,
    device: Any,
    state: dict[str, Any],
    *,
    then: str = "",
    method: str = "",
) -> HttpResponse:
    request.session.pop(PENDING, None)
    if state.get("psc"):
        # The session list names how it was opened (account_sessions, at login()).
        request.session.setdefault(account_sessions.LOGIN_METHOD, AccountSession.Method.PSC)
    login(request, user, backend="accounts.backends.IdentifierBackend")
    otp_login(request, device)
    request.session["last_seen"] = time.time()
    if state.get("psc"):
        # Pro Santé Connect at a level that needed this code too (views/psc.py).
        request.session[psc.SESSION_KEY] = state["psc"]
    details = {"method": method} if method else {}
    journal.record("login.succeeded", actor=user, obj=user, request=request, **details)
    if state.get("former_adeli_until"):
        until = datetime.fromisoformat(state["former_adeli_until"])
        messages.warning(
            request,
            _(
                "Vous vous êtes connecté avec votre ancien numéro Adeli, accepté jusqu'au %(date)s. "
                "Utilisez désormais votre numéro RPPS %(rpps)s."
            )
            % {"date": date_format(until, "j F Y"), "rpps": user.professional.id_number},
        )
    response = redirect(then or state.get("next") or landing_url(user))
    lockout.remember_client(request, response, user)
    return response


def code_sending_message(sending: services.CodeSending) -> str:
    return _(
        "Un code vous a déjà été envoyé il y a moins de %(cooldown)d secondes : utilisez-le, "
        "ou réessayez dans %(wait)d secondes."
    ) % {"cooldown": settings.OTP_EMAIL_COOLDOWN_DURATION, "wait": sending.wait_seconds}


@never_cache
@csrf_protect
@require_http_methods(["GET", "POST"])
def code_view(request: HttpRequest) -> HttpResponse:
    """Step 2: the one-time code (TOTP or a backup code, each usable once)."""
    pending = _pending(request)
    if pending is None:
        messages.info(request, _("Votre connexion a expiré : recommencez."))
        return redirect("accounts:login")
    user, state = pending
    if not services.has_second_factor(user):
        return redirect("accounts:login_enrol")
    resend = request.method == "POST" and "renvoyer" in request.POST
    form = CodeForm(request.POST if request.method == "POST" and not resend else None)
    context: dict[str, Any] = {
        "form": form,
        "pending_user": user,
        "has_passkeys": PasskeyDevice.objects.filter(user=user, confirmed=True).exists(),
    }
    email_device = services.email_device(user)
    if email_device is not None:
        # Codes by e-mail (patients' choice): one is sent on entering this step, and
        # again on request; the cooldown keeps a reload from flooding the box, and the
        # page says so rather than claim a code left.
        context["email_hint"] = masked_address(user.email)
        form.fields["code"].help_text = _("Les chiffres reçus par e-mail, ou un code de secours.")
        if resend or (request.method == "GET" and not state.get("email_sent")):
            sending = services.send_login_code(email_device)
            if sending.sent:
                state["email_sent"] = True
                request.session[PENDING] = state
                context["code_sent"] = True
            else:
                context["code_not_sent"] = code_sending_message(sending)
        elif state.get("email_sent"):
            context["code_sent"] = True
    if request.method == "POST" and not resend and form.is_valid():
        verdict = lockout.verify_code(request, user, form.cleaned_data["code"])
        if verdict.device is not None:
            return _finish(request, user, verdict.device, state)
        journal.record("login.failed", actor=user, obj=user, request=request, step="code")
        if verdict.locked or verdict.retry_at is not None:
            request.session.pop(PENDING, None)
            return _refused(request, {"form": LoginForm()}, retry_at=verdict.retry_at)
        context["error"] = _("Code incorrect ou déjà utilisé.")
        return render(request, "accounts/code.html", context)
    return render(request, "accounts/code.html", context)


@never_cache
@csrf_protect
@require_http_methods(["GET", "POST"])
def enrol_view(request: HttpRequest) -> HttpResponse:
    """First login without a device: enrol a TOTP application, then show the backup codes."""
    pending = _pending(request)
    if pending is None:
        return redirect("accounts:login")
    user, state = pending
    if services.has_second_factor(user):
        return redirect("accounts:login_code")
    secret = request.session.get("enrol_secret") or services.new_totp_secret()
    request.session["enrol_secret"] = secret
    form = CodeForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            enrolment = services.enrol_totp(
                user, secret_hex=secret, code=form.cleaned_data["code"], request=request
            )
        except services.AccountError as exc:
            form.add_error("code", str(exc))
        else:
            request.session.pop("enrol_secret", None)
            response = _finish(
                request,
                enrolment.user,
                enrolment.device,
                state,
                then=reverse("accounts:backup_codes"),
            )
            request.session["backup_codes"] = enrolment.backup_codes
            return response
    context = {"form": form, **enrolment_context(user, secret)}
    return render(request, "accounts/enrol.html", context)


@never_cache
@require_safe
def backup_codes_view(request: HttpRequest) -> HttpResponse:
    """The backup codes, shown once right after enrolment."""
    codes = request.session.pop("backup_codes", None)
    if not codes or not is_verified(request.user):
        return redirect("home")
    return render(
        request,
        "accounts/backup_codes.html",
        {"codes": codes, "continue_url": landing_url(current_user(request))},
    )


@require_POST
@csrf_protect
def logout_view(request: HttpRequest) -> HttpResponseRedirect:
    if request.user.is_authenticated:
        journal.record("logout", actor=request.user, obj=request.user, request=request)
    # Signed in through Pro Santé Connect: its session ends too (RP-initiated logout).
    psc_end = psc.end_session_url(request, request.build_absolute_uri(reverse("accounts:login")))
    logout(request)
    messages.success(request, _("Vous êtes déconnecté."))
    return redirect(psc_end or "accounts:login")
