"""Staff tools for accounts: search by RPPS, Adeli, INS or name; status and identity actions."""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import admin, messages
from django.contrib.auth.admin import UserAdmin
from django.db.models import QuerySet
from django.http import Http404, HttpRequest, HttpResponse
from django.template.response import TemplateResponse
from django.utils.formats import date_format
from django.utils.html import format_html_join
from django.utils.safestring import SafeString
from django.utils.timezone import localtime
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from accounts import services
from accounts.access import current_user
from accounts.models import (
    ActivationLink,
    FormerAdeli,
    PatientIdentity,
    ProfessionalIdentity,
    User,
)


class ReasonForm(forms.Form):
    reason = forms.CharField(label=gettext_lazy("Motif"), widget=forms.Textarea(attrs={"rows": 3}))


class NewEmailForm(forms.Form):
    new_email = forms.EmailField(
        label=gettext_lazy("Nouvelle adresse e-mail personnelle"),
        help_text=gettext_lazy(
            "Un lien de confirmation y est envoyé ; l'adresse change quand il est suivi, "
            "et l'ancienne adresse est prévenue."
        ),
    )


class RppsForm(forms.Form):
    rpps = forms.CharField(label=gettext_lazy("Nouveau numéro RPPS (11 chiffres)"), max_length=20)


def _intermediate(
    modeladmin: admin.ModelAdmin[Any],
    request: HttpRequest,
    queryset: QuerySet[Any],
    *,
    form: forms.Form,
    title: str,
    action: str,
) -> TemplateResponse:
    context = {
        **modeladmin.admin_site.each_context(request),
        "title": title,
        "form": form,
        "queryset": queryset,
        "action": action,
        "opts": modeladmin.model._meta,
    }
    return TemplateResponse(request, "admin/accounts/action_form.html", context)


def _with_reason(
    modeladmin: Any,
    request: HttpRequest,
    queryset: QuerySet[User],
    action: str,
    title: str,
    apply: Any,
) -> HttpResponse | None:
    form = ReasonForm(request.POST if "apply" in request.POST else None)
    if not form.is_valid():
        return _intermediate(modeladmin, request, queryset, form=form, title=title, action=action)
    done = 0
    for user in queryset:
        try:
            apply(user, reason=form.cleaned_data["reason"], by=current_user(request))
            done += 1
        except services.AccountError as exc:
            modeladmin.message_user(request, f"{user} : {exc}", messages.ERROR)
    modeladmin.message_user(
        request, _("%(n)d compte(s) mis à jour.") % {"n": done}, messages.SUCCESS
    )
    return None


def _when(moment: Any) -> str:
    return date_format(localtime(moment), "j F Y H:i") if moment else _("jamais")


class ProfessionalInline(admin.StackedInline):
    model = ProfessionalIdentity
    fk_name = "user"
    extra = 0
    can_delete = False
    readonly_fields = [
        "eligibility_override",
        "eligibility_override_reason",
        "id_type",
        "id_number",
        "national_id",
        "eligibility_override_by",
        "eligibility_override_at",
    ]


class PatientInline(admin.StackedInline):
    model = PatientIdentity
    extra = 0
    can_delete = False
    readonly_fields = ["ins"]


