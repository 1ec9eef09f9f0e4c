"""Envelope encryption of message blobs (AES-256-GCM).

Each blob gets its own random data key; only that 32-byte key is encrypted
("wrapped") under a master key. Rotating a master key therefore rewrites a few
dozen bytes per message, never the bodies.

Formats (both self-describing so that a future version can coexist):

- ciphertext:  version (1 byte) | nonce (12 bytes) | AES-GCM(data key, body) + tag (16 bytes)
- wrapped key: version (1 byte) | nonce (12 bytes) | AES-GCM(master key, data key) + tag

The wrap uses AES-GCM rather than AES key wrap (RFC 3394): one primitive and one
format for both layers, a 128-bit tag, and associated data that binds the key id
and the layer, so a wrapped key can never be replayed as a body or relabelled.
The price is the random-nonce limit of about 2**32 wraps per master key, far
beyond what an operator stores between two rotations.
"""

from __future__ import annotations

import base64
import binascii
import os
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Final

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

__all__ = [
    "KEY_SIZE",
    "BlobIntegrityError",
    "KeyRing",
    "SealedBlob",
    "UnknownKeyError",
    "generate_key",
    "open_blob",
    "rewrap",
    "seal",
]

KEY_SIZE: Final = 32
_NONCE_SIZE: Final = 12
_TAG_SIZE: Final = 16
_VERSION_1: Final = 1
_HEADER_SIZE: Final = 1 + _NONCE_SIZE
_KEY_ID_RE: Final = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")
# Distinct associated-data prefixes keep the two layers apart even though they
# share a format: a body can never be accepted as a wrapped key or vice versa.
_BODY_CONTEXT: Final = b"mssante/blob\x00"
_KEY_CONTEXT: Final = b"mssante/data-key\x00"


class BlobIntegrityError(Exception):
    """A blob or wrapped key failed authentication, or is malformed."""


class UnknownKeyError(BlobIntegrityError):
    """The blob names a master key id that the key ring does not hold."""


@dataclass(frozen=True, slots=True)
class SealedBlob:
    """What to store for one blob: the master key id, the wrapped data key and the ciphertext."""

    key_id: str
    wrapped_key: bytes
    ciphertext: bytes

    def __repr__(self) -> str:
        return (
            f"SealedBlob(key_id={self.key_id!r}, wrapped_key=<{len(self.wrapped_key)} bytes>, "
            f"ciphertext=<{len(self.ciphertext)} bytes>)"
        )


def generate_key() -> bytes:
    """Return a fresh random 32-byte master key."""
    return os.urandom(KEY_SIZE)


class KeyRing(Mapping[str, bytes]):
    """Master keys by id; new blobs are sealed with ``current``, old ones opened with any."""

    __slots__ = ("_keys", "current")

    def __init__(self, keys: Mapping[str, bytes], current: str) -> None:
        checked: dict[str, bytes] = {}
        for key_id, key in keys.items():
            if not isinstance(key_id, str) or not _KEY_ID_RE.fullmatch(key_id):
                raise ValueError(
                    f"invalid master key id {key_id!r}: use 1 to 64 letters, digits, '.', '_' "
                    "or '-', starting with a letter or digit"
                )
            if len(key) != KEY_SIZE:
                raise ValueError(
                    f"master key {key_id!r} is {len(key)} bytes long, expected {KEY_SIZE}"
                )
            checked[key_id] = bytes(key)
        if current not in checked:
            raise ValueError(f"current master key id {current!r} is not in the key ring")
        self._keys: Mapping[str, bytes] = MappingProxyType(checked)
        self.current: str = current

    @classmethod
    def from_spec(cls, spec: str) -> KeyRing:
        """Parse "id1:base64key,id2:base64key" (the first entry is the current key)."""
        # Error messages name the entry by position and id but never echo key
        # material: they end up in start-up logs.
        keys: dict[str, bytes] = {}
        first: str | None = None
        entries = spec.split(",")
        if not spec.strip():
            raise ValueError("master key spec is empty: expected 'id:base64key[,id:base64key…]'")
        for position, raw_entry in enumerate(entries, start=1):
            entry = raw_entry.strip()
            where = f"master key spec entry #{position}"
            if not entry:
                raise ValueError(f"{where} is empty (stray comma?)")
            key_id, sep, encoded = entry.partition(":")
            key_id = key_id.strip()
            if not sep or not key_id:
                raise ValueError(f"{where} is not of the form 'id:base64key'")
            if not _KEY_ID_RE.fullmatch(key_id):
                raise ValueError(
                    f"{where}: key id {key_id!r} must be 1 to 64 letters, digits, '.', '_' or '-'"
                )
            if key_id in keys:
                raise ValueError(f"{where}: key id {key_id!r} appears twice")
            key = _decode_base64(encoded.strip())
            if key is None:
                raise ValueError(f"{where} ({key_id!r}): the key is not valid base64")
            if len(key) != KEY_SIZE:
                raise ValueError(
                    f"{where} ({key_id!r}): the key decodes to {len(key)} bytes, "
                    f"expected {KEY_SIZE}"
                )
            keys[key_id] = key
            if first is None:
                first = key_id
        assert first is not None
        return cls(keys, first)

    def to_spec(self) -> str:
        """Return the spec string for this ring, current key first (secret: handle with care)."""
        ordered = [self.current, *(k for k in self._keys if k != self.current)]
        return ",".join(f"{k}:{base64.b64encode(self._keys[k]).decode('ascii')}" for k in ordered)

    def __getitem__(self, key_id: str) -> bytes:
        return self._keys[key_id]

    def __iter__(self) -> Iterator[str]:
        return iter(self._keys)

    def __len__(self) -> int:
        return len(self._keys)

    def __repr__(self) -> str:
        # Never show key bytes: rings end up in tracebacks and debug pages.
        return f"KeyRing(ids={list(self._keys)!r}, current={self.current!r})"


