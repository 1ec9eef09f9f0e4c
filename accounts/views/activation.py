"""Activation links: set a password and enrol a device, all or nothing."""

from __future__ import annotations

import time

from django.contrib import messages
from django.contrib.auth import login, update_session_auth_hash
from django.contrib.auth.decorators import login_required
from django.contrib.auth.forms import PasswordChangeForm
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils.translation import gettext as _
from django.views.decorators.cache import never_cache
from django.views.decorators.csrf import csrf_protect
from django.views.decorators.http import require_http_methods
from django_otp import login as otp_login

from accounts import lockout, services
from accounts.access import current_user, verified_required
from accounts.forms import PasswordSetForm
from accounts.views.enrolment import enrolment_context
from accounts.views.login import landing_url, lockout_message, slowdown_message

SESSION_SECRET = "activation_secret"  # noqa: S105 (a session key name, not a secret)


def activated(request: HttpRequest, enrolment: services.Enrolment) -> HttpResponse:
    """Log the new holder in and show the backup codes (both activation pages end here).

    ``enrolment.user`` is the copy saved with the new password: its session hash is
    the one the next request checks (a copy loaded before would end the session).
    """
    request.session.pop(SESSION_SECRET, None)
    request.session.cycle_key()
    login(request, enrolment.user, backend="accounts.backends.IdentifierBackend")
    otp_login(request, enrolment.device)
    request.session["last_seen"] = time.time()
    request.session["backup_codes"] = enrolment.backup_codes
    messages.success(request, _("Votre compte est activé."))
    response = redirect("accounts:backup_codes")
    lockout.remember_client(request, response, enrolment.user)
    return response


@never_cache
@csrf_protect
@require_http_methods(["GET", "POST"])
def activation_view(request: HttpRequest, token: str) -> HttpResponse:
    """One page: choose a password, scan the QR code, confirm with a first code."""
    try:
        link = services.find_activation_link(token)
    except services.AccountError as exc:
        return render(request, "accounts/activation_invalid.html", {"reason": str(exc)}, status=410)
    user = link.user
    # The secret lives in the session until the whole form succeeds, so a
    # failed attempt writes nothing to the database.
    secrets_by_link = request.session.get(SESSION_SECRET, {})
    secret = secrets_by_link.get(str(link.pk)) or services.new_totp_secret()
    request.session[SESSION_SECRET] = {str(link.pk): secret}
    form = PasswordSetForm(request.POST or None, user=user)
    if request.method == "POST" and form.is_valid():
        try:
            enrolment = services.activate_account(
                link,
                password=form.cleaned_data["password1"],
                secret_hex=secret,
                code=form.cleaned_data["code"],
                request=request,
            )
        except services.AccountError as exc:
            form.add_error("code", str(exc))
        else:
            return activated(request, enrolment)
    context = {
        "form": form,
        "activated_user": user,
        "token": token,
        **enrolment_context(user, secret),
    }
    return render(request, "accounts/activation.html", context)


@never_cache
@csrf_protect
@login_required
@verified_required()
@require_http_methods(["GET", "POST"])
def password_change_view(request: HttpRequest) -> HttpResponse:
    """Change the password while logged in (the current one is asked)."""
    user = current_user(request)
    form = PasswordChangeForm(user, request.POST or None)
    if request.method == "POST":
        # The current password is checked here too: guessing it from an open session
        # is bounded like guessing it at the login page.
        refusal = lockout.may_try(request, user)
        if refusal is not None:
            message = slowdown_message(refusal.retry_at) if refusal.retry_at else lockout_message()
            return render(
                request,
                "accounts/password_change.html",
                {"form": PasswordChangeForm(user), "refused": message},
                status=429,
            )
        if form.is_valid():
            lockout.refund_attempt(request, lockout.target_for(user))
            services.change_password(
                user, new_password=form.cleaned_data["new_password1"], request=request
            )
            update_session_auth_hash(request, user)
            messages.success(request, _("Votre mot de passe a été modifié."))
            return redirect(landing_url(user))
        if "old_password" in form.errors:
            lockout.wrong_secret(request, user)
        else:
            lockout.refund_attempt(request, lockout.target_for(user))
    return render(request, "accounts/password_change.html", {"form": form})
