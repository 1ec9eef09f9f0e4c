"""Staff views of the charter: abuse reports and sanctions, quarantine review, indicators, inactivity."""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse
from django.template.response import TemplateResponse
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _

from accounts.access import current_user
from audit.admin import ReadOnlyAdmin
from charter import inactivity, indicators, services
from charter.models import (
    AbuseReport,
    InactivityExemption,
    InactivityWarning,
    MonthlyIndicators,
    Sanction,
)
from mailboxes.models import Quarantine
from mailboxes.services import quarantine

# --- Abuse reports ---------------------------------------------------------------------------


class DecisionForm(forms.Form):
    reason = forms.CharField(
        label=_("Motif (communiqué à l'expéditeur sanctionné)"),
        widget=forms.Textarea(attrs={"rows": 4}),
    )


class SanctionInline(admin.TabularInline):
    model = Sanction
    fields = ("decision", "user", "reason", "decided_by", "decided_at")
    readonly_fields = fields
    extra = 0
    can_delete = False

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


def _decision_action(decision: Sanction.Decision) -> Any:
    def action(
        modeladmin: AbuseReportAdmin, request: HttpRequest, queryset: QuerySet[AbuseReport]
    ) -> HttpResponse | None:
        form = DecisionForm(request.POST if "apply" in request.POST else None)
        if not form.is_valid():
            context = {
                **modeladmin.admin_site.each_context(request),
                "title": _("Décision : %(d)s") % {"d": decision.label},
                "form": form,
                "queryset": queryset,
                "action": f"decide_{decision.value}",
                "opts": modeladmin.model._meta,
            }
            return TemplateResponse(request, "admin/charter/decision_form.html", context)
        done = 0
        for report in queryset:
            try:
                services.decide_report(
                    report,
                    decision=decision,
                    reason=form.cleaned_data["reason"],
                    by=current_user(request),
                )
                done += 1
            except services.CharterError as exc:
                modeladmin.message_user(request, f"{report} : {exc}", messages.ERROR)
        if done:
            modeladmin.message_user(
                request,
                gettext("%(n)d signalement(s) traité(s) : %(d)s.")
                % {"n": done, "d": decision.label},
                messages.SUCCESS,
            )
        return None

    action.__name__ = f"decide_{decision.value}"
    return admin.action(description=decision.label)(action)


@admin.register(AbuseReport)
class AbuseReportAdmin(ReadOnlyAdmin):
    """Staff review reports here; every decision goes through charter.services.decide_report."""

    list_display = ("created_at", "sender_addr", "subject", "reporter", "status")
    list_filter = ("status", "created_at")
    search_fields = ("sender_addr", "message_id_header", "=sender__username", "=reporter__username")
    list_select_related = ("sender", "reporter")
    fields = (
        "created_at",
        "status",
        "sender_addr",
        "sender",
        "message_id_header",
        "subject",
        "message_date",
        "reporter",
        "reporter_mailbox",
        "reason",
    )
    readonly_fields = fields
    inlines = [SanctionInline]
    actions = [_decision_action(decision) for decision in Sanction.Decision]


@admin.register(Sanction)
class SanctionAdmin(ReadOnlyAdmin):
    list_display = ("decided_at", "decision", "user", "decided_by", "report")
    list_filter = ("decision", "decided_at")
    search_fields = ("=user__username", "report__sender_addr")
    list_select_related = ("user", "decided_by", "report")
    fields = ("decided_at", "decision", "user", "reason", "decided_by", "report")
    readonly_fields = fields


# --- Quarantine ------------------------------------------------------------------------------


class QuarantineDecisionForm(forms.Form):
    reason = forms.CharField(
        label=_("Motif (conservé dans le journal d'audit)"),
        widget=forms.Textarea(attrs={"rows": 3}),
    )


def _quarantine_action(name: str, label: Any, service: Any, done_text: Any) -> Any:
    def action(
        modeladmin: QuarantineAdmin, request: HttpRequest, queryset: QuerySet[Quarantine]
    ) -> HttpResponse | None:
        form = QuarantineDecisionForm(request.POST if "apply" in request.POST else None)
        if not form.is_valid():
            context = {
                **modeladmin.admin_site.each_context(request),
                "title": label,
                "items_label": _("Messages concernés :"),
                "form": form,
                "queryset": queryset,
                "action": name,
                "opts": modeladmin.model._meta,
            }
            return TemplateResponse(request, "admin/charter/decision_form.html", context)
        done = 0
        for record in queryset:
            try:
                service(record, reason=form.cleaned_data["reason"], by=current_user(request))
                done += 1
            except quarantine.QuarantineError as exc:
                modeladmin.message_user(request, f"{record} : {exc}", messages.ERROR)
        if done:
            modeladmin.message_user(request, done_text % {"n": done}, messages.SUCCESS)
        return None

    action.__name__ = name
    return admin.action(description=label)(action)


