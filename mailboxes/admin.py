from datetime import timedelta
from typing import Any

from django import forms
from django.conf import settings
from django.contrib import admin, messages
from django.core.exceptions import ValidationError
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse
from django.urls import reverse
from django.utils import timezone
from django.utils.html import format_html
from django.utils.translation import gettext, ngettext
from django.utils.translation import gettext_lazy as _

from mailboxes import services, staff
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
from mailboxes.services.deliveries import MAX_AT_ONCE


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
            return services.create_personal_mailbox(
                data["owner"],
                data["domain"],
                address=data.get("address") or None,
                liste_rouge=bool(data.get("liste_rouge")),
                by=by,
            )
        return services.create_mailbox(
            data["kind"],
            data["address"],
            data["domain"],
            owner=data.get("owner"),
            responsible=data.get("responsible"),
            organisation=data.get("organisation"),
            display_name=data.get("display_name", ""),
            # Unticked on an applicative box: the service's default (listed) applies.
            liste_rouge=True if data.get("liste_rouge") else None,
            by=by,
        )


class MailboxChangeForm(forms.ModelForm):
    """Staff edit a box; what they change is written by the mailbox actions (see save_model)."""

    class Meta:
        model = Mailbox
        fields = [
            "owner",
            "organisation",
            "responsible",
            "display_name",
            "liste_rouge",
            "status",
            "quota_bytes",
        ]

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        changed = {name: data[name] for name in self.changed_data if name in data}
        if changed:
            try:
                services.check_mailbox_changes(self.instance, changed)
            except services.MailboxError as exc:
                raise ValidationError(str(exc)) from None
        return data


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
    # Four columns: the list stays whole at 1280 px beside its filters.
    list_display = ["address", "kind", "holder", "status"]
    list_select_related = ["owner", "organisation"]
    list_filter = ["kind", "status", "domain", "liste_rouge"]
    search_fields = ["address", "display_name", "owner__last_name", "owner__username"]
    raw_id_fields = ["owner", "responsible", "organisation"]
    inlines = [FolderInline, MembershipInline, ApiTokenInline]

    actions = ["close", "reopen"]

    @admin.display(description=_("titulaire ou organisation"))
    def holder(self, obj: Mailbox) -> str:
        return str(obj.owner or obj.organisation or "—")

    def get_form(
        self, request: HttpRequest, obj: Any = None, change: bool = False, **kwargs: Any
    ) -> Any:
        kwargs["form"] = MailboxCreationForm if obj is None else MailboxChangeForm
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
        # A new mailbox was created by the service during form validation. A change
        # is never saved bare: each changed field goes to the action that owns it
        # (journal, directory), in the admin's transaction.
        if not change:
            return
        by: Any = request.user
        data, changed = form.cleaned_data, set(form.changed_data)
        details = tuple(name for name in services.MAILBOX_DETAIL_FIELDS if name in changed)
        if details:
            services.update_mailbox(obj, by=by, **{name: data[name] for name in details})
        if "liste_rouge" in changed:
            services.set_liste_rouge(obj, data["liste_rouge"], by=by)
        if "status" in changed:
            if data["status"] == Mailbox.Status.CLOSED:
                services.close_mailbox(obj, by=by)
            else:
                services.reopen_mailbox(obj, by=by)

    @admin.action(description=_("Fermer les boîtes choisies"))
    def close(self, request: HttpRequest, queryset: Any) -> None:
        self._each(request, queryset, services.close_mailbox, _("%(n)d boîte(s) fermée(s)."))

    @admin.action(description=_("Rouvrir les boîtes choisies"))
    def reopen(self, request: HttpRequest, queryset: Any) -> None:
        self._each(request, queryset, services.reopen_mailbox, _("%(n)d boîte(s) rouverte(s)."))

    def _each(self, request: HttpRequest, queryset: Any, action: Any, done_text: Any) -> None:
        done = 0
        for box in queryset:
            try:
                action(box, by=request.user)
                done += 1
            except services.MailboxError as exc:
                self.message_user(request, str(exc), messages.ERROR)
        if done:
            self.message_user(request, done_text % {"n": done}, messages.SUCCESS)

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
    fields = ["recipient", "status", "attempts", "next_attempt_at", "delivered_at", "reason_text"]
    readonly_fields = (
        "recipient",
        "status",
        "attempts",
        "next_attempt_at",
        "delivered_at",
        "reason_text",
    )
    extra = 0
    can_delete = False

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    @admin.display(description=_("motif"))
    def reason_text(self, obj: Delivery) -> str:
        return obj.reason_text


