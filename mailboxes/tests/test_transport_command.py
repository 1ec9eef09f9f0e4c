"""``manage.py smtpd`` runs the gateway as a process of its own (or several) and stops on SIGTERM."""

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

from mailboxes.transport.inbound import GatewayHandler, listening_socket, make_controller
from tests.smtp_peers import HERE, PEER, Operator, free_port, make_operator

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


@pytest.fixture(scope="module")
def command_env(ca: trustme.CA, tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """The command's environment: our certificate, a database of its own (where nobody is
    listed), migrated once for the module."""
    tmp = tmp_path_factory.mktemp("smtpd")
    here = make_operator(ca, HERE, tmp / "here")
    env = {
        **os.environ,
        "MSSANTE_VAR_DIR": str(tmp / "var"),
        "MSSANTE_IGNORE_DOTENV": "true",
        "DATABASE_URL": f"sqlite:///{tmp / 'db.sqlite3'}",
        "CELERY_BROKER_URL": "",
        "SMTP_TLS_CERT": str(here.cert),
        "SMTP_TLS_KEY": str(here.key),
        "SMTP_CA_FILE": str(here.ca_file),
        "LOG_LEVEL": "WARNING",
    }
    env.pop("DJANGO_SETTINGS_MODULE", None)
    subprocess.run([*MANAGE, "migrate", "-v0"], env=env, check=True, cwd=ROOT, timeout=120)
    return env


MANAGE = [sys.executable, str(ROOT / "manage.py")]


def _smtpd(env: dict[str, str], port: int, *options: str) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [*MANAGE, "smtpd", "--listen", f"127.0.0.1:{port}", *options],
        env=env,
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )


def _refused_as_unlisted(port: int, peer: Operator) -> None:
    """A whole dialogue up to MAIL FROM, which the (empty) liste blanche refuses."""
    with smtplib.SMTP("127.0.0.1", port, timeout=10) as client:
        code, _text = client.mail("a@clinique.peer.test")
        assert code == 530  # STARTTLS first
        client.starttls(context=peer.client_context())
        client.ehlo("mx.clinique.peer.test")
        # An empty liste blanche: the peer's DN is listed nowhere.
        code, text = client.mail("a@clinique.peer.test")
        assert code == 550 and b"liste blanche" in text


def _children(pid: int) -> set[int]:
    found: set[int] = set()
    for task in Path(f"/proc/{pid}/task").iterdir():
        found.update(int(c) for c in (task / "children").read_text().split())
    return found


def test_the_smtpd_command_serves_the_gateway_until_sigterm(
    ca: trustme.CA, tmp_path: Path, command_env: dict[str, str]
) -> None:
    peer = make_operator(ca, PEER, tmp_path / "peer")
    port = free_port()
    proc = _smtpd(command_env, port)
    try:
        _wait_for_banner(port, proc)
        _refused_as_unlisted(port, peer)
    finally:
        proc.send_signal(signal.SIGTERM)
        output, _ = proc.communicate(timeout=30)
    assert proc.returncode == 0, output
    assert f"127.0.0.1:{port}".encode() in output


def test_several_gateway_processes_serve_one_port_and_one_that_dies_is_replaced(
    ca: trustme.CA, tmp_path: Path, command_env: dict[str, str]
) -> None:
    peer = make_operator(ca, PEER, tmp_path / "peer")
    port = free_port()
    proc = _smtpd(command_env, port, "--processes", "2")
    try:
        _wait_for_banner(port, proc)
        deadline = time.monotonic() + 30
        while len(_children(proc.pid)) < 2 and time.monotonic() < deadline:
            time.sleep(0.1)
        first = _children(proc.pid)
        assert len(first) == 2
        for _ in range(6):
            _refused_as_unlisted(port, peer)

        # One of them crashes: the others go on, and it is replaced.
        victim = min(first)
        os.kill(victim, signal.SIGKILL)
        while (len(_children(proc.pid)) < 2 or victim in _children(proc.pid)) and (
            time.monotonic() < deadline + 30
        ):
            time.sleep(0.1)
        assert victim not in _children(proc.pid) and len(_children(proc.pid)) == 2
        for _ in range(4):
            _refused_as_unlisted(port, peer)
        children = _children(proc.pid)
    finally:
        proc.send_signal(signal.SIGTERM)
        output, _ = proc.communicate(timeout=30)
    assert proc.returncode == 0, output
    assert b"(2 processus)" in output
    for pid in children:  # every process stopped with the first one
        assert not Path(f"/proc/{pid}").exists() or "Z" in Path(f"/proc/{pid}/stat").read_text()


def test_the_listening_socket_turns_nagle_off_on_every_connection(here: Operator) -> None:
    # Created without IPPROTO_TCP, asyncio leaves Nagle on and each reply waits ~40 ms
    # for the peer's delayed ACK.
    sock = listening_socket("127.0.0.1", 0)
    controller = make_controller(
        sock=sock, handler=GatewayHandler(), tls_context=here.server_context()
    )
    controller.start()
    try:
        with smtplib.SMTP("127.0.0.1", sock.getsockname()[1], timeout=10) as client:
            assert client.ehlo("mx.peer.test")[0] == 250
            server_side = controller.smtpd.transport.get_extra_info("socket")
            assert server_side.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY) == 1
    finally:
        controller.stop()
