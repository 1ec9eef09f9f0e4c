"""Operators for SMTP tests: certificates from one trustme CA, liste blanche rows, gateways.

Each operator has one certificate (CN=mx.<domain>) that its gateway serves and
that it presents as a client when it delivers, as in production. Gateways are
real aiosmtpd servers on free loopback ports. The tests run on the test
database: when it is in-memory SQLite, the gateway's worker threads borrow the
test's connection (as Django's live server does), so they see the same data.
"""

from __future__ import annotations

import copy
import smtplib
import socket
import ssl
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import trustme
from aiosmtpd.controller import Controller
from django.db import connections

from mailboxes.transport.inbound import GatewayHandler, make_controller
from tests.factories import HOSPITAL
from trust.models import ListedDomain, OperatorCertificate

# The two operators of the SMTP tests (fixtures ``here`` and ``peer``): us, and another
# operator of the trust space.
HERE = HOSPITAL
PEER = "clinique.peer.test"


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class Operator:
    """One operator: its domain, its certificate files and its DN as the liste blanche writes it."""

    domain: str
    cert: Path
    key: Path
    ca_file: Path
    dn: str
    leaf: trustme.LeafCert = field(repr=False)

    def server_context(self) -> ssl.SSLContext:
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH, cafile=str(self.ca_file))
        context.load_cert_chain(str(self.cert), str(self.key))
        context.verify_mode = ssl.CERT_REQUIRED
        return context

    def client_context(self, *, with_certificate: bool = True) -> ssl.SSLContext:
        context = ssl.create_default_context(cafile=str(self.ca_file))
        if with_certificate:
            context.load_cert_chain(str(self.cert), str(self.key))
        return context

    def settings_for(self, settings: Any) -> None:
        """Make this process act as this operator when it delivers."""
        settings.SMTP_TLS_CERT = str(self.cert)
        settings.SMTP_TLS_KEY = str(self.key)
        settings.SMTP_CA_FILE = str(self.ca_file)
        settings.SMTP_HOSTNAME = f"mx.{self.domain}"

    def list(self) -> None:
        """Put this operator's domain and certificate DN in the liste blanche."""
        listed, _ = ListedDomain.objects.get_or_create(name=self.domain)
        OperatorCertificate.objects.get_or_create(domain=listed, dn=self.dn)


def make_operator(ca: trustme.CA, domain: str, folder: Path) -> Operator:
    leaf = ca.issue_cert(
        "127.0.0.1",
        "localhost",
        common_name=f"mx.{domain}",
        organization_name=f"Operateur {domain}",
        organization_unit_name="123456789",
    )
    folder.mkdir(parents=True, exist_ok=True)
    cert, key, ca_file = folder / "cert.pem", folder / "key.pem", folder / "ca.pem"
    leaf.cert_chain_pems[0].write_to_path(str(cert))
    for extra in leaf.cert_chain_pems[1:]:
        with cert.open("ab") as handle:
            handle.write(extra.bytes())
    leaf.private_key_pem.write_to_path(str(key))
    ca.cert_pem.write_to_path(str(ca_file))
    # The liste blanche writes DNs most specific first: CN, OU, O.
    dn = f"CN=mx.{domain},OU=123456789,O=Operateur {domain}"
    return Operator(domain, cert, key, ca_file, dn, leaf)


def shared_connections() -> dict[str, Any] | None:
    """The test's own connection for gateway threads when the test database is in memory."""
    conn = connections["default"]
    if conn.vendor == "sqlite" and conn.is_in_memory_db():
        return {"default": conn}
    return None


@contextmanager
def gateway(
    operator: Operator,
    *,
    domains: list[str] | None = None,
    port: int | None = None,
    timeout: float = 300,
) -> Iterator[Controller]:
    """The real inbound gateway (our handler) serving ``operator``'s certificate."""
    override = shared_connections()
    if override:
        override["default"].inc_thread_sharing()
    controller = make_controller(
        hostname="127.0.0.1",
        port=port or free_port(),
        handler=GatewayHandler(
            domains=domains, connections_override=override, keep_connections=bool(override)
        ),
        tls_context=operator.server_context(),
        timeout=timeout,
    )
    controller.start()
    try:
        yield controller
    finally:
        controller.stop()
        if override:
            override["default"].dec_thread_sharing()


