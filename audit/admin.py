"""The journal in the admin: read by staff, changed by nobody."""

from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.http import HttpRequest

from audit.models import AuditCheckpoint, AuditEvent, AuditSeal


class ReadOnlyAdmin(admin.ModelAdmin):
    """Nobody adds, changes or deletes here, superusers included: what it shows is evidence."""

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


@admin.register(AuditEvent)
class AuditEventAdmin(ReadOnlyAdmin):
    list_display = ("id", "at", "action", "actor_label", "object_type", "object_id", "ip")
    list_filter = ("action", "at")
    search_fields = ("=object_id", "actor_label", "=actor__username")
    show_full_result_count = False
    list_per_page = 100
    fields = (
        "id",
        "at",
        "action",
        "actor_id",
        "actor_label",
        "object_type",
        "object_id",
        "ip",
        "data",
        "prev_hash",
        "hash",
        "key_id",
        "xid",
    )
    readonly_fields = fields


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
