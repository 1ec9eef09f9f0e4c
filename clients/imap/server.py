"""The IMAP server: pymap's connection loop and parser, our rules, our backend.

What we change in pymap's connection (by subclassing, never by parsing IMAP ourselves):

- no login before TLS, even from localhost (pymap trusts localhost; a proxy or a test
  client on the same host must not learn to send a password in clear): LOGINDISABLED
  and no AUTH= until STARTTLS, or TLS from the first byte on the implicit port (993);
- PLAIN and LOGIN only (an application password is checked against its hash: no
  mechanism that needs the clear password stored);
- a line or a LITERAL+ literal beyond the bounds closes the connection with a BYE in
  French rather than filling memory (pymap reads a LITERAL+ literal before parsing);
- the refusals in French (ASCII: IMAP without UTF8=ACCEPT).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
import socket
import ssl
import threading
from argparse import Namespace
from collections.abc import Sequence
from contextlib import AsyncExitStack, closing
from dataclasses import dataclass, field
from typing import Any, cast

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.utils.translation import gettext as _
from proxyprotocol.reader import ProxyProtocolReader
from proxyprotocol.sock import SocketInfo
from proxyprotocol.version import ProxyProtocolVersion
from pymap.context import connection_exit
from pymap.imap import IMAPConnection, IMAPServer
from pymap.imap.state import ConnectionState
from pymap.interfaces.login import LoginInterface
from pymap.parsing.command.nonauth import AuthenticateCommand, LoginCommand
from pymap.parsing.command.select import FetchCommand
from pymap.parsing.commands import Commands
from pymap.parsing.response import (
    CommandResponse,
    ResponseBye,
    ResponseCode,
    ResponseNo,
    ResponseOk,
    UntaggedResponse,
)
from pysasl import SASLAuth
from pysasl.creds.server import ServerCredentials
from pysasl.mechanism.login import LoginMechanism
from pysasl.mechanism.plain import PlainMechanism

from clients.imap import commands as imap_commands
from clients.imap import speedups
from clients.imap.backend import Config, Login, imap_text
from clients.imap.planning import FETCH_NEEDS, FETCH_OPENS, fetch_needs, opens_a_body
from mailboxes.transport.inbound import ThreadedDatabase

log = logging.getLogger(__name__)

# A command line (without its literals) longer than this is no client's.
MAX_LINE = 64 * 1024
# Seconds of silence before the connection is closed (RFC 3501 5.4: 30 minutes at least
# once signed in); before login, a client has no reason to wait.
LOGIN_TIMEOUT = 60.0
SIGNED_IN_TIMEOUT = 31 * 60.0
PRIVACY = ResponseCode.of(b"PRIVACYREQUIRED")


def server_context() -> ssl.SSLContext:
    """The certificate clients see (CLIENTS_TLS_CERT, or the gateway's)."""
    cert = settings.CLIENTS_TLS_CERT or settings.SMTP_TLS_CERT
    key = settings.CLIENTS_TLS_KEY or settings.SMTP_TLS_KEY
    if not cert or not key:
        raise ImproperlyConfigured(
            "IMAP : CLIENTS_TLS_CERT et CLIENTS_TLS_KEY (ou SMTP_TLS_CERT et SMTP_TLS_KEY) "
            "non renseignés."
        )
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.load_cert_chain(cert, key)
    return context


class OurConfig(Config):
    @property
    def tls_auth(self) -> SASLAuth:
        return SASLAuth([PlainMechanism(), LoginMechanism()])

    @property
    def commands(self) -> Commands:
        return imap_commands.commands()

    @property
    def login_capability(self) -> Sequence[bytes]:
        return [*super().login_capability, b"NAMESPACE", b"ENABLE"]


class State(ConnectionState):
    """A connection's state: pymap's, with TLS required before any credential."""

    def __init__(self, login: Any, config: Any, *, implicit_tls: bool) -> None:
        super().__init__(login, config)
        self.implicit_tls = implicit_tls
        if implicit_tls:
            self.auth = config.tls_auth
            if b"STARTTLS" in self._capability:
                self._capability.remove(b"STARTTLS")

    async def do_greeting(self) -> CommandResponse:
        # Not pymap's: it would offer a clear-text login to a client on localhost.
        return ResponseOk(b"*", self.config.greeting, self.capability)

    def _encrypted(self) -> bool:
        return self.auth.get_server(b"PLAIN") is not None

    async def do_login(self, cmd: LoginCommand) -> Any:
        if not self._encrypted():
            return self._privacy(cmd.tag), None
        return await super().do_login(cmd)

    async def do_authenticate(
        self, cmd: AuthenticateCommand | LoginCommand, creds: ServerCredentials | None
    ) -> CommandResponse:
        if not creds:
            if not self._encrypted():
                return self._privacy(cmd.tag)
            return ResponseNo(
                cmd.tag, imap_text(_("Méthode d'authentification non proposée.")).encode()
            )
        return await super().do_authenticate(cmd, creds)

    async def do_namespace(self, cmd: imap_commands.NamespaceCommand) -> Any:
        response = ResponseOk(cmd.tag, b"NAMESPACE completed.")
        response.add_untagged(UntaggedResponse(imap_commands.namespace_response()))
        return response, None

    async def do_enable(self, cmd: imap_commands.EnableCommand) -> Any:
        # Nothing to enable (RFC 5161 3.1: the server lists only what it enabled).
        response = ResponseOk(cmd.tag, b"ENABLE completed.")
        response.add_untagged(UntaggedResponse(b"ENABLED"))
        return response, None

    async def do_fetch(self, cmd: FetchCommand) -> Any:
        FETCH_OPENS.set(opens_a_body(cmd.attributes))
        FETCH_NEEDS.set(fetch_needs(cmd.attributes))
        return await super().do_fetch(cmd)

    @staticmethod
    def _privacy(tag: bytes) -> ResponseNo:
        return ResponseNo(
            tag,
            imap_text(
                _("Connexion en clair refusée : passez en TLS (STARTTLS) avant de vous identifier.")
            ).encode(),
            PRIVACY,
        )


class TooBig(EOFError):
    """The client sent more than a command may hold: the connection ends (after a BYE)."""


_LITERAL_PLUS = re.compile(rb"{(\d+)\+}\r?\n$")


class _Buffered:
    """A write stream that hands its bytes to the connection by chunks of 64 KiB."""

    def __init__(self, writer: Any) -> None:
        self.writer = writer
        self.buffer = bytearray()

    def write(self, data: bytes) -> None:
        # (About 80 pieces per message of a FETCH: this is kept to the least.)
        buffer = self.buffer
        buffer += data
        # Only at the end of a line: pymap writes a line by pieces ("* 3 FETCH ", then
        # "(FLAGS ())"), and a client reading lines without blocking (IMAPClient's IDLE)
        # takes a line cut across two TLS records for a broken one.
        if len(buffer) >= 65536 and buffer.endswith(b"\r\n"):
            self.flush()

    def flush(self) -> None:
        if self.buffer:
            self.writer.write(bytes(self.buffer))
            self.buffer = bytearray()


class Connection(IMAPConnection):
    """pymap's connection with bounded reads."""

    state: State | None = None

    async def _read(self, coroutine: Any) -> bytes:
        # A client that says nothing is let go: soon before login (a socket held for
        # nothing), after the RFC's 30 minutes once signed in (IDLE is renewed before).
        signed_in = self.state is not None and self.state._session is not None
        timeout = SIGNED_IN_TIMEOUT if signed_in else LOGIN_TIMEOUT
        try:
            return bytes(await asyncio.wait_for(coroutine, timeout))
        except TimeoutError:
            await self.write_response(
                ResponseBye(imap_text(_("Inactivité : connexion fermée.")).encode())
            )
            raise TooBig() from None

    async def readline(self) -> memoryview:
        max_literal = self.params.max_append_len or settings.MESSAGE_MAX_BYTES
        try:
            buf = bytearray(await self._read(self.reader.readline()))
            while True:
                if len(buf) > MAX_LINE + max_literal:
                    await self._too_big()
                if not buf.endswith(b"\n"):
                    raise EOFError()
                match = (
                    _LITERAL_PLUS.search(buf[-40:])
                    if buf.endswith(b"+}\n") or buf.endswith(b"+}\r\n")
                    else None
                )
                if match is None:
                    return memoryview(buf)
                length = int(match.group(1))
                if length > max_literal:
                    await self._too_big()
                buf += await self._read(self.reader.readexactly(length))
                buf += await self._read(self.reader.readline())
        except (ValueError, asyncio.LimitOverrunError):
            # A line past the reader's limit (no end of line in 64 KiB).
            await self._too_big()
            raise  # not reached

    async def write_response(self, resp: Any) -> None:
        """pymap's, with the untagged responses gathered into large writes cut at line ends:
        a FETCH of 1,000 messages is a few TLS records, not 1,000, and a small response one
        (its bytes are not made a second time for a debug log nobody reads)."""
        buffered = _Buffered(self.writer)
        try:
            await resp.async_write(buffered)
            buffered.flush()
            await self.writer.drain()
        except ConnectionError:
            pass
        else:
            if logging.getLogger("pymap.imap").isEnabledFor(logging.DEBUG):
                self._print("%s <--| %s", bytes(resp))

    async def read_continuation(self, literal_length: int) -> memoryview:
        literal = await self._read(self.reader.readexactly(literal_length))
        line = await self.readline()
        return memoryview(literal + bytes(line))

    async def _too_big(self) -> None:
        await self.write_response(
            ResponseBye(
                imap_text(_("Commande trop longue : connexion fermée.")).encode(),
                ResponseCode.of(b"TOOBIG"),
            )
        )
        raise TooBig()


class Server(IMAPServer):
    __slots__ = ["implicit_tls"]

    def __init__(self, login: Login, config: Config, *, implicit_tls: bool) -> None:
        # Our Login/Identity/Session follow pymap's protocols by duck typing (the session
        # is not declared a SessionInterface: its methods narrow the message type).
        super().__init__(cast(LoginInterface, login), config)
        self.implicit_tls = implicit_tls

    async def __call__(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, sock_info: SocketInfo
    ) -> None:
        conn = Connection(self.commands, self._config, reader, writer, sock_info)
        state = State(self._login, self._config, implicit_tls=self.implicit_tls)
        conn.state = state
        try:
            async with AsyncExitStack() as stack:
                connection_exit.set(stack)
                stack.enter_context(closing(conn))
                await conn.run(state)
        except (ConnectionError, EOFError, ssl.SSLError):
            pass
        except Exception:
            # One connection's failure is logged (no content) and ends that connection only.
            log.exception("imap: a connection ended on an error")


def make_config(
    *, host: str, port: int, tls_context: ssl.SSLContext, db: ThreadedDatabase | None = None
) -> OurConfig:
    if not speedups.apply():
        log.warning(
            "imap: pymap is not %s: its byte formatting is left as it is", speedups.PYMAP_VERSION
        )
    args = Namespace(passlib_cfg=None, proxy_protocol=None, debug=False)
    return OurConfig(
        args,
        db=db or ThreadedDatabase(),
        host=host,
        port=port,
        ssl_context=tls_context,
        tls_enabled=True,
        reject_dnsbl=False,
        proxy_protocol=ProxyProtocolVersion.get(None),
        max_append_len=settings.MESSAGE_MAX_BYTES,
        bad_command_limit=5,
        invalid_user_sleep=0,
    )


@dataclass
class ImapHandle:
    """A running IMAP server (in its own thread and event loop): its port, and stop()."""

    host: str
    port: int
    tls_port: int | None
    _loop: asyncio.AbstractEventLoop
    _thread: Any
    _servers: list[asyncio.AbstractServer] = field(default_factory=list)

    def stop(self) -> None:
        async def close() -> None:
            for server in self._servers:
                server.close()
            # The connections still open and the idle watcher end with the loop.
            others = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
            for task in others:
                task.cancel()
            await asyncio.wait(others, timeout=5) if others else None
            for server in self._servers:
                await server.wait_closed()

        if self._loop.is_running():
            # Stopping: whatever the close says, the loop goes next.
            with contextlib.suppress(Exception):
                asyncio.run_coroutine_threadsafe(close(), self._loop).result(timeout=10)
            self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=10)


