"""One journal row: what may go in it, and its keyed MAC.

A row written since issue 13 stands alone: ``hash`` is the HMAC of its own content and
key id (``prev_hash`` is empty), computed here in Python before the one INSERT; no
other row is read. Seals (audit.seals) then bind the rows together. Rows written
before keep their chain (``prev_hash`` = the previous row's hash), verified as they
were (audit.verification).
"""

from __future__ import annotations

import functools
import hashlib
import ipaddress
import json
from collections.abc import Iterable
from datetime import datetime
from typing import Any

from django.conf import settings
from django.db import models
from django.http import HttpRequest
from django.utils import timezone

from audit.keys import canonical_json, keyring, sign
from audit.models import AuditEvent
from mssante.lib import untrusted

# Names a caller must never put in ``data``: the journal holds ids and counts, never a
# secret nor a message's content (its rows are kept for a year and shown to staff).
FORBIDDEN_KEYS = frozenset(
    {
        "password",
        "passwd",
        "secret",
        "token",
        "otp",
        "api_key",
        "private_key",
        "subject",
        "body",
        "html",
        "text",
        "content",
        "filename",
    }
)
# A longer string in ``data`` is cut: the journal's rows stay small whatever a peer sent.
MAX_DATA_STRING = 1000

# What a batch entry names: a model instance, an (object type, object id) pair, or nothing.
Target = models.Model | tuple[str, str | int] | None


def _clean(value: Any) -> Any:
    """``value`` as the database will give it back (JSON), safe to store whatever its origin."""
    if isinstance(value, str):
        # NUL is refused by PostgreSQL's JSON, lone surrogates by UTF-8.
        text = value[:MAX_DATA_STRING].encode("utf-8", "replace").decode("utf-8")
        return text.replace("\x00", "\ufffd")
    if isinstance(value, dict):
        return {str(_clean(key)): _clean(item) for key, item in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [_clean(item) for item in value]
    if value is None or isinstance(value, bool | int | float):
        return value
    return _clean(str(value))


def clean_data(data: dict[str, Any]) -> dict[str, Any]:
    forbidden = {key for key in data if key.lower() in FORBIDDEN_KEYS}
    if forbidden:
        raise ValueError(
            f"audit.record : « {', '.join(sorted(forbidden))} » n'a pas sa place au journal"
        )
    cleaned: dict[str, Any] = json.loads(json.dumps(_clean(data), allow_nan=False))
    return cleaned


def _clip(value: Any, length: int) -> str:
    text: str = _clean(str(value))
    return text[:length]


@functools.lru_cache(maxsize=4096)
def canonical_ip(ip: str | None) -> str | None:
    if not ip:
        return None
    try:
        address = ipaddress.ip_address(ip)
    except ValueError:
        return ip
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped:
        return str(address.ipv4_mapped)
    return str(address)


def content(
    at: datetime,
    actor_id: Any,
    actor_label: str,
    action: str,
    object_type: str,
    object_id: str,
    ip: str | None,
    data: Any,
) -> list[Any]:
    return [at.isoformat(), actor_id, actor_label, action, object_type, object_id, ip, data]


def event_content(event: AuditEvent) -> list[Any]:
    return content(
        event.at,
        event.actor_id,
        event.actor_label,
        event.action,
        event.object_type,
        event.object_id,
        event.ip,
        event.data,
    )


def row_mac(key: bytes, key_id: str, prev_hash: str, row: list[Any]) -> str:
    """The row's HMAC: ``prev_hash`` is empty for a row of today, the previous row's hash
    for a row of the old chain."""
    row = list(row)
    # The database may write an address differently (PostgreSQL's inet): sign its value.
    row[6] = canonical_ip(row[6])
    return sign(key, "event", [prev_hash, key_id, *row])


def unkeyed_digest(prev_hash: str, row: list[Any]) -> str:
    """Rows written before AUDIT_KEYS: plain SHA-256, which anyone can recompute. They
    are accepted only up to the signed seal of migration charter/0008 (see verification)."""
    return hashlib.sha256(canonical_json([prev_hash, *row]).encode()).hexdigest()


def client_ip(request: HttpRequest | None) -> str | None:
    """The client's address as our own proxies saw it (TRUSTED_PROXY_HOPS), or None."""
    if request is None:
        return None
    # None for what is not an address (a misconfigured proxy): the column would refuse it.
    return untrusted.client_address(
        str(request.META.get("REMOTE_ADDR") or ""),
        str(request.META.get("HTTP_X_FORWARDED_FOR") or ""),
        int(getattr(settings, "TRUSTED_PROXY_HOPS", 0)),
    )


def build(
    entries: Iterable[tuple[str, Target, dict[str, Any]]],
    *,
    actor: Any = None,
    request: HttpRequest | None = None,
) -> list[AuditEvent]:
    """Unsaved events, each signed on its own: (action, target, data) for each entry."""
    key_id, keys = keyring()
    key = keys[key_id]
    actor_value = actor if getattr(actor, "pk", None) else None
    label = _clip(actor, 200) if actor is not None else ""
    ip = client_ip(request)
    at = timezone.now()
    events = []
    for action, target, data in entries:
        if isinstance(target, models.Model):
            object_type, object_id = target._meta.label_lower, target.pk
        elif target is not None:
            object_type, object_id = target
        else:
            object_type, object_id = "", ""
        event = AuditEvent(
            at=at,
            actor=actor_value,
            actor_label=label,
            action=_clip(action, 64),
            object_type=_clip(object_type, 64),
            object_id=_clip(object_id, 64),
            ip=ip,
            data=clean_data(data),
            prev_hash="",
            key_id=key_id,
        )
        event.hash = row_mac(key, key_id, "", event_content(event))
        events.append(event)
    return events
