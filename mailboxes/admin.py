from typing import Any

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import ValidationError
from django.http import HttpRequest
from django.utils.translation import gettext_lazy as _

from mailboxes import services
from mailboxes.models import Delivery, Folder, HostedDomain, Mailbox, Message


@admin.register(HostedDomain)
class HostedDomainAdmin(admin.ModelAdmin):
    list_display = ["name", "kind", "description", "active"]
    list_filter = ["kind", "active"]
    search_fields = ["name", "description"]

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> Any:
        # Addresses embed the domain name: renaming it would orphan every mailbox.
        return ["name"] if obj is not None else []


class MailboxCreationForm(forms.ModelForm):
    address = forms.CharField(
        label=_("adresse"),
        required=False,
        help_text=_(
            "Laissez vide pour une boîte nominative : l'adresse prenom.nom@domaine est proposée."
        ),
    )

    class Meta:
        model = Mailbox
        fields = [
            "kind",
            "domain",
            "address",
            "owner",
            "responsible",
            "display_name",
            "liste_rouge",
        ]

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        kind, owner, domain = data.get("kind"), data.get("owner"), data.get("domain")
        if kind == Mailbox.Kind.PERSONAL and owner is None:
            raise ValidationError(_("Une boîte nominative a un titulaire."))
        if kind != Mailbox.Kind.PERSONAL and not data.get("address"):
            raise ValidationError(_("Indiquez l'adresse de la boîte."))
        if domain is None:
            return data
        try:
            self.instance = self._create(data)
        except services.MailboxError as exc:
            raise ValidationError(str(exc)) from None
        return data

    def _post_clean(self) -> None:
        # The service validated and created the mailbox in clean(); rebuilding the
        # instance from the form would overwrite the address it proposed.
        pass

    def _create(self, data: dict[str, Any]) -> Mailbox:
        by = getattr(self, "request_user", None)
        if data["kind"] == Mailbox.Kind.PERSONAL:
            box = services.create_personal_mailbox(
                data["owner"], data["domain"], address=data.get("address") or None, by=by
            )
        else:
            box = services.create_mailbox(
                data["kind"],
                data["address"],
                data["domain"],
                owner=data.get("owner"),
                responsible=data.get("responsible"),
                display_name=data.get("display_name", ""),
                by=by,
            )
        if data.get("liste_rouge"):
            box.liste_rouge = True
            box.save(update_fields=["liste_rouge"])
        return box


class FolderInline(admin.TabularInline):
    model = Folder
    fields = ["name", "role"]
    readonly_fields = ["name", "role"]
    extra = 0
    can_delete = False

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


@admin.register(Mailbox)
class MailboxAdmin(admin.ModelAdmin):
    list_display = ["address", "kind", "owner", "responsible", "status", "liste_rouge"]
    list_filter = ["kind", "status", "domain", "liste_rouge"]
    search_fields = ["address", "display_name", "owner__last_name", "owner__username"]
    raw_id_fields = ["owner", "responsible"]
    inlines = [FolderInline]

    def get_form(
        self, request: HttpRequest, obj: Any = None, change: bool = False, **kwargs: Any
    ) -> Any:
        if obj is None:
            kwargs["form"] = MailboxCreationForm
        form = super().get_form(request, obj, change=change, **kwargs)
        form.request_user = request.user  # type: ignore[attr-defined]
        return form

    def get_inlines(self, request: HttpRequest, obj: Any) -> Any:
        # The service creates the system folders: nothing to show before it ran.
        return self.inlines if obj is not None else []

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> Any:
        # Address, type and domain never change once created (the model refuses it too).
        return ["address", "kind", "domain", "created_at"] if obj is not None else []

    def save_model(self, request: HttpRequest, obj: Any, form: Any, change: bool) -> None:
        if change:
            super().save_model(request, obj, form, change)
        # A new mailbox was created by the service during form validation.

    def save_related(self, request: HttpRequest, form: Any, formsets: Any, change: bool) -> None:
        if change:
            super().save_related(request, form, formsets, change)
        else:
            messages.info(request, _("Boîte créée avec ses dossiers système."))

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        # Closing (status) keeps the history; deleting would lose messages.
        return False


class DeliveryInline(admin.TabularInline):
    model = Delivery
    fields = ["recipient", "status", "attempts", "next_attempt_at", "delivered_at", "last_error"]
    readonly_fields = (
        "recipient",
        "status",
        "attempts",
        "next_attempt_at",
        "delivered_at",
        "last_error",
    )
    extra = 0
    can_delete = False

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


@admin.register(Message)
class MessageAdmin(admin.ModelAdmin):
    """Envelope and delivery status only: staff never see bodies or attachments."""

    list_display = ["message_id", "from_addr", "date", "size", "scan_status", "origin"]
    list_filter = ["scan_status", "origin"]
    search_fields = ["message_id", "from_addr"]
    fields = readonly_fields = (
        "public_id",
        "message_id",
        "thread_key",
        "from_addr",
        "to_addrs",
        "cc_addrs",
        "date",
        "size",
        "scan_status",
        "origin",
        "key_id",
    )
    inlines = [DeliveryInline]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False
