"""SMTP submission driven by Python's smtplib, a client nobody here wrote (587 and 465)."""

from __future__ import annotations

import smtplib
import ssl
from email.message import EmailMessage

import pytest

from audit.models import AuditEvent
from clients import services
from clients.models import AppPassword
from mailboxes.models import Entry, Mailbox, Message
from mailboxes.services import read_raw as services_raw
from tests import factories
from tests.smtp_peers import HERE, Operator

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def sender() -> Mailbox:
    return factories.mailbox(domain=factories.hosted_domain(HERE))


@pytest.fixture
def colleague(sender: Mailbox) -> Mailbox:
    return factories.mailbox(domain=sender.domain)


def password_for(box: Mailbox, scope: str = AppPassword.Scope.BOTH, **kwargs: object) -> str:
    assert box.owner is not None
    _password, raw = services.create_app_password(
        box.owner, label="Logiciel du cabinet", scope=scope, mailbox=box, **kwargs
    )
    return raw


def context(operator: Operator) -> ssl.SSLContext:
    return ssl.create_default_context(cafile=str(operator.ca_file))


def message(sender: str, to: list[str], *, subject: str = "Compte rendu") -> EmailMessage:
    msg = EmailMessage()
    msg["From"] = sender
    msg["To"] = ", ".join(to)
    msg["Subject"] = subject
    msg.set_content("Bonjour,\nci-joint le compte rendu.\n")
    msg.add_attachment(b"%PDF-1.4 ...", maintype="application", subtype="pdf", filename="cr.pdf")
    return msg


def session(port: int, operator: Operator) -> smtplib.SMTP:
    smtp = smtplib.SMTP("127.0.0.1", port, timeout=10)
    smtp.starttls(context=context(operator))
    return smtp


def test_a_client_sends_through_starttls_and_the_message_is_delivered_and_in_sent(
    port: int, here: Operator, sender: Mailbox, colleague: Mailbox
) -> None:
    raw = password_for(sender)
    with session(port, here) as smtp:
        smtp.login(sender.address, raw)
        refused = smtp.send_message(message(sender.address, [colleague.address]))
    assert refused == {}
    stored = Message.objects.get(origin=Message.Origin.CLIENT)
    assert stored.subject == "Compte rendu"
    assert [a["filename"] for a in stored.attachments] == ["cr.pdf"]
    assert Entry.objects.filter(mailbox=colleague, message=stored, folder__role="inbox").exists()
    assert Entry.objects.filter(mailbox=sender, message=stored, folder__role="sent").exists()
    used = AppPassword.objects.get()
    assert used.last_used_protocol == "smtp" and used.last_used_ip == "127.0.0.1"
    assert AuditEvent.objects.filter(action="app_password.used").exists()


def test_implicit_tls_on_465_works_too(
    tls_port: int, here: Operator, sender: Mailbox, colleague: Mailbox
) -> None:
    raw = password_for(sender)
    with smtplib.SMTP_SSL("127.0.0.1", tls_port, context=context(here), timeout=10) as smtp:
        smtp.login(sender.address, raw)
        smtp.send_message(message(sender.address, [colleague.address]))
    assert Entry.objects.filter(mailbox=colleague, folder__role="inbox").count() == 1


def test_no_login_in_clear_before_starttls(port: int, sender: Mailbox) -> None:
    raw = password_for(sender)
    with smtplib.SMTP("127.0.0.1", port, timeout=10) as smtp:
        smtp.ehlo()
        assert not smtp.has_extn("auth")  # AUTH is not even offered before TLS
        code, _text = smtp.docmd("AUTH", "PLAIN " + _plain(sender.address, raw))
        assert code == 530  # "Must issue a STARTTLS command first": nothing read
        code, _text = smtp.docmd("MAIL", f"FROM:<{sender.address}>")
        assert code == 530
    assert not AuditEvent.objects.filter(action="app_password.used").exists()


def _plain(login: str, password: str) -> str:
    import base64

    return base64.b64encode(f"\0{login}\0{password}".encode()).decode()


