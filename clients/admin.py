"""Staff see application passwords (never their secret) and may revoke one."""

from __future__ import annotations

from typing import Any

from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest
from django.utils.translation import gettext_lazy as _

from clients import services
from clients.models import AppPassword


@admin.register(AppPassword)
class AppPasswordAdmin(admin.ModelAdmin):
    list_display = ("label", "user", "mailbox", "scope", "expires_at", "revoked_at", "last_used_at")
    list_filter = ("scope", "last_used_protocol")
    search_fields = ("label", "mailbox__address", "user__username")
    readonly_fields = [f.name for f in AppPassword._meta.fields if f.name != "token_hash"]
    exclude = ("token_hash",)
    actions = ("revoke",)

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False  # created by their holder, after the second factor

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    @admin.action(description=_("Révoquer les mots de passe sélectionnés"))
    def revoke(self, request: HttpRequest, queryset: QuerySet[AppPassword]) -> None:
        for password in queryset:
            services.revoke_app_password(password, by=request.user, request=request)  # type: ignore[arg-type]
        messages.success(request, _("Mots de passe révoqués."))