class DatabaseSwitch:
    """The gateway's database connection, which a test can make unreachable and back.

    In production the database is another process on another host: a connection that
    fails is what a PostgreSQL restart or a network cut looks like to the gateway.
    ``down()`` points the gateway's worker threads at a database that cannot be reached
    (a closed port for PostgreSQL, a path that cannot exist for SQLite).
    """

    def __init__(self) -> None:
        conn = connections["default"]
        shared = shared_connections()
        self._copies: list[Any] = []
        self.working = shared["default"] if shared else self._copy(conn.settings_dict)
        broken = copy.deepcopy(conn.settings_dict)
        if conn.vendor == "sqlite":
            broken["NAME"] = "/nonexistent-mssante-test/db.sqlite3"
        else:
            broken["HOST"], broken["PORT"] = "127.0.0.1", str(free_port())
        self.broken = self._copy(broken)
        self.override: dict[str, Any] = {"default": self.working}

    def _copy(self, settings_dict: dict[str, Any]) -> Any:
        wrapper = type(connections["default"])(copy.deepcopy(settings_dict), "default")
        wrapper.inc_thread_sharing()
        self._copies.append(wrapper)
        return wrapper

    def down(self) -> None:
        self.override["default"] = self.broken

    def up(self) -> None:
        self.override["default"] = self.working

    def close(self) -> None:
        for wrapper in self._copies:
            wrapper.close()
            wrapper.dec_thread_sharing()


@contextmanager
def gateway_with_database_switch(operator: Operator) -> Iterator[tuple[Controller, DatabaseSwitch]]:
    """The real gateway, whose database a test can cut (``switch.down()``) and restore."""
    switch = DatabaseSwitch()
    shared = shared_connections()
    if shared:
        shared["default"].inc_thread_sharing()
    controller = make_controller(
        hostname="127.0.0.1",
        port=free_port(),
        handler=GatewayHandler(connections_override=switch.override),
        tls_context=operator.server_context(),
    )
    controller.start()
    try:
        yield controller, switch
    finally:
        controller.stop()
        switch.close()
        if shared:
            shared["default"].dec_thread_sharing()


class Sink:
    """A remote operator that only records what it accepts (an aiosmtpd handler)."""

    def __init__(self, refuse: dict[str, str] | None = None) -> None:
        self.messages: list[tuple[str, list[str], bytes]] = []
        self.refuse = refuse or {}
        self.peer_subjects: list[Any] = []

    async def handle_RCPT(
        self, server: Any, session: Any, envelope: Any, address: str, options: list[str]
    ) -> str:
        if address in self.refuse:
            return self.refuse[address]
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        self.peer_subjects.append((session.ssl or {}).get("peercert", {}).get("subject"))
        self.messages.append(
            (envelope.mail_from, list(envelope.rcpt_tos), bytes(envelope.original_content))
        )
        return "250 2.0.0 OK"


@contextmanager
def sink(operator: Operator, handler: Sink, *, port: int | None = None) -> Iterator[Controller]:
    controller = Controller(
        handler,
        hostname="127.0.0.1",
        port=port or free_port(),
        tls_context=operator.server_context(),
        require_starttls=True,
    )
    controller.start()
    try:
        yield controller
    finally:
        controller.stop()


def send(
    port: int,
    operator: Operator | None,
    mail_from: str,
    rcpt_to: list[str],
    raw: bytes,
    *,
    starttls: bool = True,
    client_cert: bool = True,
) -> dict[str, tuple[int, bytes]]:
    """Deliver like a peer would; returns smtplib's refused dict (raises on a failure)."""
    with smtplib.SMTP("127.0.0.1", port, timeout=10) as client:
        client.ehlo("mx.peer.test")
        if starttls:
            assert operator is not None
            client.starttls(context=operator.client_context(with_certificate=client_cert))
            client.ehlo("mx.peer.test")
        return client.sendmail(mail_from, rcpt_to, raw)


def simple_message(
    from_addr: str, to: str, *, subject: str = "Compte rendu", body: str = ""
) -> bytes:
    from email.message import EmailMessage
    from email.utils import make_msgid

    msg = EmailMessage()
    msg["From"] = from_addr
    msg["To"] = to
    msg["Subject"] = subject
    msg["Message-ID"] = make_msgid(domain=from_addr.rpartition("@")[2])
    msg.set_content(body or "Bonjour,\nvoici le compte rendu.\n")
    return msg.as_bytes(policy=msg.policy.clone(linesep="\r\n"))
