from typing import Any

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import ValidationError
from django.db.models import QuerySet
from django.http import HttpRequest
from django.utils.translation import gettext_lazy as _

from accounts.models import PatientIdentity, User
from mailboxes.models import Mailbox
from mssante.lib import identifiers as ids
from patients import services
from patients.models import ConversationClosure, NotificationPreference, Patient


class PatientProvisionForm(forms.ModelForm):
    # Longer than the 15 characters stored: staff paste INS with spaces.
    ins = forms.CharField(label=_("matricule INS"), max_length=40)
    email = forms.EmailField(
        label=_("adresse e-mail personnelle"),
        required=False,
        help_text=_("Le lien d'activation y est envoyé ; puis les avis de nouveau message."),
    )

    class Meta:
        model = Patient
        fields = [
            "ins",
            "oid",
            "birth_name",
            "first_names",
            "used_name",
            "birth_date",
            "sex",
            "birth_place",
            "qualified",
        ]

    def clean_ins(self) -> str:
        try:
            matricule = ids.parse_ins(self.cleaned_data["ins"]).matricule
        except ids.IdentifierError as exc:
            raise ValidationError(str(exc)) from None
        if User.objects.filter(username=matricule).exists():
            raise ValidationError(_("Un compte patient existe déjà pour ce matricule INS."))
        return matricule


@admin.register(Patient)
class PatientAdmin(admin.ModelAdmin):
    """Provision a patient: account, box ``<INS>@<PATIENT_DOMAIN>``, activation link by e-mail."""

    list_display = ["ins", "birth_name", "first_names", "birth_date", "qualified", "address"]
    search_fields = ["ins", "birth_name", "first_names", "user__email"]
    actions = ["send_activation"]

    def get_form(
        self, request: HttpRequest, obj: Any = None, change: bool = False, **kwargs: Any
    ) -> Any:
        if obj is None:
            kwargs["form"] = PatientProvisionForm
        return super().get_form(request, obj, change=change, **kwargs)

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> Any:
        return ["ins", "user"] if obj is not None else []

    @admin.display(description=_("boîte"))
    def address(self, obj: PatientIdentity) -> str:
        box = Mailbox.objects.filter(owner_id=obj.user_id, kind=Mailbox.Kind.PATIENT).first()
        return box.address if box else "—"

    def save_model(self, request: HttpRequest, obj: Any, form: Any, change: bool) -> None:
        if change:
            super().save_model(request, obj, form, change)
            return
        data = form.cleaned_data
        # The form checked the INS; what provision_patient could still refuse is a bug.
        done = services.provision_patient(
            ins=data["ins"],
            oid=data["oid"],
            birth_name=data["birth_name"],
            first_names=data["first_names"],
            birth_date=data["birth_date"],
            sex=data["sex"],
            birth_place=data.get("birth_place", ""),
            email=data.get("email", ""),
            qualified=data.get("qualified", False),
            by=request.user if request.user.is_authenticated else None,
        )
        obj.pk = done.user.patient.pk
        obj.user = done.user
        if done.activation_sent:
            messages.info(request, _("Lien d'activation envoyé à l'adresse personnelle."))

    @admin.action(description=_("Envoyer un nouveau lien d'activation"))
    def send_activation(self, request: HttpRequest, queryset: QuerySet[Patient]) -> None:
        sent = 0
        for identity in queryset.select_related("user"):
            try:
                services.send_activation_link(
                    identity.user,
                    by=request.user if request.user.is_authenticated else None,
                )
            except (services.PatientError, Exception) as exc:
                messages.error(request, f"{identity.ins} : {exc}")
            else:
                sent += 1
        if sent:
            messages.success(request, _("%(n)d lien(s) envoyé(s).") % {"n": sent})


@admin.register(NotificationPreference)
class NotificationPreferenceAdmin(admin.ModelAdmin):
    list_display = ["user", "frequency", "last_notified_at"]
    list_filter = ["frequency"]
    search_fields = ["user__username"]
    readonly_fields = ["last_notified_at"]


@admin.register(ConversationClosure)
class ConversationClosureAdmin(admin.ModelAdmin):
    list_display = ["mailbox", "closed_from", "closed_by", "at"]
    search_fields = ["mailbox__address", "thread_key"]
    readonly_fields = ["thread_key", "mailbox", "closed_by", "closed_from", "at"]

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        # Closures are written by the professional's action, never by hand.
        return False


from patients import admin_family  # noqa: E402,F401  (family links, issue 17)
