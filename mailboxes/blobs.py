"""Encrypted blobs: the raw MIME of messages and the files of drafts.

Every blob is sealed with its own data key (``mssante.lib.crypto``), and its name
is bound into the ciphertext as associated data, so a blob copied over another
one's name fails authentication instead of showing the wrong message.

On the filesystem a blob is written to a temporary file beside its final name,
fsynced, linked to its name and its folder fsynced: it is durable before the
transaction that references it commits, and a write that fails (disk full,
read-only) leaves no partial file under a blob's name. Whatever is still left
behind (a process killed mid-write, a transaction that failed after the write,
a deletion that failed) is removed by ``collect_orphans``, run by Celery beat.
"""

from __future__ import annotations

import contextlib
import errno
import functools
import logging
import os
import re
import uuid
from collections.abc import Callable, Iterable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Final

from django.conf import settings
from django.core.files.base import ContentFile
from django.core.files.storage import FileSystemStorage, Storage, storages
from django.utils import timezone

from mssante.lib import crypto

log = logging.getLogger(__name__)

_FILESYSTEM = "django.core.files.storage.FileSystemStorage"
# The kinds of blob mailboxes writes (the apps above add theirs through mailboxes.hooks)
# and the shape of their names (``new_name``); only such files, and our temporary files,
# are ever considered by the orphan collector.
KINDS: Final = ("messages", "drafts")
_NAME_RE = re.compile(r"^(?P<kind>[a-z]+)/\d{4}/\d{2}/[0-9a-f]{32}\.bin$")
_TEMP_PREFIX = ".tmp-"
_TEMP_RE = re.compile(r"^\.tmp-[0-9a-f]{32}$")


class BlobStoreUnavailable(Exception):
    """The blob store refused a write (full, read-only, unreachable): try again later.

    Nothing is stored when this is raised; the doors answer with a temporary error
    (a French page, HTTP 503, SMTP 452) and the sender may try again.
    """


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
    """Seal ``data`` and store it durably under ``name``; return what the row must keep.

    Raises ``BlobStoreUnavailable`` when the store refuses the write; nothing is
    left under ``name`` then.
    """
    sealed = crypto.seal(keyring(), data, aad=name.encode())
    store = storage()
    try:
        if isinstance(store, FileSystemStorage):
            _write_file(store, name, sealed.ciphertext)
        else:
            saved = store.save(name, ContentFile(sealed.ciphertext))
            if saved != name:
                store.delete(saved)
                raise FileExistsError(errno.EEXIST, "blob name already taken", name)
    except FileExistsError:
        # Names are random: a clash means a bug or a replayed name, never chance.
        raise RuntimeError(f"blob name {name!r} already taken") from None
    except Exception as exc:
        # Only the kind of failure is logged: the errno says full, read-only or gone.
        log.error("blob store: %s not written (%s: %s)", name, type(exc).__name__, exc)
        raise BlobStoreUnavailable(str(exc)) from exc
    return sealed


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _make_dirs(root: Path, folder: Path) -> None:
    """Create ``folder`` under ``root`` with every new level's entry made durable."""
    missing = []
    current = folder
    while current != root and not current.is_dir():
        missing.append(current)
        current = current.parent
    for level in reversed(missing):
        with contextlib.suppress(FileExistsError):
            level.mkdir()
        _fsync_dir(level.parent)


def _write_file(store: FileSystemStorage, name: str, data: bytes) -> None:
    root = Path(store.location)
    path = Path(store.path(name))  # refuses a name that would leave the store
    root.mkdir(parents=True, exist_ok=True)
    _make_dirs(root, path.parent)
    temp = path.parent / f"{_TEMP_PREFIX}{uuid.uuid4().hex}"
    fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o666)
    try:
        try:
            view = memoryview(data)
            while view:
                view = view[os.write(fd, view) :]
            os.fsync(fd)
        finally:
            os.close(fd)
        # link, not rename: an existing blob is never replaced.
        os.link(temp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            temp.unlink()
        raise
    with contextlib.suppress(OSError):
        temp.unlink()
    _fsync_dir(path.parent)


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
    """Remove a blob; a blob already gone is not an error.

    A store that refuses (read-only, unreachable) is logged and not raised: the row
    is gone or was never committed, and the orphan collector removes the file later.
    """
    try:
        storage().delete(name)
    except Exception as exc:
        log.warning("blob store: %s not deleted (%s: %s)", name, type(exc).__name__, exc)


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


# --------------------------------------------------------------------------- orphans


def _stored(store: Storage, kinds: Iterable[str] = KINDS) -> Iterator[tuple[str, datetime]]:
    """Every file under the folders of ``kinds`` with its modification time (UTC)."""
    if isinstance(store, FileSystemStorage):
        root = Path(store.location)
        for kind in kinds:
            for folder, _dirs, files in os.walk(root / kind):
                for filename in files:
                    path = Path(folder) / filename
                    try:
                        mtime = path.stat().st_mtime
                    except FileNotFoundError:
                        continue  # removed meanwhile
                    yield path.relative_to(root).as_posix(), datetime.fromtimestamp(mtime, UTC)
        return

    def walk(folder: str) -> Iterator[str]:
        dirs, files = store.listdir(folder)
        for filename in files:
            yield f"{folder}/{filename}"
        for sub in dirs:
            yield from walk(f"{folder}/{sub}")

    for kind in kinds:
        if not store.exists(kind):
            continue
        for name in walk(kind):
            yield name, store.get_modified_time(name)


def collect_orphans(
    referenced: Callable[[list[str]], Iterable[str]],
    *,
    grace: timedelta,
    now: datetime | None = None,
    batch: int = 1000,
    kinds: Iterable[str] = KINDS,
) -> dict[str, int]:
    """Delete blob files older than ``grace`` that no row names, and stale temporary files.

    Only blobs of ``kinds`` are judged (a kind nobody vouches for is never deleted).
    ``referenced(names)`` returns those of ``names`` that a row still points to. The
    grace period covers the moment between writing a blob and committing its row
    (and any row being committed elsewhere right now): only older files are judged.
    """
    store = storage()
    cutoff = (now or timezone.now()) - grace
    counts = {"orphans": 0, "temporary": 0, "kept": 0}
    candidates: list[str] = []
    judged = set(kinds)

    def judge(names: list[str]) -> None:
        keep = set(referenced(names))
        counts["kept"] += len(keep)
        for name in names:
            if name not in keep:
                delete(name)
                counts["orphans"] += 1

    for name, modified in _stored(store, judged):
        if modified > cutoff:
            continue
        basename = name.rpartition("/")[2]
        if _TEMP_RE.match(basename):
            delete(name)
            counts["temporary"] += 1
        elif (match := _NAME_RE.match(name)) and match["kind"] in judged:
            candidates.append(name)
            if len(candidates) >= batch:
                judge(candidates)
                candidates = []
    if candidates:
        judge(candidates)
    return counts
