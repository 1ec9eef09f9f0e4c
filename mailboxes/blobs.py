"""Encrypted blobs: the raw MIME of messages and the files of drafts.

Every blob is sealed with its own data key (``mssante.lib.crypto``), and its name
is bound into the ciphertext as associated data, so a blob copied over another
one's name fails authentication instead of showing the wrong message.
"""

from __future__ import annotations

import functools
import uuid
from typing import Any

from django.conf import settings
from django.core.files.base import ContentFile
from django.core.files.storage import FileSystemStorage, Storage, storages
from django.utils import timezone

from mssante.lib import crypto

_FILESYSTEM = "django.core.files.storage.FileSystemStorage"


@functools.lru_cache(maxsize=4)
def _ring(spec: str) -> crypto.KeyRing:
    return crypto.KeyRing.from_spec(spec)


def keyring() -> crypto.KeyRing:
    """The master keys from settings (read at call time so overrides and rotation apply)."""
    return _ring(settings.MSSANTE_MASTER_KEYS)


@functools.lru_cache(maxsize=4)
def _filesystem(location: str) -> FileSystemStorage:
    return FileSystemStorage(location=location)


def storage() -> Storage:
    """The blob store: ``STORAGES["blobs"]``, rooted at ``BLOB_ROOT`` when on the filesystem."""
    # storages[] is built once per process from the settings of that moment; the
    # filesystem default follows BLOB_ROOT instead so that a test or a settings
    # override that moves the blob folder is honoured.
    if settings.STORAGES["blobs"]["BACKEND"] == _FILESYSTEM:  # type: ignore[index]
        return _filesystem(str(settings.BLOB_ROOT))
    return storages["blobs"]


def new_name(kind: str) -> str:
    """A fresh, unguessable blob name, grouped by month so no folder grows without bound."""
    now = timezone.now()
    return f"{kind}/{now:%Y/%m}/{uuid.uuid4().hex}.bin"


def write(name: str, data: bytes) -> crypto.SealedBlob:
    """Seal ``data`` and store it under ``name``; return what the row must keep."""
    sealed = crypto.seal(keyring(), data, aad=name.encode())
    saved = storage().save(name, ContentFile(sealed.ciphertext))
    if saved != name:
        # Names are random: a clash means a bug or a replayed name, never chance.
        storage().delete(saved)
        raise RuntimeError(f"blob name {name!r} already taken")
    return sealed


def read(name: str, key_id: str, wrapped_key: bytes | memoryview[Any]) -> bytes:
    """Open the blob ``name``; raise ``crypto.BlobIntegrityError`` if missing or altered."""
    try:
        with storage().open(name, "rb") as fh:
            ciphertext = fh.read()
    except FileNotFoundError:
        raise crypto.BlobIntegrityError(f"blob {name} is missing from the store") from None
    try:
        return crypto.open_blob(
            keyring(), key_id, bytes(wrapped_key), ciphertext, aad=name.encode()
        )
    except crypto.BlobIntegrityError as exc:
        # Same class (UnknownKeyError stays one), with the blob named for the operator.
        raise type(exc)(f"blob {name}: {exc}") from None


def delete(name: str) -> None:
    """Remove a blob; a blob already gone is not an error."""
    storage().delete(name)


def seal_value(data: bytes, context: bytes) -> crypto.SealedBlob:
    """Seal a small value kept in a database column (drafts), bound to ``context``."""
    return crypto.seal(keyring(), data, aad=context)


def open_value(
    key_id: str,
    wrapped_key: bytes | memoryview[Any],
    sealed: bytes | memoryview[Any],
    context: bytes,
) -> bytes:
    """Open a value sealed by ``seal_value``."""
    return crypto.open_blob(keyring(), key_id, bytes(wrapped_key), bytes(sealed), aad=context)


def delete_many(names: list[str]) -> None:
    """Remove several blobs (after the rows that named them are gone)."""
    for name in names:
        delete(name)
