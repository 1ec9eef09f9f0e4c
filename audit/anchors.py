"""The append-only file the audit journal's head is anchored to, outside the database.

One JSON line per anchor, appended with ``O_APPEND`` in a single ``write`` and
fsynced before the lock is released. Writers on one host are serialised by
``flock`` so that each line can name the previous one (the file is a chain of its
own). The file holds no secret and no content: ids, hashes, counts and times.

Plain file handling only (no Django, no key): audit.chain builds and checks the
lines.
"""

from __future__ import annotations

import fcntl
import os
from collections.abc import Iterator
from pathlib import Path
from types import TracebackType

# A line is a few hundred bytes: reading this much from the end finds the newest
# complete ones without reading the file.
TAIL_BYTES = 64 * 1024
# Longest line read back; a longer one is not ours (or not a line) and is skipped.
MAX_LINE = 8 * 1024


class AnchorStore:
    """The anchor file, locked for one writer while the context is open."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self._fd = -1

    def __enter__(self) -> AnchorStore:
        directory = self.path.parent
        if not directory.exists():
            directory.mkdir(mode=0o700, parents=True, exist_ok=True)
        created = not self.path.exists()
        self._fd = os.open(self.path, os.O_RDWR | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC, 0o600)
        fcntl.flock(self._fd, fcntl.LOCK_EX)
        if created:
            # The new name itself must survive a crash, not only the bytes.
            _fsync_dir(directory)
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        try:
            fcntl.flock(self._fd, fcntl.LOCK_UN)
        finally:
            os.close(self._fd)
            self._fd = -1

    def newest_lines(self) -> list[str]:
        """The complete lines at the end of the file, newest first."""
        size = os.fstat(self._fd).st_size
        start = max(0, size - TAIL_BYTES)
        data = os.pread(self._fd, size - start, start)
        lines = data.split(b"\n")
        lines.pop()  # after the last newline: empty, or a torn write
        if start > 0 and lines:
            lines.pop(0)  # probably cut by the window
        return [line.decode("utf-8", "replace") for line in reversed(lines) if line]

    def is_empty(self) -> bool:
        return os.fstat(self._fd).st_size == 0

    def append(self, line: str) -> None:
        """Write one line durably (a torn line left by a crash is closed first)."""
        data = line.encode() + b"\n"
        size = os.fstat(self._fd).st_size
        if size and os.pread(self._fd, 1, size - 1) != b"\n":
            data = b"\n" + data
        view = memoryview(data)
        while view:
            written = os.write(self._fd, view)
            view = view[written:]
        os.fsync(self._fd)


def read_lines(path: str | Path) -> Iterator[tuple[int, str, bool]]:
    """Every line of the file in order: (line number, text, ended by a newline).

    Streams the file: memory stays bounded whatever its size; an overlong line
    is returned cut to MAX_LINE (it cannot parse, and is reported as such).
    """
    with open(path, "rb") as handle:
        number = 0
        while True:
            raw = handle.readline(MAX_LINE + 1)
            if not raw:
                return
            number += 1
            terminated = raw.endswith(b"\n")
            if not terminated and len(raw) > MAX_LINE:
                # Skip the rest of that line.
                while raw and not raw.endswith(b"\n"):
                    raw = handle.readline(MAX_LINE + 1)
                yield number, "", True
                continue
            yield number, raw.rstrip(b"\n").decode("utf-8", "replace"), terminated


def _fsync_dir(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