def _decode_base64(text: str) -> bytes | None:
    # Both alphabets and missing padding are accepted: keys get pasted from
    # many tools, and a 32-byte key is unambiguous either way.
    padded = text + "=" * (-len(text) % 4)
    for altchars in (None, b"-_"):
        try:
            return base64.b64decode(padded, altchars=altchars, validate=True)
        except (binascii.Error, ValueError):
            continue
    return None


def _encrypt(key: bytes, plaintext: bytes, aad: bytes) -> bytes:
    nonce = os.urandom(_NONCE_SIZE)
    header = bytes((_VERSION_1,)) + nonce
    sealed = AESGCM(key).encrypt(nonce, plaintext, header[:1] + aad)
    # One copy of the body to prepend the header; AESGCM cannot write at an offset
    # of an immutable bytes object.
    return b"".join((header, sealed))


def _decrypt(key: bytes, blob: bytes, aad: bytes, what: str) -> bytes:
    if len(blob) < _HEADER_SIZE + _TAG_SIZE:
        raise BlobIntegrityError(f"{what} is truncated ({len(blob)} bytes)")
    if blob[0] != _VERSION_1:
        raise BlobIntegrityError(f"{what} has unknown format version {blob[0]}")
    view = memoryview(blob)
    try:
        # memoryview slices avoid copying a body of up to 20 MB.
        return AESGCM(key).decrypt(view[1:_HEADER_SIZE], view[_HEADER_SIZE:], blob[:1] + aad)
    except InvalidTag:
        raise BlobIntegrityError(
            f"{what} failed authentication: it was altered, truncated or sealed with another key"
        ) from None


def _master_key(ring: KeyRing, key_id: str) -> bytes:
    try:
        return ring[key_id]
    except KeyError:
        raise UnknownKeyError(
            f"master key {key_id!r} is not in the key ring (known: {', '.join(ring)})"
        ) from None


def _wrap(ring: KeyRing, data_key: bytes) -> tuple[str, bytes]:
    key_id = ring.current
    aad = _KEY_CONTEXT + key_id.encode("ascii")
    return key_id, _encrypt(ring[key_id], data_key, aad)


def _unwrap(ring: KeyRing, key_id: str, wrapped_key: bytes) -> bytes:
    master = _master_key(ring, key_id)
    aad = _KEY_CONTEXT + key_id.encode("ascii")
    data_key = _decrypt(master, wrapped_key, aad, "wrapped data key")
    if len(data_key) != KEY_SIZE:
        raise BlobIntegrityError("wrapped data key has the wrong length")
    return data_key


def seal(ring: KeyRing, plaintext: bytes, aad: bytes = b"") -> SealedBlob:
    """Encrypt ``plaintext`` under a fresh data key wrapped with the ring's current key."""
    data_key = os.urandom(KEY_SIZE)
    ciphertext = _encrypt(data_key, plaintext, _BODY_CONTEXT + aad)
    key_id, wrapped = _wrap(ring, data_key)
    return SealedBlob(key_id=key_id, wrapped_key=wrapped, ciphertext=ciphertext)


def open_blob(
    ring: KeyRing, key_id: str, wrapped_key: bytes, ciphertext: bytes, aad: bytes = b""
) -> bytes:
    """Decrypt a sealed blob; raise ``BlobIntegrityError`` rather than return unauthenticated data."""
    data_key = _unwrap(ring, key_id, wrapped_key)
    return _decrypt(data_key, ciphertext, _BODY_CONTEXT + aad, "blob")


def rewrap(ring: KeyRing, key_id: str, wrapped_key: bytes) -> tuple[str, bytes]:
    """Re-encrypt a wrapped data key under the ring's current key; the body is untouched."""
    data_key = _unwrap(ring, key_id, wrapped_key)
    return _wrap(ring, data_key)
