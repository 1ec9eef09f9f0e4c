"""Fixtures of the real-client tests: one IMAP account on a server, seen from its server side.

The ``imap`` fixture is parametrised over two servers behind one interface (``Side``):

- ``ours``: our IMAP server (issue 15, part "imap") over the store, the state on the server
  side read and changed through the webmail (the source view, the flag and move buttons);
- ``dovecot``: Debian's Dovecot, the reference (its server side read and changed with
  imaplib): the harness's self-test, proving that the tests and the client work.

THE SWITCH FOR THE LEAD (at merge with the IMAP server): set ``OURS_REQUIRED = True``.
Until then the tests against ours are collected but skipped when ``OURS_MODULE`` cannot be
imported; once it is True a missing or broken server fails every one of them. How ours is
started is in ``ours_imap_server`` (below): it takes, in this order, a context manager
``imap_server(operator)`` of ``clients/tests/conftest.py`` yielding a port (the submission
server's fixture has this shape), else ``start_imap_server(host, port, ssl_context)`` of
``OURS_MODULE``.
"""

from __future__ import annotations

import imaplib
import importlib
import importlib.util
import re
import ssl
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Any, Protocol

import pytest
import trustme

from tests.clients_e2e import dovecot
from tests.clients_e2e.corpus import message_id
from tests.clients_e2e.mbsync import Account
from tests.smtp_peers import HERE, Operator, free_port, make_operator

OURS_MODULE = "clients.imap"
OURS_REQUIRED = True  # the IMAP server of issue 15 is merged

ROLES = {"\\Archive": "archive", "\\Sent": "sent", "\\Drafts": "drafts", "\\Trash": "trash"}


def ours_missing() -> str:
    """'' when our IMAP server can be imported, else why not."""
    try:
        found = importlib.util.find_spec(OURS_MODULE)
    except ModuleNotFoundError:
        found = None
    return "" if found is not None else f"{OURS_MODULE} does not exist (yet)"


@contextmanager
def ours_imap_server(operator: Operator) -> Iterator[int]:
    """Our IMAP server (STARTTLS, application passwords) on a free port; its port."""
    from clients.tests import conftest as clients_fixtures

    fixture = getattr(clients_fixtures, "imap_server", None)
    if fixture is not None and not hasattr(fixture, "_pytestfixturefunction"):
        with fixture(operator) as handle:
            yield _port(handle)
        return
    module = importlib.import_module(OURS_MODULE)
    start = module.start_imap_server
    server = start("127.0.0.1", free_port(), clients_fixtures.client_facing(operator))
    with ExitStack() as stack:
        if hasattr(server, "__enter__"):
            server = stack.enter_context(server)
        else:
            stop = getattr(server, "stop", None) or getattr(server, "close", None)
            if stop is not None:
                stack.callback(stop)
        yield _port(server)


def _port(handle: Any) -> int:
    """The STARTTLS port of a started server: the handle itself or its ``port``."""
    return handle if isinstance(handle, int) else int(handle.port)


# --------------------------------------------------------------------------- IMAP helpers


def connect(account: Account) -> imaplib.IMAP4:
    """An imaplib session of ``account``: STARTTLS, then LOGIN."""
    conn = imaplib.IMAP4(account.host, account.port, timeout=60)
    conn.starttls(ssl_context=ssl.create_default_context(cafile=str(account.ca_file)))
    conn.login(account.login, account.password)
    return conn


def special_folders(conn: imaplib.IMAP4) -> dict[str, str]:
    """role ("inbox", "archive", "sent"…) -> the folder's IMAP name, from LIST's special uses."""
    typ, lines = conn.list()
    assert typ == "OK", lines
    found = {"inbox": "INBOX"}
    for line in lines:
        text = line.decode() if isinstance(line, bytes) else str(line)
        match = re.match(r'\((?P<flags>[^)]*)\) (?:"[^"]*"|NIL) (?P<name>.+)$', text)
        if not match:
            continue
        name = match["name"].strip().strip('"')
        for flag in match["flags"].split():
            if flag in ROLES:
                found[ROLES[flag]] = name
    return found


def quoted(name: str) -> str:
    return '"' + name.replace("\\", "\\\\").replace('"', '\\"') + '"'


# --------------------------------------------------------------------------- the server side


