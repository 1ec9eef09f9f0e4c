"""A server command (``manage.py submission``, ``manage.py imap``) run as its own process on
a fresh SQLite database, as an operator runs it: both ports, TLS from files, SIGTERM."""

from __future__ import annotations

import os
import signal
import ssl
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest
import trustme

from tests.smtp_peers import HERE, free_port, make_operator

ROOT = Path(__file__).resolve().parents[2]
MANAGE = [sys.executable, str(ROOT / "manage.py")]

# Opens then closes a connection to the port (the context: implicit TLS), or raises OSError.
Probe = Callable[[int, ssl.SSLContext | None], None]


@dataclass(frozen=True)
class Served:
    starttls: int
    implicit: int
    context: ssl.SSLContext
    proc: subprocess.Popen[bytes]

    def stops_on_sigterm(self) -> bool:
        self.proc.send_signal(signal.SIGTERM)
        return self.proc.wait(timeout=30) == 0


def _wait(port: int, proc: subprocess.Popen[bytes], probe: Probe, context: ssl.SSLContext | None) -> None:  # fmt: skip
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        assert proc.poll() is None, proc.stdout.read() if proc.stdout else ""
        try:
            probe(port, context)
            return
        except OSError:
            time.sleep(0.2)
    pytest.fail(f"the {proc.args!r} server did not answer")


@contextmanager
def serving(command: str, ca: trustme.CA, tmp_path: Path, probe: Probe) -> Iterator[Served]:
    """``manage.py <command> --listen … --listen-tls …``, once both ports answer."""
    here = make_operator(ca, HERE, tmp_path / "here")
    env = {
        **os.environ,
        "MSSANTE_VAR_DIR": str(tmp_path / "var"),
        "MSSANTE_IGNORE_DOTENV": "true",
        "DATABASE_URL": f"sqlite:///{tmp_path / 'db.sqlite3'}",
        "CELERY_BROKER_URL": "",
        "CLIENTS_TLS_CERT": str(here.cert),
        "CLIENTS_TLS_KEY": str(here.key),
        "LOG_LEVEL": "WARNING",
    }
    env.pop("DJANGO_SETTINGS_MODULE", None)
    subprocess.run([*MANAGE, "migrate", "-v0"], env=env, check=True, cwd=ROOT, timeout=120)
    starttls, implicit = free_port(), free_port()
    proc = subprocess.Popen(
        [*MANAGE, command, "--listen", f"127.0.0.1:{starttls}",
         "--listen-tls", f"127.0.0.1:{implicit}"],
        env=env, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
    )  # fmt: skip
    context = ssl.create_default_context(cafile=str(here.ca_file))
    try:
        _wait(starttls, proc, probe, None)
        _wait(implicit, proc, probe, context)
        yield Served(starttls, implicit, context, proc)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
