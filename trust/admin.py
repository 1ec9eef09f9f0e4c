"""Staff views of the trust rules: the liste blanche (read-only) and the recipient exceptions."""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import admin, messages
from django.db.models import Count, QuerySet
from django.http import HttpRequest, HttpResponse
from django.utils import timezone
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _

from accounts.access import current_user
from trust import listeblanche, services
from trust.models import (
    ListeBlancheImport,
    ListedDomain,
    OperatorCertificate,
    RecipientLimitException,
)


class ReadOnlyAdmin(admin.ModelAdmin):
    """Nobody adds, changes or deletes here, superusers included: only an import writes."""

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


class CertificateInline(admin.TabularInline):
    model = OperatorCertificate
    fields = ("dn", "updated_at")
    readonly_fields = fields
    extra = 0
    can_delete = False

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


@admin.register(ListedDomain)
class ListedDomainAdmin(ReadOnlyAdmin):
    """The list is only ever replaced by an import, so it is read-only here."""

    list_display = ("name", "description", "certificate_count", "updated_at")
    search_fields = ("name", "description", "certificates__dn")
    fields = ("name", "description", "responsible_contact", "support_contact", "updated_at")
    readonly_fields = fields
    inlines = [CertificateInline]

    def get_queryset(self, request: HttpRequest) -> QuerySet[ListedDomain]:
        return super().get_queryset(request).annotate(_certificates=Count("certificates"))

    @admin.display(description=_("certificats"), ordering="_certificates")
    def certificate_count(self, obj: Any) -> int:
        return int(obj._certificates)

    def changelist_view(self, request: HttpRequest, extra_context: Any = None) -> HttpResponse:
        # Staff must see at a glance how fresh the list is and whether the last
        # scheduled refresh was refused.
        extra = {
            "last_import": listeblanche.last_import(),
            "last_success": listeblanche.last_successful_import(),
            **(extra_context or {}),
        }
        return super().changelist_view(request, extra)


@admin.register(ListeBlancheImport)
class ListeBlancheImportAdmin(ReadOnlyAdmin):
    list_display = (
        "started_at",
        "result",
        "generated_at",
        "domains",
        "certificates",
        "added",
        "removed",
        "forced",
    )
    list_filter = ("result",)
    fields = (
        "started_at",
        "finished_at",
        "source",
        "generated_at",
        "result",
        "forced",
        "by",
        "entries",
        "domains",
        "certificates",
        "added",
        "removed",
        "messages",
    )
    readonly_fields = fields


# --- Recipient limit exceptions ------------------------------------------------------------


class RecipientExceptionForm(forms.ModelForm):
    class Meta:
        model = RecipientLimitException
        fields = ("mailbox", "reason", "valid_until")

    def clean_valid_until(self) -> Any:
        value = self.cleaned_data["valid_until"]
        if value is not None and value <= timezone.now():
            raise forms.ValidationError(_("La date de fin doit être dans le futur."))
        return value


@admin.register(RecipientLimitException)
class RecipientLimitExceptionAdmin(admin.ModelAdmin):
    """Granted here (through the service, so it is audited), never edited: revoke and re-grant."""

    form = RecipientExceptionForm
    list_display = ("mailbox", "valid_until", "granted_by", "granted_at", "revoked_at")
    list_filter = ("valid_until", "revoked_at")
    search_fields = ("mailbox__address",)
    raw_id_fields = ("mailbox",)
    list_select_related = ("mailbox", "granted_by")
    actions = ["revoke"]

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> Any:
        if obj is None:
            return ()
        return (
            "mailbox",
            "reason",
            "valid_until",
            "granted_by",
            "granted_at",
            "revoked_at",
            "revoked_by",
        )

    def save_model(self, request: HttpRequest, obj: Any, form: Any, change: bool) -> None:
        created = services.grant_recipient_exception(
            form.cleaned_data["mailbox"],
            reason=form.cleaned_data["reason"],
            valid_until=form.cleaned_data["valid_until"],
            by=current_user(request),
        )
        obj.pk = created.pk

    @admin.action(description=_("Révoquer maintenant"))
    def revoke(self, request: HttpRequest, queryset: QuerySet[RecipientLimitException]) -> None:
        for exception in queryset:
            services.revoke_recipient_exception(exception, by=current_user(request))
        self.message_user(request, gettext("Dérogation(s) révoquée(s)."), messages.SUCCESS)