@admin.register(Message)
class MessageAdmin(admin.ModelAdmin):
    """Envelope and delivery status only: staff never see bodies or attachments."""

    # The Message-ID (long, searchable) is on the page of the message, not in the list.
    list_display = ["date", "from_addr", "size", "scan_status", "origin"]
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

    list_display = ["prefix", "mailbox", "scope", "expires_at", "revoked_at"]
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
    list_display = ["mailbox", "user", "role", "expires_at", "revoked_at"]
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


# --------------------------------------------------------------------------- delivery queue


class QueueStatusFilter(admin.SimpleListFilter):
    """Where a waiting delivery stands (the queue holds nothing else)."""

    title = _("statut")
    parameter_name = "status__exact"

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, Any]]:
        return [
            (value, label) for value, label in Delivery.Status.choices if value in staff.WAITING
        ]

    def queryset(self, request: HttpRequest, queryset: QuerySet[Delivery]) -> QuerySet[Delivery]:
        value = self.value()
        return queryset.filter(status=value[:12]) if value else queryset


class RemoteFilter(admin.SimpleListFilter):
    title = _("destinataire chez un autre opérateur")
    parameter_name = "remote__exact"

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, Any]]:
        return [("1", _("Oui")), ("0", _("Non"))]

    def queryset(self, request: HttpRequest, queryset: QuerySet[Delivery]) -> QuerySet[Delivery]:
        value = self.value()
        if value not in ("0", "1"):
            return queryset
        return queryset.filter(remote=value == "1")


class DomainFilter(admin.SimpleListFilter):
    """The recipient's domain (``?domaine=``): the dashboard links each peer here."""

    title = _("domaine du destinataire")
    parameter_name = "domaine"
    MAX_LENGTH = 253

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, str]]:
        return [
            (row.domain, f"{row.domain} ({row.count})")
            for row in staff.deferred_by_domain(limit=15)
        ]

    def queryset(self, request: HttpRequest, queryset: QuerySet[Delivery]) -> QuerySet[Delivery]:
        value = (self.value() or "").strip().lower()
        if not value:
            return queryset
        # Bounded, and compared as a suffix of the address: no pattern of the visitor's.
        return queryset.filter(recipient__iendswith="@" + value[: self.MAX_LENGTH])


