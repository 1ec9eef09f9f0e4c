"""The admin site: staff only, and only after the second factor."""

from __future__ import annotations

from typing import Any

from django.contrib.auth.views import redirect_to_login
from django.http import HttpRequest, HttpResponse
from django.utils.translation import gettext_lazy as _
from django_otp.admin import OTPAdminSite


class PortalAdminSite(OTPAdminSite):
    site_header = _("Administration de l'opérateur")
    site_title = _("Administration")
    index_title = _("Espace de l'équipe")

    def has_permission(self, request: HttpRequest) -> bool:
        user = request.user
        return bool(
            user.is_active
            and user.is_staff
            and user.is_verified()  # type: ignore[union-attr]
            and getattr(user, "status", "active") == "active"
        )

    def login(self, request: HttpRequest, extra_context: Any = None) -> HttpResponse:  # type: ignore[override]
        # One login for everyone: the portal's own, with its lockout and code step.
        return redirect_to_login(request.get_full_path())
