"""The inbound SMTP gateway: aiosmtpd, STARTTLS and a client certificate required.

Each step refuses as early as it can, and nothing is stored before DATA:

- STARTTLS before MAIL (aiosmtpd's ``require_starttls``), a client certificate
  signed by a CA of SMTP_CA_FILE (``CERT_REQUIRED``: the handshake fails without);
- MAIL FROM: the certificate's subject DN must be listed in the liste blanche for
  the sender's domain (a null sender, for reports, needs a DN listed for any domain);
- RCPT TO: only active mailboxes of the domains we serve (550 naming the address);
- DATA: the size limit (552), the charter rules (5xx with the rule's sentence), then
  the message is stored with its deliveries; 250 is sent only once the transaction
  that holds it has committed.

The database is reached from the event loop through threads: Django's ORM is
synchronous. Reads (MAIL, RCPT, reading a message at DATA) go through the loop's
executor. Writes go through one committer thread per process (``GroupCommitter``): it
takes every message whose DATA is waiting and stores them in one transaction with a
savepoint each (``services.inbound.store_receptions``), so concurrent sessions share
one commit, one flush of PostgreSQL's write-ahead log. A message whose own rows fail
rolls back alone and its session gets 451; a commit that fails gives 451 to every
session of the group and stores none of them.

What the gateway reads of the liste blanche (the DNs listed for a domain) and of the
hosted domains is kept SMTP_CACHE_SECONDS (60 s) in each process: a change there
applies to a running gateway within that time. Recipients are read at each RCPT and
again when the message is stored (a box closed in between bounces with a DSN).

Any failure of ours (the database unreachable, a bug) is answered ``451 4.3.0`` on one
clean line at whatever step it happens, and logged here: the peer keeps the message and
tries again; nothing internal reaches it.

DATA is read like a real MTA reads it (``GatewaySMTP``): lines longer than RFC 5321's
1,000 bytes and bare LF line ends are accepted and stored as received, bounded by
the message size limit; only ``<CRLF>.<CRLF>`` ends the data.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import queue
import socket
import threading
import time
import unicodedata
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import Future
from typing import Any, Generic, TypeVar

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import MISSING, SMTP, Envelope, Session, TLSSetupException
from django.conf import settings
from django.db import close_old_connections, connections

from audit import journal
from mailboxes import addresses
from mailboxes.blobs import BlobStoreUnavailable
from mailboxes.selectors import hosted_domains
from mailboxes.services.inbound import (
    Peer,
    Reception,
    ReceptionError,
    active_addresses,
    hosted_names,
    read_reception,
    store_receptions,
)
from mailboxes.transport import tls
from trust.listeblanche import DN, listed_dns, parse_dn
from trust.policy import PolicyError

log = logging.getLogger(__name__)
T = TypeVar("T")
K = TypeVar("K")
V = TypeVar("V")

# Enhanced status codes (RFC 3463) for the refusals of a received message.
_ENHANCED = {550: "5.1.1", 552: "5.3.4", 554: "5.5.1"}

# Our own failure, whatever it is: the peer keeps the message and tries again later.
TEMPORARY_FAILURE = "451 4.3.0 Temporary local problem, please try again later"

# RFC 5321 §4.5.3.1: a path is at most 256 octets with its angle brackets.
MAX_PATH = 254


def smtp_text(text: str) -> str:
    """A reply line in plain ASCII (SMTP replies are ASCII without SMTPUTF8)."""
    flat = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode("ascii")
    return " ".join(flat.replace("\r", " ").replace("\n", " ").split())[:400]


class _Unavailable(Exception):
    """A database call of the gateway failed (already logged): answer 451."""


def _bad_address(address: str) -> bool:
    """An envelope address no mail system could mean: control characters, over-long, not UTF-8."""
    if len(address) > MAX_PATH or any(ord(c) < 33 or ord(c) == 127 for c in address):
        return True
    try:
        # aiosmtpd decodes with "surrogateescape": bytes that were not UTF-8 come as
        # lone surrogates, which no database column or journal entry can hold.
        address.encode("utf-8")
    except UnicodeEncodeError:
        return True
    return False


class GatewaySMTP(SMTP):
    """aiosmtpd's SMTP session with the DATA reader of a real MTA.

    aiosmtpd refuses any line over 1,000 bytes (``500 Line too long``) and only knows
    CRLF as a line end, so a long base64 line or an attachment with bare LF line ends
    loses the message. Postfix accepts both; so does this reader (``read_data``).
    """

    _last_progress = 0.0

    def _data_progress(self) -> None:
        """Data came: restart the idle timeout, at most every 1/10 of it (and every second).

        Restarting it for each line cost a timer per line, 260 for a 20 kB message; a
        silent peer is still given up on after the timeout, give or take a tenth.
        """
        now = self.loop.time()
        if now - self._last_progress >= min(1.0, self._timeout_duration / 10):
            self._last_progress = now
            self._reset_timeout()

    async def smtp_DATA(self, arg: str) -> None:
        if await self.check_helo_needed():
            return
        if await self.check_auth_needed("DATA"):
            return
        assert self.envelope is not None
        if not self.envelope.rcpt_tos:
            await self.push("503 Error: need RCPT command")
            return
        if arg:
            await self.push("501 Syntax: DATA")
            return
        await self.push("354 End data with <CR><LF>.<CR><LF>")
        try:
            # The idle timeout runs from each piece received, not from the DATA command:
            # a large message on a slow link is not cut off midway (RFC 5321 §4.5.3.2
            # times each block, not the whole transfer).
            content = await read_data(self._reader, self.data_size_limit, self._data_progress)
        except asyncio.IncompleteReadError:
            # The peer went away before <CRLF>.<CRLF>: it got no 250, nothing is stored.
            log.info("%r: connection lost during DATA", self.session and self.session.peer)
            self._writer.close()
            return
        except asyncio.CancelledError:
            self._writer.close()
            raise
        if content is None:
            self._set_post_data_state()
            await self.push("552 5.3.4 Message too big")
            return
        self.envelope.content = content
        self.envelope.original_content = content
        status = await self._call_handler_hook("DATA")
        self._set_post_data_state()
        await self.push("250 OK" if status is MISSING else status)


async def read_data(
    reader: asyncio.StreamReader,
    limit: int | None,
    on_progress: Callable[[], object] | None = None,
) -> bytes | None:
    """The message after DATA, dot-unstuffed; None when it is over ``limit`` bytes.

    Lines of any length are accepted (read in pieces of the stream's buffer), so memory
    stays bounded by ``limit`` alone. A bare LF ends a line like CRLF does, for
    dot-unstuffing, and is kept as received; only ``<CRLF>.<CRLF>`` ends the data, so
    ``<LF>.<CRLF>`` or ``<CRLF>.<LF>`` cannot smuggle a second message in.
    """
    data = bytearray()
    size = 0
    too_big = False
    line_start = True  # the next piece begins a line
    after_crlf = True  # the last line ended with CRLF (the DATA command's did)
    previous = b"\n"
    while True:
        try:
            piece = await reader.readuntil(b"\n")
        except asyncio.LimitOverrunError as exc:
            # Part of a line longer than the stream's buffer: take what is there.
            piece = await reader.read(exc.consumed)
            if not piece:
                raise asyncio.IncompleteReadError(b"", None) from None
        if on_progress is not None:
            on_progress()
        if line_start and after_crlf and piece == b".\r\n":
            break
        size += len(piece)
        ends = piece.endswith(b"\n")
        crlf = piece.endswith(b"\r\n") or (piece == b"\n" and previous == b"\r")
        previous = piece[-1:]
        if line_start and piece.startswith(b"."):
            piece = piece[1:]  # RFC 5321 §4.5.2 transparency
        if limit and size > limit:
            # Keep reading to the end (the reply comes after it), but drop what came.
            too_big = True
            data.clear()
        if not too_big:
            data += piece
        line_start = ends
        if ends:
            after_crlf = crlf
    return None if too_big else bytes(data)


class _Kept(Generic[K, V]):
    """Values the gateway read from the database, kept ``seconds`` in this process.

    Readers in several threads may load the same value at once: the last one is kept.
    At most ``size`` keys (peers choose the domains looked up): beyond, all are dropped.
    """

    def __init__(self, seconds: float, *, size: int = 10_000) -> None:
        self.seconds = seconds
        self.size = size
        self._values: dict[K, tuple[float, V]] = {}

    def fresh(self, key: K) -> V | None:
        """The value kept for ``key`` if it is still fresh, else None."""
        kept = self._values.get(key)
        if kept is None or time.monotonic() >= kept[0]:
            return None
        return kept[1]

    def get(self, key: K, load: Callable[[], V]) -> V:
        """The value for ``key``, loaded (and kept) when there is none fresh."""
        value = self.fresh(key)
        if value is None:
            value = load()
            if self.seconds > 0:
                if len(self._values) >= self.size:
                    self._values.clear()
                self._values[key] = (time.monotonic() + self.seconds, value)
        return value


_STOP = object()


class GroupCommitter(Generic[T]):
    """One thread that stores together what every session has waiting (group commit).

    ``submit(item)`` hands it one item and returns a future. The thread takes every item
    waiting, at most ``limit``, and once it has one waits at most ``wait`` seconds for
    more; then it calls ``store(items)`` once for all of them. ``store`` returns one
    outcome per item, a value or the exception that item alone got, or raises, which
    fails every item of the group. An item whose session went away before its group
    began (its future cancelled) is left out.
    """

    def __init__(
        self,
        store: Callable[[list[T]], Sequence[object]],
        *,
        limit: int,
        wait: float,
        name: str = "smtp-committer",
    ) -> None:
        self._store = store
        self.limit = max(1, limit)
        self.wait = max(0.0, wait)
        self.name = name
        self._queue: queue.SimpleQueue[Any] = queue.SimpleQueue()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()
        self._closed = False
        # The sizes of the last groups stored (for the tests), and totals for the log.
        self.sizes: list[int] = []
        self.groups = self.items = self.largest = 0

    def submit(self, item: T) -> Future[Any]:
        future: Future[Any] = Future()
        with self._lock:
            if self._closed:
                raise RuntimeError("the gateway is stopping")
            if self._thread is None:
                self._thread = threading.Thread(target=self._loop, name=self.name, daemon=True)
                self._thread.start()
            self._queue.put((item, future))
        return future

    def close(self, timeout: float = 60.0) -> None:
        """Store what is waiting, then stop the thread."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
            thread = self._thread
            self._queue.put(_STOP)
        if thread is not None:
            thread.join(timeout)
        log.info(
            "SMTP gateway: %d messages stored in %d transactions (at most %d together)",
            self.items,
            self.groups,
            self.largest,
        )

    def _take(self) -> tuple[list[tuple[T, Future[Any]]], bool]:
        """The next group (blocking for its first item), and whether to stop after it."""
        first = self._queue.get()
        if first is _STOP:
            return [], True
        group = [first]
        deadline = time.monotonic() + self.wait
        while len(group) < self.limit:
            try:
                job = self._queue.get_nowait()
            except queue.Empty:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    break
                try:
                    job = self._queue.get(timeout=remaining)
                except queue.Empty:
                    break
            if job is _STOP:
                return group, True
            group.append(job)
        return group, False

    def _loop(self) -> None:
        stop = False
        while not stop:
            group, stop = self._take()
            jobs = [
                (item, future) for item, future in group if future.set_running_or_notify_cancel()
            ]
            if not jobs:
                continue
            self.sizes = [*self.sizes[-999:], len(jobs)]
            self.groups += 1
            self.items += len(jobs)
            self.largest = max(self.largest, len(jobs))
            try:
                outcomes = list(self._store([item for item, _future in jobs]))
                if len(outcomes) != len(jobs):
                    raise RuntimeError(f"{len(outcomes)} outcomes for {len(jobs)} messages")
            except BaseException as exc:
                # The transaction did not commit: every session of the group hears it.
                for _item, future in jobs:
                    future.set_exception(exc)
                if not isinstance(exc, Exception):
                    self._closed = True
                    raise
                continue
            for (_item, future), outcome in zip(jobs, outcomes, strict=True):
                if isinstance(outcome, BaseException):
                    future.set_exception(outcome)
                else:
                    future.set_result(outcome)
        # Whatever came after the stop is not stored: its session is ending too.
        while True:
            try:
                job = self._queue.get_nowait()
            except queue.Empty:
                break
            if job is not _STOP and job[1].set_running_or_notify_cancel():
                job[1].set_exception(RuntimeError("the gateway is stopping"))


class GatewayController(Controller):
    """aiosmtpd's Controller serving ``GatewaySMTP`` sessions.

    ``sock``: a listening socket made by ``listening_socket`` (``manage.py smtpd``), maybe
    shared with other processes of the gateway; else aiosmtpd binds ``hostname:port``.
    Stopping it stops its handler's committer.
    """

    def __init__(self, handler: Any, *, sock: socket.socket | None = None, **kwargs: Any) -> None:
        super().__init__(handler, **kwargs)
        self.sock = sock
        # aiosmtpd warns at every connection that a client certificate is required:
        # that is the gateway's rule, not news.
        logging.getLogger("mail.log").addFilter(_quiet_client_certificate_warning)

    def factory(self) -> SMTP:
        return GatewaySMTP(self.handler, **self.SMTP_kwargs)

    def _create_server(self) -> Any:
        if self.sock is None:
            return super()._create_server()
        return self.loop.create_server(self._factory_invoker, sock=self.sock, ssl=self.ssl_context)

    def _trigger_server(self) -> None:
        if self.sock is None:
            super()._trigger_server()
            return
        # aiosmtpd connects to itself to see its factory work; on a socket shared with
        # other processes another one may take that connection: call the factory here.
        self.loop.call_soon_threadsafe(self._factory_invoker)

    def stop(self, no_assert: bool = False) -> None:
        super().stop(no_assert)
        close = getattr(self.handler, "close", None)
        if close is not None:
            close()


def _quiet_client_certificate_warning(record: logging.LogRecord) -> bool:
    return not str(record.msg).startswith("tls_context.verify_mode not in")


class ThreadedDatabase:
    """The database from an asyncio server: Django's ORM runs in the loop's worker threads.

    ``connections_override``: database connections to use in the worker threads (tests on
    in-memory SQLite). ``keep_connections`` False: close the thread's connections after
    each call (tests, whose database must be droppable once the server stops).
    """

    def __init__(
        self,
        *,
        connections_override: dict[str, Any] | None = None,
        keep_connections: bool = True,
    ) -> None:
        self.connections_override = connections_override
        # One connection shared by every thread (in-memory SQLite): one user at a time.
        self._shared = threading.Lock() if connections_override else None
        self.keep_connections = keep_connections

    async def _in_thread(self, func: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(None, functools.partial(self._run, func, *args, **kwargs))

    def _run(self, func: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        if self.connections_override:
            assert self._shared is not None
            with self._shared:
                for alias, conn in self.connections_override.items():
                    connections[alias] = conn
                return func(*args, **kwargs)
        # Connections stay open between calls (one per thread, no health-check query
        # each time); one that failed is dropped so the next call reconnects.
        try:
            return func(*args, **kwargs)
        except Exception:
            close_old_connections()
            raise
        finally:
            if not self.keep_connections:
                connections.close_all()


class GatewayHandler(ThreadedDatabase):
    """aiosmtpd handler of the gateway (one instance serves every connection)."""

    def __init__(
        self,
        *,
        domains: Iterable[str] | None = None,
        connections_override: dict[str, Any] | None = None,
        keep_connections: bool = True,
    ) -> None:
        super().__init__(
            connections_override=connections_override, keep_connections=keep_connections
        )
        # ``domains``: the domains this gateway accepts mail for (default: the active
        # hosted domains, read at each RCPT).
        self.domains = [d.lower() for d in domains] if domains is not None else None
        self._listed: _Kept[str | None, frozenset[DN]] = _Kept(settings.SMTP_CACHE_SECONDS)
        self._hosted: _Kept[str, frozenset[str]] = _Kept(settings.SMTP_CACHE_SECONDS)
        self.committer: GroupCommitter[Reception] = GroupCommitter(
            self._store_group,
            limit=settings.SMTP_GROUP_COMMIT_MAX,
            wait=settings.SMTP_GROUP_COMMIT_WAIT_MS / 1000,
        )

    def close(self) -> None:
        """Store what is waiting and stop the committer (the gateway is stopping)."""
        self.committer.close()

    async def _db(self, func: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        """Run ``func`` in a worker thread; a failure that is not a refusal is logged."""
        try:
            return await self._in_thread(func, *args, **kwargs)
        except (ReceptionError, PolicyError):
            raise
        except BlobStoreUnavailable:
            log.warning("SMTP gateway: the blob store refused a write")
            raise
        except Exception as exc:
            log.exception("SMTP gateway: %s failed", getattr(func, "__name__", func))
            raise _Unavailable from exc

    # What the gateway keeps a while (SMTP_CACHE_SECONDS): read in a worker thread.

    def _listed_dns(self, domain: str | None) -> frozenset[DN]:
        """The DNs the liste blanche lists for ``domain`` (for any domain when None)."""
        return self._listed.get(domain, lambda: listed_dns(domain))

    def _allowed(self, domain: str, subject: tuple[Any, ...]) -> bool:
        wanted = parse_dn(subject)
        return bool(wanted) and wanted in self._listed_dns(domain)

    def _patient_domains(self) -> frozenset[str]:
        return self._hosted.get("patient", lambda: hosted_domains().patient)

    def _is_hosted(self, domain: str) -> bool:
        if self.domains is not None:
            return domain in self.domains
        return domain in self._hosted.get("all", hosted_names)

    def _read(
        self, raw: bytes, mail_from: str, rcpt_tos: list[str], peer: Peer, label: str
    ) -> Reception:
        return read_reception(
            raw,
            mail_from,
            rcpt_tos,
            peer=peer,
            label=label,
            patient_domains=self._patient_domains(),
        )

    def _store_group(self, receptions: list[Reception]) -> list[Any]:
        """(The committer's thread) store a group of messages in one transaction."""
        return self._run(
            store_receptions,
            receptions,
            domains=self.domains,
            allowed=self._allowed,
            hosted=self._is_hosted,
        )

    async def _store(self, reception: Reception) -> Any:
        """Hand a read message to the committer; its Message once committed."""
        try:
            return await asyncio.wrap_future(self.committer.submit(reception))
        except (ReceptionError, PolicyError):
            raise
        except BlobStoreUnavailable:
            log.warning("SMTP gateway: the blob store refused a write")
            raise
        except Exception as exc:
            log.error("SMTP gateway: storing a received message failed", exc_info=exc)
            raise _Unavailable from exc

    async def handle_exception(self, error: Exception) -> str:
        # Anything aiosmtpd's session code raises: its default reply is a permanent
        # "500 Error: (Class) text", which bounces the message and shows our internals.
        if isinstance(error, TLSSetupException):
            # A failed handshake (no or wrong client certificate): the peer's doing, and
            # aiosmtpd closes the connection without a reply.
            log.info("SMTP gateway: TLS handshake failed: %s", error.__cause__ or error)
        else:
            log.error("SMTP gateway: unexpected error", exc_info=error)
        return TEMPORARY_FAILURE

    @staticmethod
    def _peer_subject(session: Session) -> Any:
        peercert = (session.ssl or {}).get("peercert") or {}
        return peercert.get("subject")

    def handle_STARTTLS(self, server: SMTP, session: Session, envelope: Envelope) -> bool:
        # Called synchronously by aiosmtpd right after the handshake. CERT_REQUIRED
        # already fails the handshake without a certificate; this keeps the rule true
        # whatever the context a caller passes.
        return bool(self._peer_subject(session))

    async def handle_MAIL(
        self,
        server: SMTP,
        session: Session,
        envelope: Envelope,
        address: str,
        mail_options: list[str],
    ) -> str:
        subject = self._peer_subject(session)
        if not subject:
            return "530 5.7.0 Client certificate required"
        if _bad_address(address):
            return "553 5.1.7 Malformed sender address"
        null_sender = address in ("", "<>")
        domain = "" if null_sender else addresses.domain_of(address.strip().lower())
        # A null sender binds no domain: its certificate must be listed for any.
        key = None if null_sender else domain
        try:
            listed = self._listed.fresh(key)
            if listed is None:
                listed = await self._db(self._listed_dns, key)
            wanted = parse_dn(subject)
            if not (wanted and wanted in listed):
                dn = tls.subject_text(subject)
                await self._db(
                    journal.record,
                    "smtp.peer_refused",
                    peer=str(session.peer)[:100],
                    mail_from=address[:254],
                    certificate=dn[:500],
                )
                log.warning("peer %s refused: DN %r not listed for %r", session.peer, dn, domain)
                return smtp_text(
                    f"550 5.7.1 Certificate subject {dn} is not listed in the liste blanche "
                    f"for domain {domain or '(null sender)'}"
                )
        except _Unavailable:
            return TEMPORARY_FAILURE
        envelope.mail_from = address
        envelope.mail_options.extend(mail_options)
        return "250 2.1.0 OK"

    async def handle_RCPT(
        self,
        server: SMTP,
        session: Session,
        envelope: Envelope,
        address: str,
        rcpt_options: list[str],
    ) -> str:
        if len(envelope.rcpt_tos) >= settings.MAX_RECIPIENTS:
            return smtp_text(
                f"452 4.5.3 Too many recipients: at most {settings.MAX_RECIPIENTS} "
                "per message (MSSante trust space rule)"
            )
        if _bad_address(address):
            return "553 5.1.3 Malformed recipient address"
        try:
            active = await self._db(active_addresses, [address], self.domains)
        except _Unavailable:
            return TEMPORARY_FAILURE
        if not active:
            return smtp_text(f"550 5.1.1 <{address}>: no active mailbox at this address")
        envelope.rcpt_tos.append(address)
        envelope.rcpt_options.extend(rcpt_options)
        return "250 2.1.5 OK"

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        raw = envelope.original_content or b""
        subject = self._peer_subject(session)
        mail_from = envelope.mail_from or ""
        null_sender = mail_from in ("", "<>")
        peer = Peer(
            subject=tuple(subject or ()),
            domain="" if null_sender else addresses.domain_of(mail_from.strip().lower()),
        )
        try:
            reception = await self._db(
                self._read,
                bytes(raw),
                mail_from,
                list(envelope.rcpt_tos),
                peer,
                f"{session.peer} {tls.subject_text(subject)}",
            )
            message = await self._store(reception)
        except ReceptionError as exc:
            return smtp_text(f"{exc.code} {_ENHANCED.get(exc.code, '5.0.0')} {exc}")
        except PolicyError as exc:
            return smtp_text(f"550 5.7.1 {exc}")
        except BlobStoreUnavailable:
            # Nothing stored: the peer keeps the message and tries again later.
            return "452 4.3.1 Insufficient system storage, please try again later"
        except _Unavailable:
            return TEMPORARY_FAILURE
        return smtp_text(f"250 2.0.0 OK {message.message_id}")


def listening_socket(host: str, port: int, *, backlog: int = 1024) -> socket.socket:
    """The gateway's listening socket, bound, for one or several processes to serve.

    Created as a TCP socket (``IPPROTO_TCP``), which is what makes asyncio turn Nagle's
    algorithm off (TCP_NODELAY) on each connection it accepts: created without the
    protocol, every reply waited ~40 ms for the peer's delayed ACK.
    """
    family, _type, _proto, _name, address = socket.getaddrinfo(
        host or None, port, type=socket.SOCK_STREAM, proto=socket.IPPROTO_TCP,
        flags=socket.AI_PASSIVE,
    )[0]  # fmt: skip
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(address)
        sock.listen(backlog)
        sock.setblocking(False)
    except BaseException:
        sock.close()
        raise
    return sock


def make_controller(
    *,
    hostname: str | None = None,
    port: int | None = None,
    handler: GatewayHandler | None = None,
    tls_context: Any = None,
    timeout: float = 300,
    sock: socket.socket | None = None,
) -> GatewayController:
    """The gateway's aiosmtpd Controller from settings (not started).

    ``timeout``: seconds a peer may stay silent (RFC 5321 §4.5.3.2 asks at least 5
    minutes of the server). ``sock``: serve this listening socket (``listening_socket``)
    instead of binding ``hostname:port``.
    """
    listen_host, listen_port = settings.SMTP_LISTEN
    return GatewayController(
        handler or GatewayHandler(),
        sock=sock,
        hostname=hostname or listen_host,
        port=listen_port if port is None else port,
        server_hostname=settings.SMTP_HOSTNAME,
        tls_context=tls_context or tls.server_context(),
        require_starttls=True,
        data_size_limit=settings.SMTP_MAX_MESSAGE_BYTES,
        ident="MSSante gateway",
        # Peers authenticate with their certificate only: no password AUTH on offer.
        auth_exclude_mechanism=["LOGIN", "PLAIN"],
        # 8-bit bodies are passed through untouched (bytes, never decoded).
        decode_data=False,
        timeout=timeout,
    )
