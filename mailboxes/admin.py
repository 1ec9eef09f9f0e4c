from datetime import timedelta
from typing import Any

from django import forms
from django.conf import settings
from django.contrib import admin, messages
from django.core.exceptions import ValidationError
from django.http import HttpRequest
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from mailboxes import services
from mailboxes.models import (
    AccessEvent,
    ApiAgreement,
    ApiToken,
    Delivery,
    Folder,
    HostedDomain,
    Mailbox,
    Membership,
    Message,
)


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
            "organisation",
            "responsible",
            "display_name",
            "liste_rouge",
        ]

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        kind, owner, domain = data.get("kind"), data.get("owner"), data.get("domain")
        if kind == Mailbox.Kind.PERSONAL and owner is None:
            raise ValidationError(_("Une boîte nominative a un titulaire."))
        if kind in (Mailbox.Kind.ORGANISATIONAL, Mailbox.Kind.APPLICATIVE):
            responsible = data.get("responsible")
            if data.get("organisation") is None:
                raise ValidationError(
                    _("Une boîte organisationnelle ou applicative appartient à une organisation.")
                )
            if responsible is None or not responsible.is_professional:
                raise ValidationError(
                    _("Une boîte organisationnelle ou applicative a un professionnel responsable.")
                )
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
                organisation=data.get("organisation"),
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


class MembershipInline(admin.TabularInline):
    """Who else uses the box; grants and revocations go through the webmail or the list."""

    model = Membership
    fk_name = "mailbox"
    fields = readonly_fields = (
        "user",
        "role",
        "granted_by",
        "granted_at",
        "expires_at",
        "revoked_at",
    )
    extra = 0
    can_delete = False

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


class ApiTokenInline(admin.TabularInline):
    model = ApiToken
    fields = readonly_fields = (
        "prefix",
        "label",
        "created_at",
        "expires_at",
        "revoked_at",
        "last_used_at",
    )
    extra = 0
    can_delete = False

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


@admin.register(Mailbox)
class MailboxAdmin(admin.ModelAdmin):
    list_display = ["address", "kind", "owner", "organisation", "responsible", "status"]
    list_filter = ["kind", "status", "domain", "liste_rouge"]
    search_fields = ["address", "display_name", "owner__last_name", "owner__username"]
    raw_id_fields = ["owner", "responsible", "organisation"]
    inlines = [FolderInline, MembershipInline, ApiTokenInline]

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


# --------------------------------------------------------------------------- shared boxes, API


class ApiTokenCreationForm(forms.ModelForm):
    class Meta:
        model = ApiToken
        fields = ["mailbox", "label", "expires_at", "scope"]

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        box = data.get("mailbox")
        if box is not None:
            # A PER or ORG box: only under the holder's own recorded agreement, never a
            # box ticked by staff on the holder's behalf.
            try:
                agreement = services.agreement_for(box)
            except services.TokenError as exc:
                raise ValidationError(str(exc)) from None
            if agreement is not None and data.get("scope") == "send" and agreement.scope == "read":
                raise ValidationError(
                    _("Le titulaire n'a accordé que la lecture : choisissez « Lecture ».")
                )
        return data


@admin.register(ApiAgreement)
class ApiAgreementAdmin(admin.ModelAdmin):
    """Holders' agreements: recorded by the holders themselves, read-only here.

    Staff may withdraw one (a holder who asks by telephone): its tokens are revoked.
    """

    list_display = ["mailbox", "holder", "scope", "software", "granted_at", "withdrawn_at"]
    list_filter = ["scope", "mailbox__kind"]
    search_fields = ["mailbox__address", "holder__last_name", "software"]
    fields = readonly_fields = (
        "mailbox",
        "holder",
        "scope",
        "software",
        "granted_at",
        "withdrawn_at",
        "withdrawn_by",
    )
    actions = ["withdraw"]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    @admin.action(description=_("Retirer les accords choisis (et révoquer leurs jetons)"))
    def withdraw(self, request: HttpRequest, queryset: Any) -> None:
        for agreement in queryset.select_related("mailbox"):
            services.withdraw_api_agreement(agreement, by=request.user)  # type: ignore[arg-type]
        messages.success(request, _("Accords retirés, jetons révoqués."))


