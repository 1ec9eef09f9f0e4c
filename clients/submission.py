"""SMTP submission for practice software and mail clients (RFC 6409): 587 STARTTLS, 465 TLS.

The client signs in (AUTH PLAIN or LOGIN, offered only once the connection is encrypted)
with a mailbox address and an application password (``clients.services``); then:

- MAIL FROM: a box the session may send from (the signed-in box, or, with a password
  for all the holder's boxes, any box where they have the send right);
- RCPT TO: well-formed addresses, at most MESSAGE_MAX_RECIPIENTS (452 past it);
- DATA: the message is read with ``email`` and handed to the very same submission path
  as the webmail's compose form (``mailboxes.services.submit_message``): the charter
  (trust space, recipients, attachments), ``Sender:`` for a delegate, encryption,
  scanning, the journal and the Sent copy. Envelope recipients named in neither To nor
  Cc are blind copies. A refusal is a 5xx with the rule's sentence; 250 only once the
  message is committed.

Replies are ASCII (SMTP without SMTPUTF8): the French sentences lose their accents.
"""

from __future__ import annotations

import email
import email.policy
import logging
import ssl
from dataclasses import dataclass
from email.message import EmailMessage
from email.utils import getaddresses
from typing import Any

from aiosmtpd.smtp import SMTP, AuthResult, Envelope, Session
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.utils.translation import gettext as _

from clients import services
from clients.models import AppPassword
from mailboxes import addresses, selectors
from mailboxes.models import Entry, Mailbox, Message
from mailboxes.selectors import Access
from mailboxes.services import SubmissionError, submit_message
from mailboxes.transport.inbound import (
    TEMPORARY_FAILURE,
    GatewayController,
    GatewaySMTP,
    ThreadedDatabase,
    smtp_text,
)
from mssante.lib import mime

log = logging.getLogger(__name__)

RCPT_BOUND = 1000


def server_context() -> ssl.SSLContext:
    """The certificate clients see (CLIENTS_TLS_CERT, or the gateway's); no client certificate."""
    cert = settings.CLIENTS_TLS_CERT or settings.SMTP_TLS_CERT
    key = settings.CLIENTS_TLS_KEY or settings.SMTP_TLS_KEY
    if not cert or not key:
        raise ImproperlyConfigured(
            "Soumission SMTP : CLIENTS_TLS_CERT et CLIENTS_TLS_KEY (ou SMTP_TLS_CERT et "
            "SMTP_TLS_KEY) non renseignés."
        )
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.load_cert_chain(cert, key)
    return context


class SubmissionSMTP(GatewaySMTP):
    """A session of the submission server (the gateway's DATA reader, bounded the same)."""


class ImplicitTLSSMTP(SubmissionSMTP):
    """Port 465: the connection is TLS from its first byte (RFC 8314), so AUTH is offered."""

    def connection_made(self, transport: Any) -> None:
        super().connection_made(transport)
        if transport.get_extra_info("sslcontext") is not None:
            # aiosmtpd only knows STARTTLS as "encrypted": tell it this one is too.
            self._tls_protocol = transport
            if self.session is not None:
                self.session.ssl = {"peercert": transport.get_extra_info("peercert")}


@dataclass
class _Submitted:
    code: str
    message_id: str = ""


def _split_recipients(msg: EmailMessage, rcpt: list[str]) -> tuple[list[str], list[str], list[str]]:
    """Envelope recipients as To, Cc and blind copies (named in no header)."""

    def named(header: str) -> set[str]:
        values = [str(v) for v in msg.get_all(header, [])]
        return {a.strip().lower() for _n, a in getaddresses(values) if a}

    to_named, cc_named = named("To"), named("Cc")
    to = [a for a in rcpt if a in to_named]
    cc = [a for a in rcpt if a not in to_named and a in cc_named]
    bcc = [a for a in rcpt if a not in to_named and a not in cc_named]
    return to, cc, bcc