@admin.register(Quarantine)
class QuarantineAdmin(ReadOnlyAdmin):
    """Envelopes of held messages, never their content; release or delete with a reason.

    The record belongs to the mailboxes app (its actions write it); the review is the
    charter's.
    """

    # Five columns (the recipients and the size are on the record's page): whole at 1280 px.
    list_display = ("quarantined_at", "from_addr", "subject", "verdict", "status")
    list_filter = ("status", "verdict", "quarantined_at")
    search_fields = ("from_addr", "message_id_header")
    fields = (
        "quarantined_at",
        "status",
        "verdict",
        "signatures",
        "detail",
        "message_id_header",
        "from_addr",
        "recipients",
        "subject",
        "size",
        "message_date",
        "decided_by",
        "decided_at",
        "decision_reason",
    )
    readonly_fields = fields
    list_select_related = ("decided_by",)
    actions = [
        _quarantine_action(
            "release",
            _("Libérer (distribuer malgré le verdict)"),
            quarantine.release_quarantined,
            _("%(n)d message(s) libéré(s) : leur distribution reprend."),
        ),
        _quarantine_action(
            "delete_for_good",
            _("Supprimer définitivement"),
            quarantine.delete_quarantined,
            _("%(n)d message(s) supprimé(s)."),
        ),
    ]

    def get_actions(self, request: HttpRequest) -> Any:
        # Staff act through the two audited actions only (no bulk delete of the records).
        found = super().get_actions(request)
        found.pop("delete_selected", None)
        return found


# --- Indicators ------------------------------------------------------------------------------


@admin.register(MonthlyIndicators)
class MonthlyIndicatorsAdmin(ReadOnlyAdmin):
    """Monthly figures with a chart and a CSV export; the journal itself is not shown here."""

    def changelist_view(self, request: HttpRequest, extra_context: Any = None) -> HttpResponse:
        try:
            count = min(max(int(request.GET.get("mois", "12")), 1), 60)
        except ValueError:
            count = 12
        months = indicators.monthly(count)
        if request.GET.get("format") == "csv":
            response = HttpResponse(
                indicators.to_csv(months), content_type="text/csv; charset=utf-8"
            )
            response["Content-Disposition"] = 'attachment; filename="indicateurs-mensuels.csv"'
            return response
        bars = indicators.chart(months)
        context = {
            **self.admin_site.each_context(request),
            "title": gettext("Indicateurs mensuels"),
            "opts": self.model._meta,
            "months": months,
            "table": indicators.table(months),
            "bars": bars,
            "chart_width": len(bars) * indicators.SLOT + 12,
            "chart_height": indicators.CHART_HEIGHT,
            "bar_width": indicators.BAR_WIDTH,
            "count": count,
            **(extra_context or {}),
        }
        return TemplateResponse(request, "admin/charter/indicators.html", context)


# --- Inactive mailboxes ----------------------------------------------------------------------


class InactivityExemptionForm(forms.ModelForm):
    class Meta:
        model = InactivityExemption
        fields = ("mailbox", "reason")


@admin.register(InactivityExemption)
class InactivityExemptionAdmin(admin.ModelAdmin):
    """Added here through the service (audited); removing one is audited too."""

    form = InactivityExemptionForm
    list_display = ("mailbox", "reason", "granted_by", "granted_at")
    search_fields = ("mailbox__address",)
    raw_id_fields = ("mailbox",)
    list_select_related = ("mailbox", "granted_by")

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> Any:
        return () if obj is None else ("mailbox", "reason", "granted_by", "granted_at")

    def save_model(self, request: HttpRequest, obj: Any, form: Any, change: bool) -> None:
        try:
            created = inactivity.exempt(
                form.cleaned_data["mailbox"],
                reason=form.cleaned_data["reason"],
                by=current_user(request),
            )
        except inactivity.InactivityError as exc:
            # The form's unique check catches a second exemption first; this is the race.
            raise forms.ValidationError(str(exc)) from None
        obj.pk = created.pk

    def delete_model(self, request: HttpRequest, obj: Any) -> None:
        inactivity.remove_exemption(obj, by=current_user(request))

    def delete_queryset(
        self, request: HttpRequest, queryset: QuerySet[InactivityExemption]
    ) -> None:
        for exemption in queryset:
            inactivity.remove_exemption(exemption, by=current_user(request))


@admin.register(InactivityWarning)
class InactivityWarningAdmin(ReadOnlyAdmin):
    list_display = ("mailbox", "warned_at", "inactive_since", "closes_after", "objected_at")
    list_filter = ("warned_at", "objected_at")
    search_fields = ("mailbox__address",)
    list_select_related = ("mailbox",)
    fields = ("mailbox", "warned_at", "inactive_since", "closes_after", "objected_at")
    readonly_fields = fields
