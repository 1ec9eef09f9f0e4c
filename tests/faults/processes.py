"""The processes of the fault-injection suite: started, killed and restarted by their ids.

Each process runs in a session of its own, so that ``kill -9`` reaches it and its
children (the worker's prefork pool, gunicorn's workers) as a crash would, and
nothing else. Output goes through a pipe into a log file: a file size limit put
on a process to break its blob store (``limit_file_size``) never hits its log.
"""

from __future__ import annotations

import contextlib
import os
import resource
import signal
import socket
import subprocess
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import IO

ROOT = Path(__file__).resolve().parents[2]


class Proc:
    """One long-running process of the cluster (a worker, beat, the gateway, the web)."""

    def __init__(
        self,
        name: str,
        argv: list[str],
        env: dict[str, str],
        log: Path,
        *,
        marker: bytes = b"",
        ready: Callable[[], bool] | None = None,
    ) -> None:
        # Ready when ``marker`` appears in this start's output, or when ``ready()`` is true.
        self.name = name
        self.argv = argv
        self.env = env
        self.log = log
        self.marker = marker
        self.ready = ready
        self.popen: subprocess.Popen[bytes] | None = None
        self._drain: threading.Thread | None = None
        self._offset = 0

    def is_ready(self) -> bool:
        if self.marker and self.marker not in self.output():
            return False
        return self.ready() if self.ready is not None else True

    def output(self) -> bytes:
        """What this process wrote since its last start."""
        try:
            with self.log.open("rb") as fh:
                fh.seek(self._offset)
                return fh.read()
        except FileNotFoundError:
            return b""

    def start(self, timeout: float = 60.0) -> None:
        self.spawn()
        self.wait_ready(timeout)

    def spawn(self) -> None:
        self._offset = self.log.stat().st_size if self.log.exists() else 0
        self.popen = subprocess.Popen(
            self.argv,
            cwd=ROOT,
            env=self.env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        assert self.popen.stdout is not None
        self._drain = threading.Thread(
            target=_copy, args=(self.popen.stdout, self.log), name=f"log-{self.name}", daemon=True
        )
        self._drain.start()

    def wait_ready(self, timeout: float = 60.0) -> None:
        assert self.popen is not None
        deadline = time.monotonic() + timeout
        while not self.is_ready():
            if self.popen.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"{self.name} did not start:\n{self.tail()}")
            time.sleep(0.1)

    def terminate(self) -> None:
        """SIGTERM to the session, without waiting (``stop`` waits)."""
        if self.popen is not None and self.popen.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.pid, signal.SIGTERM)

    @property
    def pid(self) -> int:
        assert self.popen is not None
        return self.popen.pid

    def group(self) -> list[int]:
        """The ids of every process of this one's session (itself and its children)."""
        found = []
        for entry in Path("/proc").iterdir():
            if not entry.name.isdigit():
                continue
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            # pid (comm) state ppid pgrp session: comm may hold spaces, so split after ")".
            fields = stat.rpartition(")")[2].split()
            if int(fields[3]) == self.pid:
                found.append(int(entry.name))
        return found

    def kill(self) -> None:
        """SIGKILL to the whole session: no cleanup, no acknowledgement, as in a crash."""
        if self.popen is None or self.popen.poll() is not None:
            return
        os.killpg(self.pid, signal.SIGKILL)
        self.popen.wait(timeout=10)
        self._join()

    def stop(self) -> None:
        """SIGTERM (warm shutdown), then SIGKILL if it lingers."""
        if self.popen is None:
            return
        if self.popen.poll() is None:
            try:
                os.killpg(self.pid, signal.SIGTERM)
                self.popen.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(self.pid, signal.SIGKILL)
                self.popen.wait(timeout=10)
            except ProcessLookupError:
                pass
        # Children left by a SIGKILL of their parent would keep connections open.
        for pid in self.group():
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        self._join()

    def restart(self) -> None:
        self.stop()
        self.start()

    def limit_file_size(self, limit: int | None) -> None:
        """Set (or lift, with None) RLIMIT_FSIZE on every process of the group.

        Python ignores SIGXFSZ: a write past the limit fails with EFBIG after the
        bytes that fit, as on a file system that fills up midway through a file.
        """
        for pid in self.group():
            _soft, hard = resource.prlimit(pid, resource.RLIMIT_FSIZE)
            soft = hard if limit is None else limit
            try:
                resource.prlimit(pid, resource.RLIMIT_FSIZE, (soft, hard))
            except ProcessLookupError:
                continue

    def tail(self, size: int = 4000) -> str:
        try:
            return self.log.read_text(errors="replace")[-size:]
        except FileNotFoundError:
            return ""

    def _join(self) -> None:
        if self._drain is not None:
            self._drain.join(timeout=5)
            self._drain = None


def _copy(source: IO[bytes], log: Path) -> None:
    with log.open("ab") as out:
        for line in iter(source.readline, b""):
            out.write(line)
            out.flush()


def port_open(port: int, host: str = "127.0.0.1") -> bool:
    try:
        with socket.create_connection((host, port), timeout=0.5):
            return True
    except OSError:
        return False
