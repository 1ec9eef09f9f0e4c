"""Family links in the admin: staff link a guardian to a minor child, or end the link, with a reason.

Both go through ``patients.family`` (which validates and journals); the admin never saves
a link itself, and a link is never deleted (its history stays).
"""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import ValidationError
from django.http import HttpRequest
from django.utils.translation import gettext_lazy as _

from accounts.models import PatientIdentity, User
from mssante.lib import identifiers as ids
from patients import family
from patients.models_family import GuardianLink


def _identity(raw: str) -> PatientIdentity:
    try:
        matricule = ids.parse_ins(raw).matricule
    except ids.IdentifierError as exc:
        raise ValidationError(str(exc)) from None
    identity = PatientIdentity.objects.select_related("user").filter(ins=matricule).first()
    if identity is None:
        raise ValidationError(_("Aucun patient inscrit sous ce matricule INS."))
    return identity


class GuardianLinkAddForm(forms.ModelForm):
    """Who, for whom, as what, and why (the document seen, the decision)."""

    guardian_ins = forms.CharField(
        label=_("INS du représentant légal"),
        max_length=40,
        help_text=_("Patient inscrit, au compte actif : il se connecte avec son propre compte."),
    )
    child_ins = forms.CharField(
        label=_("INS de l'enfant mineur"),
        max_length=40,
        help_text=_("Patient inscrit (sa boîte existe), sans compte à lui tant qu'il est mineur."),
    )

    class Meta:
        model = GuardianLink
        fields = ["role", "reason"]
        help_texts = {
            "reason": _(
                "Obligatoire : la pièce vue (livret de famille, jugement…) ou la décision."
            ),
        }

    def clean_guardian_ins(self) -> PatientIdentity:
        return _identity(self.cleaned_data["guardian_ins"])

    def clean_child_ins(self) -> PatientIdentity:
        return _identity(self.cleaned_data["child_ins"])

    def clean_reason(self) -> str:
        try:
            return family.normalise_reason(self.cleaned_data.get("reason", ""))
        except family.FamilyError as exc:
            raise ValidationError(str(exc)) from None

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        guardian, child = data.get("guardian_ins"), data.get("child_ins")
        if isinstance(guardian, PatientIdentity) and isinstance(child, PatientIdentity):
            try:
                family.check_link(guardian.user, child)
            except family.FamilyError as exc:
                raise ValidationError(str(exc)) from None
        return data


class GuardianLinkEndForm(forms.ModelForm):
    """An active link: staff may end it, saying why."""

    revoke_reason = forms.CharField(
        label=_("Révoquer le rattachement : motif"),
        required=False,
        max_length=family.REASON_MAX,
        widget=forms.Textarea(attrs={"rows": 3}),
        help_text=_(
            "Rempli, le rattachement prend fin dès l'enregistrement : le représentant légal "
            "n'a plus accès à l'espace de l'enfant, qui reste intact."
        ),
    )

    class Meta:
        model = GuardianLink
        fields: list[str] = []


@admin.register(GuardianLink)
class GuardianLinkAdmin(admin.ModelAdmin):
    list_display = [
        "guardian",
        "child_name",
        "role",
        "created_at",
        "created_by",
        "ended_at",
        "end_cause",
        "activation",
    ]
    list_filter = ["role", "end_cause", "activation"]
    search_fields = ["guardian__username", "guardian__last_name", "child__ins", "child__birth_name"]
    list_select_related = ["guardian", "child", "created_by"]
    readonly_fields = [
        "guardian",
        "child",
        "role",
        "reason",
        "created_by",
        "created_at",
        "ended_at",
        "end_cause",
        "end_reason",
        "ended_by",
        "activation",
    ]

    @admin.display(description=_("enfant"))
    def child_name(self, obj: GuardianLink) -> str:
        return f"{obj.child.first_names} {obj.child.birth_name} ({obj.child.ins})"

    def get_form(
        self, request: HttpRequest, obj: Any = None, change: bool = False, **kwargs: Any
    ) -> Any:
        kwargs["form"] = GuardianLinkAddForm if obj is None else GuardianLinkEndForm
        return super().get_form(request, obj, change=change, **kwargs)

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> Any:
        return self.readonly_fields if obj is not None else []

    def get_fields(self, request: HttpRequest, obj: Any = None) -> Any:
        if obj is None:
            return ["guardian_ins", "child_ins", "role", "reason"]
        fields = list(self.readonly_fields)
        return [*fields, "revoke_reason"] if obj.active else fields

    def changelist_view(self, request: HttpRequest, extra_context: Any = None) -> Any:
        # Children come of age with no personal address: their activation is staff's to do.
        waiting = {
            link.child.ins
            for link in GuardianLink.objects.select_related("child__user").filter(
                activation=GuardianLink.Activation.STAFF
            )
            if not link.child.user.has_usable_password()
        }
        if waiting and request.method == "GET":
            messages.warning(
                request,
                _(
                    "Devenus majeurs sans adresse e-mail personnelle, à activer par l'équipe "
                    "(dans « Comptes » : leur adresse, puis le lien d'activation) : %(ins)s"
                )
                % {"ins": ", ".join(sorted(waiting))},
            )
        return super().changelist_view(request, extra_context)

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def save_model(self, request: HttpRequest, obj: Any, form: Any, change: bool) -> None:
        by = request.user if isinstance(request.user, User) else None
        data = form.cleaned_data
        if not change:
            link = family.provision_link(
                guardian=data["guardian_ins"].user,
                child=data["child_ins"],
                role=data["role"],
                reason=data["reason"],
                by=by,
            )
            obj.pk, obj.guardian, obj.child = link.pk, link.guardian, link.child
            return
        reason = data.get("revoke_reason", "").strip()
        if reason and obj.active:
            family.revoke_link(obj, by=by, reason=reason)
            messages.info(
                request,
                _("Rattachement révoqué : le représentant légal n'a plus accès à cet espace."),
            )
