"""The journal in the admin: read by staff, changed by nobody."""

from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.db.models import QuerySet
from django.http import HttpRequest
from django.utils.html import format_html, format_html_join
from django.utils.safestring import SafeString
from django.utils.translation import gettext_lazy as _

from audit import labels
from audit.models import AuditCheckpoint, AuditEvent, AuditSeal


class ReadOnlyAdmin(admin.ModelAdmin):
    """Nobody adds, changes or deletes here, superusers included: what it shows is evidence."""

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


class ActionFilter(admin.SimpleListFilter):
    """The actions by their label; a fixed list (no DISTINCT over the whole journal)."""

    title = _("action")
    parameter_name = "action"

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, str]]:
        return sorted(
            ((code, str(label)) for code, label in labels.ACTION_LABELS.items()),
            key=lambda item: item[1],
        )

    def queryset(
        self, request: HttpRequest, queryset: QuerySet[AuditEvent]
    ) -> QuerySet[AuditEvent]:
        value = self.value()
        return queryset.filter(action=value[:64]) if value else queryset


@admin.register(AuditEvent)
class AuditEventAdmin(ReadOnlyAdmin):
    list_display = ("at", "action_label", "actor_label", "object_label", "ip")
    list_filter = (ActionFilter, "at")
    search_fields = ("=object_id", "actor_label", "=actor__username")
    show_full_result_count = False
    list_per_page = 100
    fields = (
        "id",
        "at",
        "action_label",
        "action",
        "actor_id",
        "actor_label",
        "object_type",
        "object_id",
        "ip",
        "details",
        "prev_hash",
        "hash",
        "key_id",
        "xid",
    )
    readonly_fields = fields

    @admin.display(description=_("action"), ordering="action")
    def action_label(self, event: AuditEvent) -> str:
        return labels.action_label(event.action)

    @admin.display(description=_("objet"))
    def object_label(self, event: AuditEvent) -> str:
        if not event.object_type:
            return event.object_id or "—"
        return f"{event.object_type} {event.object_id}".strip()

    @admin.display(description=_("détails"))
    def details(self, event: AuditEvent) -> SafeString:
        lines = list(labels.data_lines(event.data))
        if not lines:
            return format_html("{}", "—")
        return format_html(
            '<ul class="staff-data">{}</ul>',
            format_html_join(
                "",
                '<li><span class="staff-data__key">{}</span> : {}</li>',
                ((key or "—", value) for key, value in lines),
            ),
        )


@admin.register(AuditCheckpoint)
class AuditCheckpointAdmin(ReadOnlyAdmin):
    list_display = ("created_at", "kind", "last_event_id", "purged_count", "cutoff")
    fields = (
        "kind",
        "created_at",
        "last_event_id",
        "last_hash",
        "purged_count",
        "cutoff",
        "key_id",
        "signature",
    )
    readonly_fields = fields


@admin.register(AuditSeal)
class AuditSealAdmin(ReadOnlyAdmin):
    list_display = ("id", "created_at", "count", "total", "newest_at", "lo", "hi")
    show_full_result_count = False
    list_per_page = 100
    fields = (
        "id",
        "created_at",
        "lo",
        "hi",
        "count",
        "total",
        "newest_at",
        "digest",
        "prev",
        "key_id",
        "mac",
    )
    readonly_fields = fields
