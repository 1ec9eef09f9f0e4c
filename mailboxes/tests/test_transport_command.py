"""``manage.py smtpd`` runs the gateway as a process of its own and stops on SIGTERM."""

from __future__ import annotations

import os
import signal
import smtplib
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import trustme

from tests.smtp_peers import HERE, PEER, free_port, make_operator

ROOT = Path(__file__).resolve().parents[2]


def _wait_for_banner(port: int, proc: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        assert proc.poll() is None, proc.stdout.read() if proc.stdout else ""
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1) as sock:
                if sock.recv(100).startswith(b"220"):
                    return
        except OSError:
            time.sleep(0.1)
    pytest.fail("the gateway did not answer")


def test_the_smtpd_command_serves_the_gateway_until_sigterm(ca: trustme.CA, tmp_path: Path) -> None:
    # Our operator and the peer, but not the fixtures: the command runs on a database of its
    # own, where nobody is listed.
    here = make_operator(ca, HERE, tmp_path / "here")
    peer = make_operator(ca, PEER, tmp_path / "peer")
    env = {
        **os.environ,
        "MSSANTE_VAR_DIR": str(tmp_path / "var"),
        "MSSANTE_IGNORE_DOTENV": "true",
        "DATABASE_URL": f"sqlite:///{tmp_path / 'db.sqlite3'}",
        "CELERY_BROKER_URL": "",
        "SMTP_TLS_CERT": str(here.cert),
        "SMTP_TLS_KEY": str(here.key),
        "SMTP_CA_FILE": str(here.ca_file),
        "LOG_LEVEL": "WARNING",
    }
    env.pop("DJANGO_SETTINGS_MODULE", None)
    manage = [sys.executable, str(ROOT / "manage.py")]
    subprocess.run([*manage, "migrate", "-v0"], env=env, check=True, cwd=ROOT, timeout=120)
    port = free_port()
    proc = subprocess.Popen(
        [*manage, "smtpd", "--listen", f"127.0.0.1:{port}"],
        env=env,
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    try:
        _wait_for_banner(port, proc)
        with smtplib.SMTP("127.0.0.1", port, timeout=10) as client:
            code, _text = client.mail("a@clinique.peer.test")
            assert code == 530  # STARTTLS first
            client.starttls(context=peer.client_context())
            client.ehlo("mx.clinique.peer.test")
            # An empty liste blanche: the peer's DN is listed nowhere.
            code, text = client.mail("a@clinique.peer.test")
            assert code == 550 and b"liste blanche" in text
    finally:
        proc.send_signal(signal.SIGTERM)
        output, _ = proc.communicate(timeout=30)
    assert proc.returncode == 0, output
    assert f"127.0.0.1:{port}".encode() in output
