"""The admin site: staff only, and only after the second factor."""

from __future__ import annotations

from typing import Any

from django.contrib.auth.views import redirect_to_login
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.urls import reverse
from django.utils.http import url_has_allowed_host_and_scheme
from django.utils.translation import gettext_lazy as _
from django_otp.admin import OTPAdminSite

from mssante.access import is_verified
from mssante.errors import Refused


class PortalAdminSite(OTPAdminSite):
    site_header = _("Administration de l'opérateur")
    site_title = _("Administration")
    index_title = _("Espace de l'équipe")

    def has_permission(self, request: HttpRequest) -> bool:
        user = request.user
        return bool(
            user.is_active
            and user.is_staff
            and is_verified(user)
            and getattr(user, "status", "active") == "active"
        )

    def login(self, request: HttpRequest, extra_context: Any = None) -> HttpResponse:
        # One login for everyone: the portal's own, with its lockout and code step.
        target = request.GET.get("next") or reverse("admin:index", current_app=self.name)
        if not url_has_allowed_host_and_scheme(target, {request.get_host()}, request.is_secure()):
            target = reverse("admin:index", current_app=self.name)
        if self.has_permission(request):
            return HttpResponseRedirect(target)
        if is_verified(request.user):
            # Logged in, second factor done, yet not staff: sending them to the login
            # page would send them straight back here, for ever. Say no, and why.
            raise Refused(
                _(
                    "L'administration est réservée à l'équipe de l'opérateur. Votre compte "
                    "n'y a pas accès : retournez à votre messagerie."
                )
            )
        return redirect_to_login(target)
