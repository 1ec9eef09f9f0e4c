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
Django's ORM is synchronous.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import unicodedata
from collections.abc import Callable, Iterable
from typing import Any, TypeVar

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, Envelope, Session
from django.conf import settings
from django.db import close_old_connections, connections

from charter import audit
from charter.listeblanche import parse_dn, peer_allowed
from charter.models import OperatorCertificate
from charter.policy import PolicyError
from mailboxes import addresses
from mailboxes.blobs import BlobStoreUnavailable
from mailboxes.services.inbound import ReceptionError, local_mailbox, receive_message
from mailboxes.transport import tls

log = logging.getLogger(__name__)
T = TypeVar("T")

# Enhanced status codes (RFC 3463) for the refusals of receive_message.
_ENHANCED = {550: "5.1.1", 552: "5.3.4", 554: "5.5.1"}


def smtp_text(text: str) -> str:
    """A reply line in plain ASCII (SMTP replies are ASCII without SMTPUTF8)."""
    flat = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode("ascii")
    return " ".join(flat.replace("\r", " ").replace("\n", " ").split())[:400]


def _listed_anywhere(subject: Any) -> bool:
    wanted = parse_dn(subject)
    return bool(wanted) and any(
        parse_dn(dn) == wanted
        for dn in OperatorCertificate.objects.values_list("dn", flat=True).distinct()
    )


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
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(None, functools.partial(self._run, func, *args, **kwargs))

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
        # aiosmtpd's default answers "500 Error: (<class>) <text>": permanent (the peer
        # bounces the message) and leaking our internals. Any failure of ours is temporary.
        log.error("smtp gateway: %s during the dialogue", type(error).__name__, exc_info=error)
        return "451 4.3.0 Temporary failure, please try again later"

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
        null_sender = address in ("", "<>")
        domain = "" if null_sender else addresses.domain_of(address.strip().lower())
        if null_sender:
            allowed = await self._db(_listed_anywhere, subject)
        else:
            allowed = await self._db(peer_allowed, domain, subject)
        if not allowed:
            dn = tls.subject_text(subject)
            await self._db(
                audit.record,
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
        box = await self._db(local_mailbox, address, self.domains)
        if box is None:
            return smtp_text(f"550 5.1.1 <{address}>: no active mailbox at this address")
        envelope.rcpt_tos.append(address)
        envelope.rcpt_options.extend(rcpt_options)
        return "250 2.1.5 OK"

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        raw = envelope.original_content or b""
        peer = f"{session.peer} {tls.subject_text(self._peer_subject(session))}"
        try:
            message = await self._db(
                receive_message,
                bytes(raw),
                envelope.mail_from or "",
                list(envelope.rcpt_tos),
                peer=peer,
                domains=self.domains,
            )
        except ReceptionError as exc:
            return smtp_text(f"{exc.code} {_ENHANCED.get(exc.code, '5.0.0')} {exc}")
        except PolicyError as exc:
            return smtp_text(f"550 5.7.1 {exc}")
        except BlobStoreUnavailable:
            # Nothing stored: the peer keeps the message and tries again later.
            return "452 4.3.1 Insufficient system storage, please try again later"
        except Exception:
            log.exception("inbound message from %s could not be stored", session.peer)
            return "451 4.3.0 Temporary failure, please try again later"
        return smtp_text(f"250 2.0.0 OK {message.message_id}")


def make_controller(
    *,
    hostname: str | None = None,
    port: int | None = None,
    handler: GatewayHandler | None = None,
    tls_context: Any = None,
) -> Controller:
    """The gateway's aiosmtpd Controller from settings (not started)."""
    listen_host, listen_port = settings.SMTP_LISTEN
    return Controller(
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
    )