async def serve(
    config: Config, *, host: str, port: int, implicit_tls: bool = False, sock: Any = None
) -> asyncio.AbstractServer:
    """Start listening (STARTTLS, or TLS from the first byte); the asyncio server."""
    handler = Server(Login(config), config, implicit_tls=implicit_tls)
    callback = ProxyProtocolReader(config.proxy_protocol).get_callback(handler)
    ssl_context = config.ssl_context if implicit_tls else None
    if sock is not None:
        return await asyncio.start_server(callback, sock=sock, ssl=ssl_context, limit=MAX_LINE)
    return await asyncio.start_server(
        callback, host=host, port=port, ssl=ssl_context, limit=MAX_LINE
    )


def start_imap_server(
    host: str,
    port: int,
    ssl_context: ssl.SSLContext,
    *,
    tls_port: int | None = None,
    db: ThreadedDatabase | None = None,
    sock: socket.socket | None = None,
    tls_sock: socket.socket | None = None,
) -> ImapHandle:
    """The IMAP server in a thread of its own (STARTTLS on ``port``, TLS on ``tls_port``).

    ``port`` 0: a free port (read ``handle.port``). For the command and for tests (the
    benchmark and the mail client tests start it the same way). ``sock``/``tls_sock``:
    sockets already bound (the command binds them first, to report a busy port).
    """
    loop = asyncio.new_event_loop()
    config = make_config(host=host, port=port, tls_context=ssl_context, db=db)
    started: dict[str, Any] = {}
    ready = threading.Event()

    def run() -> None:
        asyncio.set_event_loop(loop)
        config.apply_context()

        async def begin() -> None:
            servers = [await serve(config, host=host, port=port, sock=sock)]
            if tls_port is not None or tls_sock is not None:
                servers.append(
                    await serve(
                        config,
                        host=host,
                        port=tls_port or 0,
                        implicit_tls=True,
                        sock=tls_sock,
                    )
                )
            started["servers"] = servers

        try:
            loop.run_until_complete(begin())
        except BaseException as exc:
            started["error"] = exc
            ready.set()
            return
        ready.set()
        loop.run_forever()
        loop.close()

    thread = threading.Thread(target=run, name="imap-server", daemon=True)
    thread.start()
    ready.wait(timeout=30)
    if "error" in started:
        raise started["error"]
    servers = started["servers"]
    ports = [s.sockets[0].getsockname()[1] for s in servers]
    return ImapHandle(
        host=host,
        port=ports[0],
        tls_port=ports[1] if len(ports) > 1 else None,
        _loop=loop,
        _thread=thread,
        _servers=servers,
    )
