"""Short values sealed in a column (a subject, file names, a folder's name): AES-256-GCM.

Message bodies get a data key each, wrapped by the master key (``crypto.seal``): opening
one costs an unwrap. A list page shows 50 subjects, so short values are sealed directly
under a key *derived* from a master key for their column (HKDF, ``derive_key``): opening
one is one AES-GCM decryption of a few dozen bytes, the derived key computed once per
process. Each value has a fresh random nonce: two equal subjects give different bytes.

Format (self-describing, so that the master key may rotate under it):

    version (1 byte) | length of the key id (1 byte) | key id | nonce (12) | ciphertext + tag (16)

The associated data binds the column's label and the key id: a value copied into another
sealed column fails authentication instead of showing there.

A sealed value cannot be compared in SQL. Where a name must stay unique or be looked up
(a folder's name in its mailbox), ``name_key`` gives a keyed digest of its folded form
(HMAC-SHA256 under a key derived for the column and its scope, e.g. one mailbox): equal
names give equal keys within the scope, and a database dump shows no name.
"""

from __future__ import annotations

import functools
import hashlib
import hmac
import os
import unicodedata
from typing import Final

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from mssante.lib.crypto import BlobIntegrityError, KeyRing, UnknownKeyError
from mssante.lib.searchindex import derive_key

__all__ = ["fold_name", "key_id_of", "name_key", "open_value", "seal_value"]

_VERSION: Final = 1
_NONCE: Final = 12
_TAG: Final = 16


@functools.lru_cache(maxsize=256)
def _aead(master: bytes, label: str) -> AESGCM:
    return AESGCM(derive_key(master, f"mssante/field/v1/{label}"))


def _aad(label: str, key_id: str) -> bytes:
    return f"mssante/field/{label}\x00{key_id}".encode()


def seal_value(ring: KeyRing, label: str, value: str) -> bytes:
    """``value`` sealed for the column ``label`` under the ring's current key."""
    key_id = ring.current
    nonce = os.urandom(_NONCE)
    sealed = _aead(ring[key_id], label).encrypt(nonce, value.encode("utf-8"), _aad(label, key_id))
    encoded = key_id.encode("ascii")
    return b"".join((bytes((_VERSION, len(encoded))), encoded, nonce, sealed))


def key_id_of(data: bytes) -> str:
    """The master key id a sealed value was made with (rotation finds the old ones)."""
    if len(data) < 2 or data[0] != _VERSION:
        raise BlobIntegrityError("sealed value has an unknown format")
    return bytes(data[2 : 2 + data[1]]).decode("ascii", "replace")


def open_value(ring: KeyRing, label: str, data: bytes) -> str:
    """The value sealed in ``data`` for the column ``label``; ``BlobIntegrityError`` if altered."""
    data = bytes(data)
    key_id = key_id_of(data)
    start = 2 + data[1]
    if len(data) < start + _NONCE + _TAG:
        raise BlobIntegrityError("sealed value is truncated")
    try:
        master = ring[key_id]
    except KeyError:
        raise UnknownKeyError(f"master key {key_id!r} is not in the key ring") from None
    try:
        plain = _aead(master, label).decrypt(
            data[start : start + _NONCE], data[start + _NONCE :], _aad(label, key_id)
        )
    except InvalidTag:
        raise BlobIntegrityError(
            "sealed value failed authentication: altered, moved or sealed with another key"
        ) from None
    return plain.decode("utf-8")


@functools.lru_cache(maxsize=1024)
def _name_hmac_key(master: bytes, label: str, scope: str) -> bytes:
    return derive_key(master, f"mssante/name/v1/{label}/{scope}")


def fold_name(name: str) -> str:
    """The form two names are compared in: NFKC, case folded, blanks collapsed."""
    return " ".join(unicodedata.normalize("NFKC", name).casefold().split())


def name_key(ring: KeyRing, label: str, scope: str, name: str, key_id: str | None = None) -> str:
    """The keyed digest (hex) of ``name`` for the column ``label`` within ``scope``,
    under the master key ``key_id`` (the current one by default)."""
    key = _name_hmac_key(ring[key_id or ring.current], label, scope)
    return hmac.new(key, fold_name(name).encode("utf-8"), hashlib.sha256).hexdigest()
