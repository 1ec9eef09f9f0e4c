"""Every change staff make in the admin also goes to the audit journal.

Django's admin writes a ``LogEntry`` for each addition, change and deletion
made through any ModelAdmin (ours and third-party ones such as django-otp's).
Listening to that one model covers them all; the journal keeps the model, the
object id and the names of the changed fields, never their values.
"""

from __future__ import annotations

import json
from typing import Any

from django.contrib.admin.models import ADDITION, CHANGE, DELETION, LogEntry
from django.contrib.contenttypes.models import ContentType

from audit import journal

_ACTIONS = {ADDITION: "admin.added", CHANGE: "admin.changed", DELETION: "admin.deleted"}


def _changed_fields(change_message: str) -> list[str]:
    try:
        parts = json.loads(change_message or "[]")
    except ValueError:
        return []
    fields: list[str] = []
    for part in parts if isinstance(parts, list) else []:
        for detail in part.values() if isinstance(part, dict) else []:
            if isinstance(detail, dict):
                fields.extend(str(name) for name in detail.get("fields", []))
    return fields


def record_admin_change(sender: Any, instance: LogEntry, created: bool, **kwargs: Any) -> None:
    """post_save receiver of LogEntry (connected in AuditConfig.ready)."""
    if not created:
        return
    model = (
        ContentType.objects.get_for_id(instance.content_type_id).model_class()
        if instance.content_type_id
        else None
    )
    journal.record(
        _ACTIONS.get(instance.action_flag, "admin.action"),
        actor=instance.user,
        object_type=model._meta.label_lower if model is not None else "",
        object_id=instance.object_id or "",
        fields=_changed_fields(instance.change_message),
    )