@admin.register(User)
class PortalUserAdmin(UserAdmin):
    list_display = ["username", "last_name", "first_name", "kind", "status", "last_login"]
    list_filter = ["kind", "status", "is_staff"]
    search_fields = [
        "username",
        "first_name",
        "last_name",
        "email",
        "professional__id_number",
        "professional__national_id",
        "professional__former_adeli__adeli",
        "patient__ins",
        "patient__birth_name",
    ]
    readonly_fields = [
        "status",
        "status_reason",
        "status_changed_at",
        "status_changed_by",
        "last_login",
        "date_joined",
        "second_factor",
    ]
    fieldsets = [
        (None, {"fields": ["username", "kind", "first_name", "last_name", "email"]}),
        (
            gettext_lazy("Statut"),
            {"fields": ["status", "status_reason", "status_changed_at", "status_changed_by"]},
        ),
        (gettext_lazy("Second facteur"), {"fields": ["second_factor"]}),
        (
            gettext_lazy("Droits"),
            {"fields": ["is_active", "is_staff", "is_superuser", "groups", "user_permissions"]},
        ),
        (gettext_lazy("Dates"), {"fields": ["last_login", "date_joined"]}),
    ]
    add_fieldsets = [
        (None, {"classes": ["wide"], "fields": ["username", "kind", "password1", "password2"]}),
    ]
    inlines = [ProfessionalInline, PatientInline]
    actions = [
        "suspend",
        "reactivate",
        "close",
        "switch_adeli_to_rpps",
        "issue_activation_link",
        "override_eligibility",
        "reset_second_factor",
        "change_email",
    ]

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> Any:
        fields = list(super().get_readonly_fields(request, obj))
        if obj is not None and (obj.email or services.has_second_factor(obj)):
            # The personal address receives login codes and every notice: once set, it
            # changes only through a link confirmed at the new address (action below).
            fields.append("email")
        return fields

    def user_change_password(self, request: HttpRequest, id: str, form_url: str = "") -> Any:
        # Staff never choose or learn a user's password: they issue an activation link.
        raise Http404

    @admin.display(description=gettext_lazy("Second facteur"))
    def second_factor(self, obj: User) -> SafeString | str:
        """Which devices, enrolled when, last used when: never a secret, never a code."""
        if obj.pk is None:
            return "—"
        rows = []
        for model in services.DEVICE_MODELS:
            for device in model.objects.filter(user=obj).order_by("pk"):
                rows.append(
                    (
                        device.name,
                        _("enrôlé le %(date)s") % {"date": _when(device.created_at)},
                        _("dernière utilisation : %(date)s") % {"date": _when(device.last_used_at)},
                    )
                )
        if not rows:
            return _("Aucun : l'enrôlement sera demandé à la prochaine connexion.")
        return format_html_join("", "<p>{} — {}, {}</p>", rows)

    @admin.action(description=gettext_lazy("Réinitialiser le second facteur (motif obligatoire)"))
    def reset_second_factor(
        self, request: HttpRequest, queryset: QuerySet[User]
    ) -> HttpResponse | None:
        def apply(user: User, *, reason: str, by: User) -> None:
            services.reset_second_factor(user, reason=reason, by=by, request=request)

        return _with_reason(
            self,
            request,
            queryset,
            "reset_second_factor",
            _("Réinitialiser le second facteur"),
            apply,
        )

    @admin.action(description=gettext_lazy("Changer l'adresse e-mail personnelle (par lien)"))
    def change_email(self, request: HttpRequest, queryset: QuerySet[User]) -> HttpResponse | None:
        if queryset.count() != 1:
            self.message_user(request, _("Choisissez un seul compte."), messages.ERROR)
            return None
        user = queryset.get()
        form = NewEmailForm(request.POST if "apply" in request.POST else None)
        if form.is_valid():
            try:
                services.request_email_change(
                    user, form.cleaned_data["new_email"], by=current_user(request), request=request
                )
            except services.AccountError as exc:
                form.add_error("new_email", str(exc))
            else:
                self.message_user(
                    request,
                    _(
                        "Lien de confirmation envoyé à la nouvelle adresse ; l'adresse changera "
                        "quand il sera suivi. L'ancienne adresse est prévenue."
                    ),
                    messages.SUCCESS,
                )
                return None
        return _intermediate(
            self,
            request,
            queryset,
            form=form,
            title=_("Changer l'adresse e-mail personnelle"),
            action="change_email",
        )

    @admin.action(description=gettext_lazy("Suspendre (motif obligatoire)"))
    def suspend(self, request: HttpRequest, queryset: QuerySet[User]) -> HttpResponse | None:
        return _with_reason(
            self, request, queryset, "suspend", _("Suspendre des comptes"), services.suspend_account
        )

    @admin.action(description=gettext_lazy("Clôturer (motif obligatoire)"))
    def close(self, request: HttpRequest, queryset: QuerySet[User]) -> HttpResponse | None:
        return _with_reason(
            self, request, queryset, "close", _("Clôturer des comptes"), services.close_account
        )

    @admin.action(
        description=gettext_lazy("Accorder une dérogation d'éligibilité (motif obligatoire)")
    )
    def override_eligibility(
        self, request: HttpRequest, queryset: QuerySet[User]
    ) -> HttpResponse | None:
        def apply(user: User, *, reason: str, by: User) -> None:
            identity = ProfessionalIdentity.objects.filter(user=user).first()
            if identity is None:
                raise services.AccountError(_("Ce compte n'est pas celui d'un professionnel."))
            services.override_eligibility(identity, reason=reason, by=by)

        return _with_reason(
            self, request, queryset, "override_eligibility", _("Dérogation d'éligibilité"), apply
        )

    @admin.action(description=gettext_lazy("Réactiver"))
    def reactivate(self, request: HttpRequest, queryset: QuerySet[User]) -> None:
        for user in queryset:
            try:
                services.reactivate_account(user, by=current_user(request))
            except services.AccountError as exc:
                self.message_user(request, f"{user} : {exc}", messages.ERROR)

    @admin.action(description=gettext_lazy("Passer d'Adeli à RPPS"))
    def switch_adeli_to_rpps(
        self, request: HttpRequest, queryset: QuerySet[User]
    ) -> HttpResponse | None:
        if queryset.count() != 1:
            self.message_user(request, _("Choisissez un seul compte."), messages.ERROR)
            return None
        user = queryset.get()
        form = RppsForm(request.POST if "apply" in request.POST else None)
        if form.is_valid():
            try:
                services.switch_to_rpps(
                    user.professional, form.cleaned_data["rpps"], by=current_user(request)
                )
            except (services.AccountError, ProfessionalIdentity.DoesNotExist) as exc:
                form.add_error(
                    "rpps", str(exc) or _("Ce compte n'est pas celui d'un professionnel.")
                )
            else:
                self.message_user(
                    request,
                    _(
                        "Numéro RPPS enregistré ; l'ancien numéro Adeli reste accepté pendant la transition."
                    ),
                    messages.SUCCESS,
                )
                return None
        return _intermediate(
            self,
            request,
            queryset,
            form=form,
            title=_("Passer d'Adeli à RPPS"),
            action="switch_adeli_to_rpps",
        )

    @admin.action(description=gettext_lazy("Émettre un lien d'activation"))
    def issue_activation_link(self, request: HttpRequest, queryset: QuerySet[User]) -> None:
        for user in queryset:
            try:
                if user.email:
                    # A link that sets the password and the second factor is a secret:
                    # it goes to the holder's confirmed address, not to staff's screen.
                    services.email_activation_link(user, by=current_user(request))
                    self.message_user(
                        request,
                        _("Lien envoyé à l'adresse e-mail personnelle de %(user)s.")
                        % {"user": user},
                        messages.SUCCESS,
                    )
                    continue
                path = services.issue_activation_link(user, by=current_user(request))
            except services.AccountError as exc:
                self.message_user(request, f"{user} : {exc}", messages.ERROR)
                continue
            self.message_user(
                request,
                _(
                    "Lien pour %(user)s, qui n'a pas d'adresse e-mail personnelle (valable une "
                    "fois, transmettez-le par un canal sûr) : %(url)s"
                )
                % {"user": user, "url": request.build_absolute_uri(path)},
                messages.WARNING,
            )


@admin.register(FormerAdeli)
class FormerAdeliAdmin(admin.ModelAdmin):
    list_display = ["adeli", "identity", "switched_at", "accepted_until"]
    search_fields = ["adeli", "identity__id_number"]


@admin.register(ActivationLink)
class ActivationLinkAdmin(admin.ModelAdmin):
    list_display = ["user", "purpose", "created_at", "expires_at", "used_at", "created_by"]
    readonly_fields = ["user", "purpose", "created_at", "expires_at", "used_at", "created_by"]
    exclude = ["token_hash"]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False
