"""The inbound SMTP gateway: aiosmtpd, STARTTLS and a client certificate required.

Each step refuses as early as it can, and nothing is stored before DATA:

- STARTTLS before MAIL (aiosmtpd's ``require_starttls``), a client certificate
  signed by a CA of SMTP_CA_FILE (``CERT_REQUIRED``: the handshake fails without);
- MAIL FROM: the certificate's subject DN must be listed in the liste blanche for
  the sender's domain (a null sender, for reports, needs a DN listed for any domain);
- RCPT TO: only active mailboxes of the domains we serve (550 naming the address);
- DATA: the size limit (552), the charter rules (5xx with the rule's sentence),
  then ``receive_message`` stores the message and its deliveries; 250 is sent only
  once that transaction is committed.

The database is reached from the event loop through a thread (``run_in_executor``):
Django's ORM is synchronous. Any failure of ours (the database unreachable, a bug)
is answered ``451 4.3.0`` on one clean line at whatever step it happens, and logged
here: the peer keeps the message and tries again; nothing internal reaches it.

DATA is read like a real MTA reads it (``GatewaySMTP``): lines longer than RFC 5321's
1,000 bytes and bare LF line ends are accepted and stored as received, bounded by
the message size limit; only ``<CRLF>.<CRLF>`` ends the data.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import unicodedata
from collections.abc import Callable, Iterable
from typing import Any, TypeVar

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import MISSING, SMTP, Envelope, Session, TLSSetupException
from django.conf import settings
from django.db import close_old_connections, connections

from audit import journal
from mailboxes import addresses
from mailboxes.blobs import BlobStoreUnavailable
from mailboxes.services.inbound import Peer, ReceptionError, local_mailbox, receive_message
from mailboxes.transport import tls
from trust.listeblanche import listed_anywhere, peer_allowed
from trust.policy import PolicyError

log = logging.getLogger(__name__)
T = TypeVar("T")

# Enhanced status codes (RFC 3463) for the refusals of receive_message.
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
            content = await read_data(self._reader, self.data_size_limit, self._reset_timeout)
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


class GatewayController(Controller):
    """aiosmtpd's Controller serving ``GatewaySMTP`` sessions."""

    def factory(self) -> SMTP:
        return GatewaySMTP(self.handler, **self.SMTP_kwargs)


class GatewayHandler:
    """aiosmtpd handler of the gateway (one instance serves every connection)."""

    def __init__(
        self,
        *,
        domains: Iterable[str] | None = None,
        connections_override: dict[str, Any] | None = None,
        keep_connections: bool = True,
    ) -> None:
        # ``domains``: the domains this gateway accepts mail for (default: the active
        # hosted domains, read at each RCPT). ``connections_override``: database
        # connections to use in the worker threads (tests on in-memory SQLite).
        self.domains = [d.lower() for d in domains] if domains is not None else None
        self.connections_override = connections_override
        # False: close the thread's connections after each call (tests, whose database
        # must be droppable once the gateway stops).
        self.keep_connections = keep_connections

    async def _db(self, func: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        """Run ``func`` in a worker thread; a failure that is not a refusal is logged."""
        loop = asyncio.get_running_loop()
        try:
            return await loop.run_in_executor(
                None, functools.partial(self._run, func, *args, **kwargs)
            )
        except (ReceptionError, PolicyError):
            raise
        except BlobStoreUnavailable:
            log.warning("SMTP gateway: the blob store refused a write")
            raise
        except Exception as exc:
            log.exception("SMTP gateway: %s failed", getattr(func, "__name__", func))
            raise _Unavailable from exc

    def _run(self, func: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        if self.connections_override:
            for alias, conn in self.connections_override.items():
                connections[alias] = conn
            return func(*args, **kwargs)
        # Connections stay open between calls (one per worker thread, no health-check
        # query each time); one that failed is dropped so the next call reconnects.
        try:
            return func(*args, **kwargs)
        except Exception:
            close_old_connections()
            raise
        finally:
            if not self.keep_connections:
                connections.close_all()

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
        try:
            if null_sender:
                allowed = await self._db(listed_anywhere, subject)
            else:
                allowed = await self._db(peer_allowed, domain, subject)
            if not allowed:
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
            box = await self._db(local_mailbox, address, self.domains)
        except _Unavailable:
            return TEMPORARY_FAILURE
        if box is None:
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
            message = await self._db(
                receive_message,
                bytes(raw),
                mail_from,
                list(envelope.rcpt_tos),
                peer=peer,
                label=f"{session.peer} {tls.subject_text(subject)}",
                domains=self.domains,
            )
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


def make_controller(
    *,
    hostname: str | None = None,
    port: int | None = None,
    handler: GatewayHandler | None = None,
    tls_context: Any = None,
    timeout: float = 300,
) -> Controller:
    """The gateway's aiosmtpd Controller from settings (not started).

    ``timeout``: seconds a peer may stay silent (RFC 5321 §4.5.3.2 asks at least 5
    minutes of the server).
    """
    listen_host, listen_port = settings.SMTP_LISTEN
    return GatewayController(
        handler or GatewayHandler(),
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