class SubmissionHandler(ThreadedDatabase):
    """aiosmtpd handler of the submission server (one instance serves every connection)."""

    # --- AUTH: PLAIN and LOGIN, checked against the application passwords in a thread.

    async def auth_PLAIN(self, server: SMTP, args: list[str]) -> AuthResult:
        result = await SMTP.auth_PLAIN(server, None, args)
        return await self._checked(server, result)

    async def auth_LOGIN(self, server: SMTP, args: list[str]) -> AuthResult:
        result = await SMTP.auth_LOGIN(server, None, args)
        return await self._checked(server, result)

    async def _checked(self, server: SMTP, result: AuthResult) -> AuthResult:
        # aiosmtpd's own PLAIN/LOGIN decoding ran with no authenticator: it failed with
        # the login and password kept aside (``_credentials`` below).
        creds = getattr(server, "_pending_credentials", None)
        server._pending_credentials = None  # type: ignore[attr-defined]
        if creds is None:
            return result
        login, password = creds
        peer = server.session.peer if server.session is not None else None
        ip = str(peer[0]) if peer else ""
        try:
            found = await self._in_thread(
                services.authenticate,
                login.decode("utf-8", "replace"),
                password.decode("utf-8", "replace"),
                protocol=AppPassword.Protocol.SMTP,
                ip=ip,
            )
        except services.ClientAuthError as exc:
            return AuthResult(
                success=False, handled=False, message=f"535 5.7.8 {smtp_text(str(exc))}"
            )
        except Exception:
            log.exception("submission: authentication failed with an error")
            return AuthResult(
                success=False,
                handled=False,
                message="454 4.7.0 " + "Temporary authentication failure",
            )
        return AuthResult(success=True, auth_data=found)

    # --- The envelope

    async def handle_MAIL(
        self, server: SMTP, session: Session, envelope: Envelope, address: str, options: list[str]
    ) -> str:
        login = session.auth_data
        if not isinstance(login, services.ClientLogin):
            return "530 5.7.0 Authentication required"
        try:
            sender = addresses.normalise(address)
        except addresses.AddressError:
            return "553 5.1.7 " + smtp_text(_("Adresse d'expéditeur invalide."))
        try:
            box = await self._in_thread(_sending_box, login, sender)
        except Exception:
            log.exception("submission: MAIL FROM check failed")
            return TEMPORARY_FAILURE
        if box is None:
            return "553 5.7.1 " + smtp_text(
                _(
                    "Vous ne pouvez pas envoyer depuis %(address)s avec ce mot de passe d'application."
                )
                % {"address": sender}
            )
        envelope.mail_from = sender
        envelope.mail_options.extend(options)
        return "250 2.1.0 OK"

    async def handle_RCPT(
        self, server: SMTP, session: Session, envelope: Envelope, address: str, options: list[str]
    ) -> str:
        try:
            recipient = addresses.normalise(address)
        except addresses.AddressError:
            return "553 5.1.3 " + smtp_text(_("Adresse de destinataire invalide."))
        # The charter's limit (MAX_RECIPIENTS) is checked at DATA by the submission path,
        # with its own sentence, for the whole message: a 452 here would only make the
        # client send the rest in another message. This bound is memory's.
        if len(envelope.rcpt_tos) >= RCPT_BOUND:
            return "452 4.5.3 Too many recipients"
        if recipient not in envelope.rcpt_tos:
            envelope.rcpt_tos.append(recipient)
        return "250 2.1.5 OK"

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        login = session.auth_data
        if not isinstance(login, services.ClientLogin):
            return "530 5.7.0 Authentication required"
        try:
            done = await self._in_thread(
                _submit, login, str(envelope.mail_from), list(envelope.rcpt_tos), envelope.content
            )
        except Exception:
            log.exception("submission: storing a message failed")
            return TEMPORARY_FAILURE
        return done.code


