"""Second-factor secrets sealed with the master keys (``MSSANTE_MASTER_KEYS``).

Each device holds one secret (a TOTP key, or the HMAC key its backup or e-mailed
codes are hashed with) sealed like a message body: a fresh data key encrypts it
(AES-256-GCM) and the current master key wraps that data key. The associated data
binds the secret to its kind of device and to its user, so a sealed secret copied
onto another account's row fails authentication instead of working there.

Rotating a master key rewraps ``wrapped_key`` only (``rotate_master_key``), so the
hashes of backup codes, made with the unwrapped HMAC key, stay valid.
"""

from __future__ import annotations

import functools
import hashlib
import hmac

from django.conf import settings

from mssante.lib import crypto


@functools.lru_cache(maxsize=4)
def _ring(spec: str) -> crypto.KeyRing:
    return crypto.KeyRing.from_spec(spec)


def keyring() -> crypto.KeyRing:
    """The master keys from settings (read at call time so overrides and rotation apply)."""
    return _ring(settings.MSSANTE_MASTER_KEYS)


def _aad(purpose: str, user_id: int) -> bytes:
    return f"accounts/{purpose}/{user_id}".encode()


def seal(secret: bytes, *, purpose: str, user_id: int) -> crypto.SealedBlob:
    """Seal a device secret under the current master key."""
    return crypto.seal(keyring(), secret, _aad(purpose, user_id))


def unseal(key_id: str, wrapped_key: bytes, sealed: bytes, *, purpose: str, user_id: int) -> bytes:
    """Open a device secret; ``crypto.BlobIntegrityError`` if it was altered or moved."""
    return crypto.open_blob(
        keyring(), key_id, bytes(wrapped_key), bytes(sealed), _aad(purpose, user_id)
    )


def mac(key: bytes, value: str) -> str:
    """HMAC-SHA256 of a code under a device's key (hex): what is stored instead of the code."""
    return hmac.new(key, value.encode(), hashlib.sha256).hexdigest()
