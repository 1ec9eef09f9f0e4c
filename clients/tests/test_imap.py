"""The IMAP server driven by clients nobody here wrote: Python's imaplib and IMAPClient.

One store, two views: what a client does over IMAP the webmail shows, and the other
way round. Each test signs in with an application password after STARTTLS, as a
practice software would.
"""

from __future__ import annotations

import imaplib
import ssl
from typing import Any

import pytest
from django.urls import reverse
from imapclient import IMAPClient

from clients import services
from clients.models import AppPassword
from mailboxes.models import Entry, Mailbox
from mailboxes.services import read_raw
from tests.personas import Person, login, send
from tests.smtp_peers import Operator

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def box(claire: Person) -> Mailbox:
    return claire.box


@pytest.fixture
def colleague(julien: Person) -> Mailbox:
    return julien.box


def password_for(box: Mailbox, scope: str = AppPassword.Scope.BOTH, **kwargs: Any) -> str:
    assert box.owner is not None
    _password, raw = services.create_app_password(
        box.owner, label="Logiciel du cabinet", scope=scope, mailbox=box, **kwargs
    )
    return raw


def context(operator: Operator) -> ssl.SSLContext:
    return ssl.create_default_context(cafile=str(operator.ca_file))


def client(imap: Any, operator: Operator, box: Mailbox, secret: str) -> IMAPClient:
    c = IMAPClient("127.0.0.1", port=imap.port, ssl=False, timeout=10)
    c.starttls(context(operator))
    c.login(box.address, secret)
    return c


def test_login_before_starttls_is_refused_in_french(
    imap: Any, here: Operator, box: Mailbox
) -> None:
    secret = password_for(box)
    conn = imaplib.IMAP4("127.0.0.1", imap.port, timeout=10)
    try:
        assert "LOGINDISABLED" in conn.capabilities and "STARTTLS" in conn.capabilities
        assert not any(c.startswith("AUTH=") for c in conn.capabilities)
        typ, data = conn._simple_command("LOGIN", box.address, secret)  # type: ignore[attr-defined]
    except imaplib.IMAP4.error as exc:
        text = str(exc)
    else:
        text = f"{typ} {data}"
    finally:
        conn.shutdown()
    assert "PRIVACYREQUIRED" in text and "STARTTLS" in text and "refusee" in text
    # Nothing was tried: the password is not even looked at.
    assert AppPassword.objects.get().last_used_at is None


def test_a_client_lists_selects_and_fetches_the_bytes_the_webmail_serves(
    imap: Any, here: Operator, claire: Person, box: Mailbox, colleague: Mailbox
) -> None:
    message = send(colleague, [box.address], subject="Compte rendu")
    with client(imap, here, box, password_for(box)) as c:
        folders = {name: flags for flags, _d, name in c.list_folders()}
        assert "INBOX" in folders
        specials = {
            flag.decode()
            for flags in folders.values()
            for flag in flags
            if flag != b"\\HasNoChildren"
        }
        assert {"\\Sent", "\\Drafts", "\\Trash", "\\Archive"} <= specials
        selected = c.select_folder("INBOX")
        assert selected[b"EXISTS"] == 1
        entry = Entry.objects.get(mailbox=box, message=message)
        assert selected[b"UIDVALIDITY"] == entry.folder.uid_validity
        fetched = c.fetch([entry.uid], ["BODY.PEEK[]", "FLAGS"])[entry.uid]
        assert fetched[b"FLAGS"] == ()
    assert fetched[b"BODY[]"] == read_raw(message)
    entry.refresh_from_db()
    assert not entry.seen
    source = login(claire.user).get(reverse("webmail_source", args=[entry.pk]))
    assert b"".join(source.streaming_content) == fetched[b"BODY[]"]
