"""A private Dovecot (Debian's dovecot-imapd) on free loopback ports: the reference server.

Used by the IMAP benchmark (``scripts/bench/imap.py``) and by the self-test of the
real-client harness (``tests/clients_e2e``). Everything lives in a temp dir of its own:
configuration, base and state dirs, log, the users' Maildirs. IMAP with STARTTLS required
before login (like ours), plain-text passwords in a passwd-file, LMTP for deliveries.
Run as root (the test machines), Dovecot's mail processes run as ``nobody``; as another
user, every process runs as that user. Started in the foreground (``-F``) in a session of
its own and stopped by its PID.
"""

from __future__ import annotations

import contextlib
import grp
import os
import pwd
import shutil
import signal
import smtplib
import socket
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

DOVECOT = "/usr/sbin/dovecot"
IMAP_BINARY = "/usr/lib/dovecot/imap"
SPECIAL = {"Drafts": "\\Drafts", "Sent": "\\Sent", "Trash": "\\Trash", "Archive": "\\Archive"}


def available() -> str:
    """'' when Dovecot with its IMAP server is installed, else what is missing."""
    missing = [p for p in (DOVECOT, IMAP_BINARY) if not Path(p).exists()]
    return ", ".join(missing)


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class Dovecot:
    cert: Path  # the server's certificate chain (PEM) and key
    key: Path
    users: dict[str, str] = field(default_factory=dict)  # login -> password
    work: Path = field(default_factory=lambda: Path(tempfile.mkdtemp(prefix="mssante-dovecot-")))
    imap_port: int = field(default_factory=free_port)
    lmtp_port: int = field(default_factory=free_port)
    process: subprocess.Popen[bytes] | None = None

    def __post_init__(self) -> None:
        while self.lmtp_port == self.imap_port:  # two free_port() calls may give the same
            self.lmtp_port = free_port()
        # The mail processes (nobody, when we are root) must traverse it.
        self.work.chmod(0o755)
        if os.geteuid() == 0:
            self.uid, self.gid = pwd.getpwnam("nobody").pw_uid, grp.getgrnam("nogroup").gr_gid
        else:
            self.uid, self.gid = os.geteuid(), os.getegid()

    # ----------------------------------------------------------------- files

    @property
    def conf(self) -> Path:
        return self.work / "dovecot.conf"

    @property
    def log(self) -> Path:
        return self.work / "dovecot.log"

    def home(self, login: str) -> Path:
        return self.work / "mail" / login

    def maildir(self, login: str, folder: str = "INBOX") -> Path:
        """The Maildir of a folder (Maildir++: INBOX is the root, others are ``.Name``)."""
        root = self.home(login) / "Maildir"
        return root if folder == "INBOX" else root / f".{folder}"

    def _write_config(self) -> None:
        for sub in ("run", "state", "mail"):
            (self.work / sub).mkdir(exist_ok=True)
        (self.work / "mail").chmod(0o755)
        lines = [
            f"{login}:{{PLAIN}}{password}:{self.uid}:{self.gid}::{self.home(login)}::"
            for login, password in self.users.items()
        ]
        (self.work / "users").write_text("\n".join(lines) + "\n")
        (self.work / "users").chmod(0o644)
        unprivileged = ""
        if os.geteuid() != 0:
            user, group = pwd.getpwuid(self.uid).pw_name, grp.getgrgid(self.gid).gr_name
            unprivileged = (
                f"default_internal_user = {user}\ndefault_internal_group = {group}\n"
                f"default_login_user = {user}\n"
            )
        special = "".join(
            f"  mailbox {name} {{\n    special_use = {use}\n    auto = subscribe\n  }}\n"
            for name, use in SPECIAL.items()
        )
        self.conf.write_text(
            f"""instance_name = mssante-{self.work.name}
base_dir = {self.work}/run
state_dir = {self.work}/state
protocols = imap lmtp
listen = 127.0.0.1
log_path = {self.log}
{unprivileged}first_valid_uid = {self.uid}
mail_location = maildir:~/Maildir
ssl = required
ssl_cert = <{self.cert}
ssl_key = <{self.key}
disable_plaintext_auth = yes
auth_mechanisms = plain login
mail_max_userip_connections = 5000
default_process_limit = 1000
default_client_limit = 5000
service auth {{
  client_limit = 8000
}}
passdb {{
  driver = passwd-file
  args = scheme=PLAIN username_format=%u {self.work}/users
}}
userdb {{
  driver = passwd-file
  args = username_format=%u {self.work}/users
}}
namespace inbox {{
  inbox = yes
  separator = /
{special}}}
service imap-login {{
  inet_listener imap {{
    address = 127.0.0.1
    port = {self.imap_port}
  }}
  inet_listener imaps {{
    port = 0
  }}
}}
service lmtp {{
  inet_listener lmtp {{
    address = 127.0.0.1
    port = {self.lmtp_port}
  }}
}}
"""
        )

    # ----------------------------------------------------------------- mail

    def seed(self, login: str, messages: list[bytes], folder: str = "INBOX") -> None:
        """Put messages straight into a folder's Maildir (before or while it runs), unread.

        Each file's time is its message's arrival (INTERNALDATE), one second apart.
        """
        box = self.maildir(login, folder)
        for sub in ("cur", "new", "tmp"):
            (box / sub).mkdir(parents=True, exist_ok=True)
        base = time.time() - len(messages)
        host = socket.gethostname()
        for n, raw in enumerate(messages):
            name = f"{int(base) + n}.M{n}P{os.getpid()}.{host},S={len(raw)}:2,"
            path = box / "cur" / name
            path.write_bytes(raw)
            os.utime(path, (base + n, base + n))
        for path in [self.work / "mail", *self.home(login).parent.rglob("*")]:
            os.chown(path, self.uid, self.gid)

    def deliver(self, login: str, raw: bytes, mail_from: str = "expediteur@peer.test") -> None:
        """Deliver through LMTP, as an MTA would (returns once Dovecot said 250)."""
        with smtplib.LMTP("127.0.0.1", self.lmtp_port, timeout=30) as lmtp:
            lmtp.sendmail(mail_from, [login], raw)

    # ----------------------------------------------------------------- lifecycle

    def start(self) -> Dovecot:
        for login in self.users:
            for folder in ("INBOX", *SPECIAL):
                for sub in ("cur", "new", "tmp"):
                    (self.maildir(login, folder) / sub).mkdir(parents=True, exist_ok=True)
            for path in [self.home(login), *self.home(login).rglob("*")]:
                os.chown(path, self.uid, self.gid)
        for _attempt in range(3):
            self._write_config()
            if self._started():
                return self
            tail = self.log.read_text(errors="replace")[-2000:] if self.log.exists() else ""
            if "in use" not in tail and "duplicate listener" not in tail:
                break
            # Another process took a port between free_port() and Dovecot's bind: new ones.
            self.imap_port = free_port()
            self.lmtp_port = free_port()
            while self.lmtp_port == self.imap_port:
                self.lmtp_port = free_port()
        raise RuntimeError(f"Dovecot did not start: {tail}")

    def _started(self) -> bool:
        out = self.log.open("ab")
        self.process = subprocess.Popen(
            [DOVECOT, "-F", "-c", str(self.conf)],
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        out.close()
        deadline = time.monotonic() + 60  # a loaded machine (the test machines are shared)
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                break
            with (
                contextlib.suppress(OSError),
                socket.create_connection(("127.0.0.1", self.imap_port), timeout=2) as sock,
            ):
                if sock.recv(200).startswith(b"* OK"):
                    return True
            time.sleep(0.05)
        self.stop()
        return False

    @property
    def pid(self) -> int:
        assert self.process is not None
        return self.process.pid

    def stop(self) -> None:
        """SIGTERM the master (it stops its children), then SIGKILL its session if need be."""
        if self.process is None:
            return
        if self.process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait(timeout=5)
        self.process = None

    def remove(self) -> None:
        self.stop()
        shutil.rmtree(self.work, ignore_errors=True)

    def __enter__(self) -> Dovecot:
        try:
            return self.start()
        except BaseException:
            self.remove()
            raise

    def __exit__(self, *exc: object) -> None:
        self.remove()
