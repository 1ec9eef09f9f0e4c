"""A Debian mail client nobody here wrote (isync's mbsync, batch mode) on an IMAP account.

Set up from nothing but the address (our autoconfig file) and an application password, it
synchronises a whole mailbox of 1,000 MSSanté messages with attachments into a local
Maildir, each byte-identical to what the webmail's source view serves; a message flagged
or filed on either side is seen so on the other after the next synchronisation.

Each test runs against ours (the server of issue 15) and against Dovecot (the harness's
self-test): see ``conftest.py`` for the switch that makes the ours runs mandatory.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
from defusedxml import ElementTree
from django.test import Client

from tests.clients_e2e import corpus, mbsync
from tests.clients_e2e.conftest import Side, connect, special_folders
from tests.clients_e2e.mbsync import Account, LocalMessage, Mirror

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.skipif(
        bool(mbsync.available()), reason=f"{mbsync.available()} missing: bash scripts/install-deps"
    ),
]

AUTOCONFIG = "/.well-known/autoconfig/mail/config-v1.1.xml"


def account_from_autoconfig(address: str, password: str, ca_file: Path) -> Account:
    """What a client does with only an address: fetch our autoconfig file, read the IMAP
    server it names (host, port, STARTTLS, the login it asks for)."""
    response = Client().get(AUTOCONFIG, {"emailaddress": address})
    assert response.status_code == 200, response.status_code
    root = ElementTree.fromstring(response.content)
    [incoming] = [s for s in root.iter("incomingServer") if s.get("type") == "imap"]

    def text(tag: str) -> str:
        found = incoming.find(tag)
        assert found is not None and found.text, tag
        return found.text.strip()

    assert text("socketType") == "STARTTLS"
    assert text("authentication") == "password-cleartext"
    login = text("username").replace("%EMAILADDRESS%", address)
    return Account(text("hostname"), int(text("port")), login, password, ca_file)


def published(imap: Side, settings: Any) -> None:
    """Our autoconfig names the server under test (ours or the reference)."""
    from tests import factories
    from tests.smtp_peers import HERE

    factories.hosted_domain(HERE)
    settings.CLIENTS_PUBLIC_HOST = imap.account.host
    settings.IMAP_PUBLIC_PORT = imap.account.port


def test_a_client_set_up_from_an_address_syncs_1000_messages_byte_identical(
    imap: Side, settings: Any, tmp_path: Path
) -> None:
    raws = list(corpus.messages(1000, imap.account.login))
    assert sum(b"Content-Disposition: attachment" in r for r in raws) >= 700
    imap.seed(raws)
    published(imap, settings)
    account = account_from_autoconfig(
        imap.account.login, imap.account.password, imap.account.ca_file
    )
    assert (account.host, account.port, account.login) == (
        imap.account.host,
        imap.account.port,
        imap.account.login,
    )
    mirror = Mirror(account, tmp_path / "client")
    mirror.sync()

    local = {corpus.message_id(m.raw()): m for m in mirror.messages("INBOX")}
    assert len(local) == 1000 and set(local) == {corpus.message_id(r) for r in raws}
    served = imap.sources()
    assert len(served) == 1000
    differing = [k for k, m in local.items() if m.raw() != served[k]]
    assert not differing, f"{len(differing)} messages differ, e.g. {differing[:3]}"
    assert all(m.flags == set() for m in local.values())  # unread on both sides
    # A second run with nothing changed changes nothing.
    mirror.sync()
    assert len(mirror.messages("INBOX")) == 1000


def test_flags_and_moves_go_both_ways(imap: Side, tmp_path: Path) -> None:
    raws = list(corpus.messages(12, imap.account.login))
    ids = [corpus.message_id(r) for r in raws]
    imap.seed(raws)
    conn = connect(imap.account)
    try:
        folders = special_folders(conn)
    finally:
        conn.logout()
    archive = folders["archive"]
    mirror = Mirror(imap.account, tmp_path / "client")
    mirror.sync()
    local = {corpus.message_id(m.raw()): m for m in mirror.messages("INBOX")}
    assert set(local) == set(ids)

    # In the client: read and flag one, file another in the archive.
    local[ids[0]].set_flag("S").set_flag("F")
    local[ids[1]].move_to(mirror.root, archive)
    mirror.sync()
    assert imap.state(ids[0]) == ("inbox", {"\\Seen", "\\Flagged"})
    # mbsync moves as a copy (APPEND) and an expunge; a server may keep what a client
    # expunges in its trash (ours does): the message is filed, no longer in the inbox.
    where = imap.folders(ids[1])
    assert "archive" in where and "inbox" not in where, where
    assert set(where) <= {"archive", "trash"}, where
    assert imap.state(ids[2]) == ("inbox", set())

    # On the server's side: flag one, file another.
    imap.flag(ids[3])
    imap.move(ids[4], "archive")
    mirror.sync()
    now: dict[str, list[LocalMessage]] = {}
    for m in mirror.messages():
        now.setdefault(corpus.message_id(m.raw()), []).append(m)
    [flagged] = now[ids[3]]
    assert flagged.folder == "INBOX" and flagged.flags == {"\\Flagged"}
    [filed] = now[ids[4]]
    assert filed.folder == archive
    assert archive in [m.folder for m in now[ids[1]]]
    assert "INBOX" not in [m.folder for m in now[ids[1]]]
    # What was filed on the server is still the same message, byte for byte.
    assert filed.raw() == imap.sources()[ids[4]]


def test_a_wrong_password_is_refused_and_nothing_is_synchronised(
    imap: Side, tmp_path: Path
) -> None:
    imap.seed(list(corpus.messages(3, imap.account.login)))
    wrong = Account(
        imap.account.host,
        imap.account.port,
        imap.account.login,
        "abcdef-ghjkmn-pqrstu-vwxyz2",
        imap.account.ca_file,
    )
    mirror = Mirror(wrong, tmp_path / "client")
    with pytest.raises(AssertionError) as failed:
        mirror.sync()
    # The server's refusal reached the client as an IMAP answer (NO), not a dropped line.
    assert re.search(r"(AUTHENTICATE|LOGIN)\b.* returned an error: NO ", str(failed.value))
    assert mirror.messages() == []