class Side(Protocol):
    """One IMAP account and its server seen from the server's own side."""

    name: str
    account: Account

    def seed(self, raws: list[bytes]) -> None:
        """Put messages in the account's inbox, as delivered mail."""

    def sources(self) -> dict[str, bytes]:
        """Message-ID -> the message's bytes as the server side serves them, every folder."""

    def state(self, msgid: str) -> tuple[str, set[str]]:
        """Where the message is (a role: "inbox", "archive"…, or a folder name) and its flags."""

    def folders(self, msgid: str) -> list[str]:
        """Every folder (role or name) holding a copy of the message."""

    def flag(self, msgid: str) -> None:
        """Flag the message on the server side."""

    def move(self, msgid: str, role: str) -> None:
        """Move the message to the folder of ``role`` on the server side."""


class DovecotSide:
    """Dovecot: its server side is IMAP itself (a session of imaplib)."""

    name = "dovecot"

    def __init__(self, server: dovecot.Dovecot, account: Account) -> None:
        self.server = server
        self.account = account

    def seed(self, raws: list[bytes]) -> None:
        self.server.seed(self.account.login, raws)

    def _each(self, conn: imaplib.IMAP4) -> Iterator[tuple[str, str]]:
        """(role or name, folder name) of every folder."""
        roles = {v: k for k, v in special_folders(conn).items()}
        _typ, lines = conn.list()
        for line in lines:
            name = line.decode().rsplit(" ", 1)[1].strip('"')
            yield roles.get(name, name), name

    def sources(self) -> dict[str, bytes]:
        found = {}
        conn = connect(self.account)
        try:
            for _role, folder in self._each(conn):
                _typ, count = conn.select(quoted(folder), readonly=True)
                if int(count[0] or 0) == 0:
                    continue
                _typ, fetched = conn.fetch("1:*", "(BODY.PEEK[])")
                for item in fetched:
                    if isinstance(item, tuple):
                        found[message_id(item[1])] = item[1]
        finally:
            conn.logout()
        return found

    def _find(self, conn: imaplib.IMAP4, msgid: str) -> list[tuple[str, str, bytes]]:
        """(role, folder, uid) of every copy of the message."""
        found = []
        for role, folder in self._each(conn):
            conn.select(quoted(folder))
            _typ, data = conn.uid("SEARCH", "HEADER", "Message-ID", quoted(msgid))
            found += [(role, folder, uid) for uid in data[0].split()]
        return found

    def folders(self, msgid: str) -> list[str]:
        conn = connect(self.account)
        try:
            return sorted(role for role, _folder, _uid in self._find(conn, msgid))
        finally:
            conn.logout()

    def state(self, msgid: str) -> tuple[str, set[str]]:
        conn = connect(self.account)
        try:
            [(role, folder, uid)] = self._find(conn, msgid)
            conn.select(quoted(folder), readonly=True)
            _typ, data = conn.uid("FETCH", uid, "(FLAGS)")
            flags = re.search(rb"FLAGS \(([^)]*)\)", data[0]).group(1).decode().split()
        finally:
            conn.logout()
        return role, set(flags) - {"\\Recent"}

    def flag(self, msgid: str) -> None:
        conn = connect(self.account)
        try:
            [(_role, folder, uid)] = self._find(conn, msgid)
            conn.select(quoted(folder))
            conn.uid("STORE", uid, "+FLAGS", "(\\Flagged)")
        finally:
            conn.logout()

    def move(self, msgid: str, role: str) -> None:
        conn = connect(self.account)
        try:
            [(_role, folder, uid)] = self._find(conn, msgid)
            target = special_folders(conn)[role]
            conn.select(quoted(folder))
            typ, data = conn.uid("MOVE", uid, quoted(target))
            assert typ == "OK", data
        finally:
            conn.logout()