@admin.register(Delivery)
class DeliveryAdmin(admin.ModelAdmin):
    """The delivery queue: recipients still waiting (queued, being scanned, deferred).

    Staff try them again now or give them up (the sender gets a delivery status
    notification), through ``mailboxes.services`` (journaled). Nothing is edited by hand.
    """

    list_display = [
        "recipient",
        "domain",
        "status_label",
        "attempts_count",
        "next_attempt",
        "reason_text",
        "message_link",
    ]
    list_filter = [QueueStatusFilter, RemoteFilter, DomainFilter]
    search_fields = ["=recipient"]
    ordering = ["next_attempt_at", "id"]
    list_select_related = ["message"]
    show_full_result_count = False
    list_per_page = 100
    actions = ["retry_now", "abandon"]
    fields = readonly_fields = (
        "message_link",
        "recipient",
        "remote",
        "status_label",
        "attempts_count",
        "next_attempt",
        "reason_text",
        "updated_at",
    )

    def get_queryset(self, request: HttpRequest) -> QuerySet[Delivery]:
        return staff.with_domain(super().get_queryset(request).filter(status__in=staff.WAITING))

    def changelist_view(self, request: HttpRequest, extra_context: Any = None) -> HttpResponse:
        return super().changelist_view(
            request, {"title": gettext("File de distribution"), **(extra_context or {})}
        )

    @admin.display(description=_("domaine"), ordering="domain")
    def domain(self, obj: Delivery) -> str:
        return str(getattr(obj, "domain", ""))

    @admin.display(description=_("statut"), ordering="status")
    def status_label(self, obj: Delivery) -> str:
        return obj.get_status_display()

    @admin.display(description=_("essais"), ordering="attempts")
    def attempts_count(self, obj: Delivery) -> int:
        return obj.attempts

    @admin.display(description=_("prochain essai"), ordering="next_attempt_at")
    def next_attempt(self, obj: Delivery) -> Any:
        return obj.next_attempt_at

    @admin.display(description=_("dernier motif"))
    def reason_text(self, obj: Delivery) -> str:
        return obj.reason_text or "—"

    @admin.display(description=_("message"))
    def message_link(self, obj: Delivery) -> str:
        url = reverse("admin:mailboxes_message_change", args=[obj.message_id])
        return format_html(
            '<a href="{}">{}</a>', url, obj.message.created_at.strftime("%d/%m/%Y %H:%M")
        )

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def get_actions(self, request: HttpRequest) -> Any:
        # Staff act through the two journaled actions only (the site's own
        # delete_selected is off since nobody may delete here).
        found = super().get_actions(request)
        found.pop("delete_selected", None)
        return found

    def _report(self, request: HttpRequest, outcome: services.QueueOutcome, done_text: str) -> None:
        if outcome.done:
            self.message_user(request, done_text % {"n": outcome.done}, messages.SUCCESS)
        if outcome.busy:
            self.message_user(
                request,
                ngettext(
                    "%(n)d distribution est en cours d'envoi ou de traitement : "
                    "elle n'a pas été modifiée, réessayez dans quelques minutes.",
                    "%(n)d distributions sont en cours d'envoi ou de traitement : "
                    "elles n'ont pas été modifiées, réessayez dans quelques minutes.",
                    outcome.busy,
                )
                % {"n": outcome.busy},
                messages.WARNING,
            )
        if outcome.finished:
            self.message_user(
                request,
                ngettext(
                    "%(n)d distribution n'est plus en attente : rien n'a été fait pour elle.",
                    "%(n)d distributions ne sont plus en attente : rien n'a été fait pour elles.",
                    outcome.finished,
                )
                % {"n": outcome.finished},
                messages.WARNING,
            )

    @admin.action(description=_("Réessayer maintenant"))
    def retry_now(self, request: HttpRequest, queryset: QuerySet[Delivery]) -> None:
        ids = list(queryset.values_list("pk", flat=True)[: MAX_AT_ONCE + 1])
        if len(ids) > MAX_AT_ONCE:
            self._too_many(request)
            return
        outcome = services.retry_deliveries(ids, by=request.user)
        self._report(
            request, outcome, gettext("%(n)d distribution(s) relancée(s) : nouvel essai immédiat.")
        )

    @admin.action(description=_("Abandonner (avec avis de non-remise à l'expéditeur)"))
    def abandon(self, request: HttpRequest, queryset: QuerySet[Delivery]) -> None:
        ids = list(queryset.values_list("pk", flat=True)[: MAX_AT_ONCE + 1])
        if len(ids) > MAX_AT_ONCE:
            self._too_many(request)
            return
        outcome = services.abandon_deliveries(ids, by=request.user)
        self._report(
            request,
            outcome,
            gettext(
                "%(n)d distribution(s) abandonnée(s) : l'expéditeur reçoit un avis de non-remise."
            ),
        )

    def _too_many(self, request: HttpRequest) -> None:
        self.message_user(
            request,
            gettext(
                "Trop de distributions choisies (%(max)d au plus à la fois) : rien n'a été fait. "
                "Filtrez la liste (par domaine ou par statut) et recommencez."
            )
            % {"max": MAX_AT_ONCE},
            messages.ERROR,
        )