@pytest.mark.parametrize(
    "case", ["wrong", "revoked", "imap_only", "other_box", "expired", "user_password"]
)
def test_refused_credentials_get_535_in_french_and_are_journaled(
    case: str, port: int, here: Operator, sender: Mailbox, colleague: Mailbox
) -> None:
    from django.utils import timezone

    login = sender.address
    if case == "wrong":
        password_for(sender)
        raw = "abcdef-ghjkmn-pqrstu-vwxyz2"
    elif case == "revoked":
        raw = password_for(sender)
        assert sender.owner is not None
        services.revoke_app_password(AppPassword.objects.get(), by=sender.owner)
    elif case == "imap_only":
        raw = password_for(sender, AppPassword.Scope.IMAP)
    elif case == "other_box":
        raw = password_for(colleague)  # the colleague's password, for the sender's box
    elif case == "expired":
        raw = password_for(sender)
        AppPassword.objects.update(expires_at=timezone.now())
    else:
        raw = factories.PASSWORD  # the web password never opens a client session
    with session(port, here) as smtp, pytest.raises(smtplib.SMTPAuthenticationError) as refused:
        smtp.login(login, raw)
    assert refused.value.smtp_code == 535
    assert b"Identifiants refuses" in refused.value.smtp_error
    # smtplib tries PLAIN, then LOGIN: each refusal is journaled.
    assert AuditEvent.objects.filter(action="app_password.refused").count() >= 1


def test_charter_refusals_come_back_as_5xx_with_the_rules_sentence(
    port: int, here: Operator, sender: Mailbox, colleague: Mailbox
) -> None:
    raw = password_for(sender)
    many = [f"confrere{i}@{HERE}" for i in range(41)]
    for recipients, words in (
        (["someone@gmail.com"], b"espace de confiance"),
        (many, b"destinataires"),
    ):
        with session(port, here) as smtp:
            smtp.login(sender.address, raw)
            with pytest.raises(smtplib.SMTPDataError) as refused:
                smtp.send_message(message(sender.address, recipients))
        assert refused.value.smtp_code == 550
        assert words in refused.value.smtp_error
    assert not Message.objects.exists()


def test_sending_from_a_box_the_password_does_not_cover_is_refused_at_mail_from(
    port: int, here: Operator, sender: Mailbox, colleague: Mailbox
) -> None:
    raw = password_for(sender)
    with session(port, here) as smtp:
        smtp.login(sender.address, raw)
        with pytest.raises(smtplib.SMTPSenderRefused) as refused:
            smtp.send_message(message(colleague.address, [sender.address]))
    assert refused.value.smtp_code == 553
    assert not Message.objects.exists()


def test_a_read_only_member_of_a_shared_box_cannot_send_from_it(
    port: int, here: Operator, sender: Mailbox, colleague: Mailbox
) -> None:
    """A password for all the holder's boxes opens a shared box with their role there."""
    assert sender.owner is not None and colleague.owner is not None
    shared = factories.shared_mailbox(colleague.owner, domain=sender.domain)
    factories.member(shared, sender.owner, "read")
    _pw, raw = services.create_app_password(
        sender.owner, label="Thunderbird", scope=AppPassword.Scope.BOTH, mailbox=None
    )
    # Signed in as the shared box: a reader may not send, so SMTP refuses the login.
    with session(port, here) as smtp, pytest.raises(smtplib.SMTPAuthenticationError):
        smtp.login(shared.address, raw)
    with session(port, here) as smtp:
        smtp.login(sender.address, raw)
        with pytest.raises(smtplib.SMTPSenderRefused):
            smtp.send_message(message(shared.address, [colleague.address]))
    assert not Message.objects.exists()


def test_hostile_data_gets_an_answer_and_nothing_half_written(
    port: int, here: Operator, sender: Mailbox, colleague: Mailbox
) -> None:
    raw = password_for(sender)
    garbage = (
        b"Content-Type: multipart/mixed; boundary=x\r\nSubject: =?utf-8?b?////?=\r\n\r\n"
        + b"--x\r\nContent-Type: text/plain; charset=nonexistent\r\n\r\n\xff\xfe\x00\r\n" * 50
    )
    with session(port, here) as smtp:
        smtp.login(sender.address, raw)
        try:
            smtp.sendmail(sender.address, [colleague.address], garbage)
            answered = 250
        except smtplib.SMTPDataError as exc:
            answered = exc.smtp_code
        assert smtp.noop()[0] == 250  # the session is still alive
    assert answered in (250, 554)
    stored = Message.objects.count()
    assert stored == (1 if answered == 250 else 0)


def test_blind_copies_are_delivered_and_named_in_no_header(
    port: int, here: Operator, sender: Mailbox, colleague: Mailbox
) -> None:
    """A recipient in the envelope only (Bcc) must never become visible to the others."""
    raw = password_for(sender)
    hidden = factories.mailbox(domain=sender.domain)
    with session(port, here) as smtp:
        smtp.login(sender.address, raw)
        smtp.sendmail(
            sender.address,
            [colleague.address, hidden.address],
            message(sender.address, [colleague.address]).as_bytes(),
        )
    stored = Message.objects.get()
    assert hidden.address not in stored.to_addrs + stored.cc_addrs
    assert hidden.address.encode() not in services_raw(stored)
    assert Entry.objects.filter(mailbox=hidden, message=stored).exists()
    assert Entry.objects.filter(mailbox=colleague, message=stored).exists()