class OursSide:
    """Ours: the server side is the webmail of the box's holder (source view, buttons)."""

    name = "ours"

    def __init__(self, box: Any, account: Account) -> None:
        from tests.personas import login

        self.box = box
        self.account = account
        self.client = login(box.owner)

    def seed(self, raws: list[bytes]) -> None:
        from mailboxes.services.inbound import read_reception, store_receptions

        # Delivered as the gateway delivers (a peer's mail; scanning and delivery run
        # eagerly on commit), 100 to a transaction as the gateway groups them.
        for start in range(0, len(raws), 100):
            receptions = [
                read_reception(raw, "expediteur@ch-lilas.mssante.test", [self.box.address])
                for raw in raws[start : start + 100]
            ]
            outcomes = store_receptions(receptions)
            failed = [o for o in outcomes if isinstance(o, Exception)]
            assert not failed, failed[:3]

    def _entries(self) -> Any:
        from mailboxes.models import Entry

        return Entry.objects.filter(mailbox=self.box).select_related("message", "folder")

    def folders(self, msgid: str) -> list[str]:
        return sorted(
            e.folder.role if e.folder.role != "custom" else e.folder.name
            for e in self._entries()
            if _bracketed(e.message.message_id) == msgid
        )

    def _entry(self, msgid: str) -> Any:
        found = [e for e in self._entries() if _bracketed(e.message.message_id) == msgid]
        assert len(found) == 1, f"{msgid} is in {[e.folder.role for e in found]} (one expected)"
        return found[0]

    def sources(self) -> dict[str, bytes]:
        from django.urls import reverse

        found = {}
        for entry in self._entries():
            response = self.client.get(reverse("webmail_source", args=[entry.pk]))
            assert response.status_code == 200, response.status_code
            raw = b"".join(response.streaming_content)
            found[message_id(raw)] = raw
        return found

    def state(self, msgid: str) -> tuple[str, set[str]]:
        entry = self._entry(msgid)
        flags = {
            name
            for name, on in (
                ("\\Seen", entry.seen),
                ("\\Flagged", entry.flagged),
                ("\\Answered", entry.answered),
            )
            if on
        }
        folder = entry.folder
        return (folder.role if folder.role != "custom" else folder.name), flags

    def flag(self, msgid: str) -> None:
        from django.urls import reverse

        entry = self._entry(msgid)
        response = self.client.post(reverse("webmail_flag", args=[entry.pk]), {"flagged": "1"})
        assert response.status_code == 302, response.status_code

    def move(self, msgid: str, role: str) -> None:
        from django.urls import reverse

        from mailboxes.models import Folder

        entry = self._entry(msgid)
        target = Folder.objects.get(mailbox=self.box, role=role)
        response = self.client.post(reverse("webmail_move", args=[entry.pk]), {"folder": target.pk})
        assert response.status_code == 302, response.status_code


def _bracketed(value: str) -> str:
    value = value.strip()
    return value if value.startswith("<") else f"<{value}>"


# --------------------------------------------------------------------------- fixtures


@pytest.fixture(scope="module")
def ca() -> trustme.CA:
    return trustme.CA()


@pytest.fixture
def here(ca: trustme.CA, tmp_path: Path, settings: Any) -> Operator:
    """Us: our certificates (CN mx.<domain>, for 127.0.0.1 and localhost) and settings."""
    operator = make_operator(ca, HERE, tmp_path / "here")
    operator.settings_for(settings)
    return operator


def _dovecot_side(operator: Operator) -> Iterator[Side]:
    missing = dovecot.available()
    if missing:
        pytest.skip(f"Dovecot is not installed ({missing}): bash scripts/install-deps")
    login, password = f"dr.martin@{HERE}", "mot-de-passe-dovecot"
    folder = Path(dovecot.tempfile.mkdtemp(prefix="mssante-dovecot-tls-"))
    folder.chmod(0o755)
    cert, key = folder / "cert.pem", folder / "key.pem"
    cert.write_bytes(operator.cert.read_bytes())
    key.write_bytes(operator.key.read_bytes())
    cert.chmod(0o644)
    key.chmod(0o644)
    try:
        with dovecot.Dovecot(cert, key, {login: password}) as server:
            account = Account("localhost", server.imap_port, login, password, operator.ca_file)
            yield DovecotSide(server, account)
    finally:
        dovecot.shutil.rmtree(folder, ignore_errors=True)


def _ours_side(operator: Operator) -> Iterator[Side]:
    missing = ours_missing()
    if missing:
        if OURS_REQUIRED:
            pytest.fail(f"our IMAP server is required and missing: {missing}")
        pytest.skip(f"our IMAP server is not merged yet ({missing}): see OURS_REQUIRED")
    from clients import services
    from clients.models import AppPassword
    from tests import factories

    box = factories.mailbox(factories.professional(), domain=factories.hosted_domain(HERE))
    _password, raw = services.create_app_password(
        box.owner, label="mbsync", scope=AppPassword.Scope.BOTH, mailbox=box
    )
    with ours_imap_server(operator) as port:
        yield OursSide(box, Account("localhost", port, box.address, raw, operator.ca_file))


@pytest.fixture
def ours(here: Operator, transactional_db: None) -> Iterator[Side]:
    """An account on our IMAP server only (skipped, or failed, as ``OURS_REQUIRED`` says)."""
    yield from _ours_side(here)


@pytest.fixture(params=["ours", "dovecot"])
def imap(request: pytest.FixtureRequest, here: Operator) -> Iterator[Side]:
    """One account on an IMAP server (ours, then Dovecot's for the harness's self-test).

    The tests using it are ``django_db(transaction=True)``: our server's threads work on
    the test database through connections of their own (PostgreSQL).
    """
    if request.param == "ours":
        yield from _ours_side(here)
    else:
        yield from _dovecot_side(here)