@admin.register(ApiToken)
class ApiTokenAdmin(admin.ModelAdmin):
    """Tokens are created here and shown once; only their SHA-256 is kept."""

    list_display = [
        "prefix",
        "mailbox",
        "scope",
        "label",
        "expires_at",
        "revoked_at",
        "last_used_at",
    ]
    list_filter = ["mailbox__kind", "scope"]
    search_fields = ["prefix", "label", "mailbox__address"]
    raw_id_fields = ["mailbox"]
    actions = ["revoke"]

    def get_form(
        self, request: HttpRequest, obj: Any = None, change: bool = False, **kwargs: Any
    ) -> Any:
        if obj is None:
            kwargs["form"] = ApiTokenCreationForm
        return super().get_form(request, obj, change=change, **kwargs)

    def get_changeform_initial_data(self, request: HttpRequest) -> dict[str, Any]:
        return {"expires_at": timezone.now() + timedelta(days=settings.API_TOKEN_DAYS)}

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> Any:
        if obj is None:
            return []
        return [
            "mailbox",
            "scope",
            "agreement",
            "prefix",
            "created_by",
            "created_at",
            "expires_at",
            "last_used_at",
            "revoked_at",
        ]

    def get_fields(self, request: HttpRequest, obj: Any = None) -> Any:
        if obj is None:
            return ["mailbox", "label", "expires_at", "scope"]
        return [
            "mailbox",
            "scope",
            "agreement",
            "label",
            "prefix",
            "created_by",
            "created_at",
            "expires_at",
            "last_used_at",
            "revoked_at",
        ]

    def save_model(self, request: HttpRequest, obj: Any, form: Any, change: bool) -> None:
        if change:
            super().save_model(request, obj, form, change)
            return
        try:
            token, raw = services.create_api_token(
                form.cleaned_data["mailbox"],
                by=request.user,  # type: ignore[arg-type]
                label=form.cleaned_data.get("label", ""),
                expires_at=form.cleaned_data.get("expires_at"),
                scope=form.cleaned_data.get("scope"),
            )
        except services.TokenError as exc:
            messages.error(request, str(exc))
            return
        obj.pk = token.pk
        messages.warning(
            request,
            _("Jeton créé : %(raw)s — copiez-le maintenant, il ne sera plus jamais affiché.")
            % {"raw": raw},
        )

    @admin.action(description=_("Révoquer les jetons choisis"))
    def revoke(self, request: HttpRequest, queryset: Any) -> None:
        for token in queryset.select_related("mailbox"):
            services.revoke_api_token(token, by=request.user)  # type: ignore[arg-type]
        messages.success(request, _("Jetons révoqués."))

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        # Revocation keeps the trace of who could use the box and when.
        return False


@admin.register(Membership)
class MembershipAdmin(admin.ModelAdmin):
    list_display = [
        "mailbox",
        "user",
        "role",
        "granted_by",
        "granted_at",
        "expires_at",
        "revoked_at",
    ]
    list_filter = ["role", "mailbox__kind"]
    search_fields = ["mailbox__address", "user__last_name", "user__username"]
    raw_id_fields = ["mailbox", "user"]
    fields = ["mailbox", "user", "role", "expires_at"]
    actions = ["revoke"]

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> Any:
        return ["mailbox", "user"] if obj is not None else []

    def save_model(self, request: HttpRequest, obj: Any, form: Any, change: bool) -> None:
        by: Any = request.user
        try:
            if change:
                services.change_membership(
                    obj,
                    obj.role,
                    by=by,
                    expires_at=obj.expires_at,
                )
            else:
                granted = services.grant_membership(
                    obj.mailbox,
                    obj.user,
                    obj.role,
                    by=by,
                    expires_at=obj.expires_at,
                )
                obj.pk = granted.pk
        except services.MembershipError as exc:
            messages.error(request, str(exc))

    @admin.action(description=_("Retirer les accès choisis"))
    def revoke(self, request: HttpRequest, queryset: Any) -> None:
        for membership in queryset.select_related("mailbox"):
            services.revoke_membership(membership, by=request.user)  # type: ignore[arg-type]
        messages.success(request, _("Accès retirés."))

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


@admin.register(AccessEvent)
class AccessEventAdmin(admin.ModelAdmin):
    """The access journal of shared boxes, read-only (it holds no content)."""

    list_display = ["at", "mailbox", "actor_label", "action", "message"]
    list_filter = ["action", "mailbox__kind"]
    search_fields = ["mailbox__address", "actor_label"]
    fields = readonly_fields = ("at", "mailbox", "actor", "actor_label", "action", "message")

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False
