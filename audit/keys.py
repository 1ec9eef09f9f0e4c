"""The journal's keys (AUDIT_KEYS, kept outside the database) and its keyed MACs."""

from __future__ import annotations

import base64
import functools
import hashlib
import hmac
import json
from typing import Any

from django.conf import settings


@functools.lru_cache(maxsize=8)
def _parse_keys(value: str) -> tuple[str, dict[str, bytes]]:
    keys: dict[str, bytes] = {}
    for part in value.split(","):
        key_id, _, b64 = part.strip().partition(":")
        keys[key_id] = base64.b64decode(b64)
    return next(iter(keys)), keys


def keyring() -> tuple[str, dict[str, bytes]]:
    """(current key id, every key by id) from AUDIT_KEYS."""
    return _parse_keys(settings.AUDIT_KEYS)


@functools.lru_cache(maxsize=64)
def subkey(key: bytes, purpose: str) -> bytes:
    """One key per use, so that a row's MAC can never pass for a seal's, an anchor's or a
    checkpoint's (purposes: event, seal, anchor, checkpoint)."""
    return hmac.new(key, f"mssante.audit.{purpose}".encode(), hashlib.sha256).digest()


def canonical_json(payload: Any) -> str:
    return json.dumps(payload, sort_keys=True, ensure_ascii=False, separators=(",", ":"))


def sign(key: bytes, purpose: str, payload: Any) -> str:
    return hmac.digest(subkey(key, purpose), canonical_json(payload).encode(), "sha256").hex()