def _sending_box(login: services.ClientLogin, address: str) -> Mailbox | None:
    box: Mailbox | None
    if address == login.mailbox.address:
        box = login.mailbox
    elif login.password.mailbox_id is None:
        box = Mailbox.objects.filter(address=address).first()
    else:
        return None
    if box is None or not box.is_active:
        return None
    level = selectors.access(login.user, box)
    return box if level is not None and level >= Access.SEND else None


def _submit(login: services.ClientLogin, sender: str, rcpt: list[str], raw: Any) -> _Submitted:
    box = _sending_box(login, sender)
    if box is None:
        return _Submitted("550 5.7.1 " + smtp_text(_("Ce mot de passe ne permet plus d'envoyer.")))
    data = raw if isinstance(raw, bytes) else str(raw).encode("utf-8", "surrogateescape")
    msg = email.message_from_bytes(data, policy=email.policy.default)
    assert isinstance(msg, EmailMessage)
    to, cc, bcc = _split_recipients(msg, rcpt)
    try:
        text, html, files = mime.client_content(msg)
    except (LookupError, ValueError, TypeError):
        return _Submitted(
            "554 5.6.0 " + smtp_text(_("Message illisible : structure MIME invalide."))
        )
    replied = _replied(box, str(msg.get("In-Reply-To") or ""))
    try:
        message = submit_message(
            mailbox=box,
            author=login.user,
            to=to,
            cc=cc,
            bcc=bcc,
            subject=str(msg.get("Subject") or ""),
            text=text,
            html=html,
            attachments=files,
            in_reply_to=replied,
            origin=Message.Origin.CLIENT,
        )
    except SubmissionError as exc:
        return _Submitted("550 5.7.1 " + smtp_text(str(exc)))
    return _Submitted(f"250 2.0.0 OK {smtp_text(message.message_id)}", message.message_id)


def _replied(box: Mailbox, header: str) -> Message | None:
    """The message of ``box`` a client's reply answers (None: unknown, or not in this box)."""
    wanted = header.strip()
    if not wanted:
        return None
    entry = (
        Entry.objects.select_related("message")
        .filter(mailbox=box, message__message_id=wanted)
        .first()
    )
    return entry.message if entry is not None else None


def make_controller(
    *,
    hostname: str,
    port: int,
    implicit_tls: bool,
    handler: SubmissionHandler | None = None,
    tls_context: ssl.SSLContext | None = None,
    sock: Any = None,
    timeout: float = 300,
) -> GatewayController:
    """A submission server (not started): STARTTLS required, or TLS from the first byte."""
    context = tls_context or server_context()
    common: dict[str, Any] = {
        "sock": sock,
        "hostname": hostname,
        "port": port,
        "server_hostname": settings.SMTP_HOSTNAME,
        "data_size_limit": settings.MESSAGE_MAX_BYTES,
        "ident": "MSSante submission",
        "auth_required": True,
        "auth_require_tls": True,
        "decode_data": False,
        "timeout": timeout,
        # aiosmtpd decodes PLAIN and LOGIN; the handler checks what they carried.
        "authenticator": _keep_credentials,
    }
    if implicit_tls:
        controller = _Controller(handler or SubmissionHandler(), ssl_context=context, **common)
        controller.session_class = ImplicitTLSSMTP
    else:
        controller = _Controller(
            handler or SubmissionHandler(), tls_context=context, require_starttls=True, **common
        )
    return controller


def _keep_credentials(
    server: SMTP, session: Session, envelope: Envelope, mechanism: str, auth_data: Any
) -> AuthResult:
    """aiosmtpd's authenticator: keep the decoded login and password for the handler.

    The check itself reads the database, which the event loop must not wait on: the
    handler's ``auth_PLAIN``/``auth_LOGIN`` run it in a thread (``_checked``).
    """
    server._pending_credentials = (auth_data.login, auth_data.password)  # type: ignore[attr-defined]
    return AuthResult(success=False, handled=True)


class _Controller(GatewayController):
    session_class: type[SMTP] = SubmissionSMTP

    def factory(self) -> SMTP:
        return self.session_class(self.handler, **self.SMTP_kwargs)
