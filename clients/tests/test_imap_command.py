"""``manage.py imap`` serves 143 (STARTTLS) and 993 (TLS) as a process of its own."""

from __future__ import annotations

import imaplib
import os
import signal
import ssl
import subprocess
import sys
import time
from pathlib import Path

import pytest
import trustme

from tests.smtp_peers import HERE, free_port, make_operator

ROOT = Path(__file__).resolve().parents[2]
MANAGE = [sys.executable, str(ROOT / "manage.py")]


def _wait(port: int, proc: subprocess.Popen[bytes], context: ssl.SSLContext | None) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        assert proc.poll() is None, proc.stdout.read() if proc.stdout else ""
        try:
            if context is None:
                imaplib.IMAP4("127.0.0.1", port, timeout=2).shutdown()
            else:
                imaplib.IMAP4_SSL("127.0.0.1", port, ssl_context=context, timeout=2).shutdown()
            return
        except OSError:
            time.sleep(0.2)
    pytest.fail("the IMAP server did not answer")


def test_the_command_serves_both_ports_refuses_a_wrong_password_and_stops_on_sigterm(
    ca: trustme.CA, tmp_path: Path
) -> None:
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
        [*MANAGE, "imap", "--listen", f"127.0.0.1:{starttls}",
         "--listen-tls", f"127.0.0.1:{implicit}"],
        env=env, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
    )  # fmt: skip
    context = ssl.create_default_context(cafile=str(here.ca_file))
    try:
        _wait(starttls, proc, None)
        _wait(implicit, proc, context)
        plain = imaplib.IMAP4("127.0.0.1", starttls, timeout=10)
        assert "LOGINDISABLED" in plain.capabilities
        plain.starttls(context)
        assert "AUTH=PLAIN" in plain.capabilities
        plain.shutdown()
        tls = imaplib.IMAP4_SSL("127.0.0.1", implicit, ssl_context=context, timeout=10)
        assert "STARTTLS" not in tls.capabilities and "AUTH=PLAIN" in tls.capabilities
        with pytest.raises(imaplib.IMAP4.error, match="Identifiants refuses"):
            tls.login(f"dr.martin@{HERE}", "abcdef-ghjkmn-pqrstu-vwxyz2")
        tls.shutdown()
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=30) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
