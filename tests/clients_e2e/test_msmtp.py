"""Sending from a Debian mail client nobody here wrote (msmtp, batch mode) through submission.

msmtp reads a generated configuration (STARTTLS on our submission port, our CA, the
box's address and an application password), reads a message with attachments on its
standard input (``-t``: recipients from the headers, as a practice software hands it),
and our submission server takes it through the webmail's own path: delivered to the
colleague's inbox, a copy in the sender's Sent. A charter refusal reaches msmtp as the
5xx with the rule's sentence (French, without accents: SMTP is ASCII) and nothing is
stored.
"""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from clients import services
from clients.models import AppPassword
from clients.tests.conftest import submission_server
from mailboxes.models import Entry, Mailbox, Message
from mailboxes.services import read_raw
from tests import factories
from tests.clients_e2e import corpus
from tests.smtp_peers import HERE, Operator

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.skipif(
        shutil.which("msmtp") is None, reason="msmtp missing: bash scripts/install-deps"
    ),
]


@pytest.fixture
def port(here: Operator) -> Iterator[int]:
    with submission_server(here) as port:
        yield port


@pytest.fixture
def sender() -> Mailbox:
    return factories.mailbox(factories.professional(), domain=factories.hosted_domain(HERE))


def msmtp(config: Path, raw: bytes) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(
        ["msmtp", "-C", str(config), "-a", "cabinet", "-t"],
        input=raw,
        capture_output=True,
        timeout=120,
        check=False,
    )


def configure(folder: Path, port: int, operator: Operator, box: Mailbox, password: str) -> Path:
    """msmtp's configuration for ``box`` as its user would write it from our autoconfig."""
    folder.mkdir(parents=True, exist_ok=True)
    secret = folder / "password"
    secret.write_text(password)
    secret.chmod(0o600)
    config = folder / "msmtprc"
    config.write_text(
        f"""account cabinet
host localhost
port {port}
tls on
tls_starttls on
tls_trust_file {operator.ca_file}
auth plain
user {box.address}
passwordeval "cat {secret}"
from {box.address}
logfile {folder / "msmtp.log"}
"""
    )
    config.chmod(0o600)  # msmtp refuses a configuration others may read
    return config


def with_headers(raw: bytes, sender: str, to: list[str]) -> bytes:
    """A corpus message, as written by ``sender`` to ``to`` (its own From/To replaced)."""
    head, sep, body = raw.partition(b"\r\n\r\n")
    lines = [
        line
        for line in head.split(b"\r\n")
        if not line.lower().startswith((b"from:", b"to:", b"return-path:"))
    ]
    lines = [f"From: <{sender}>".encode(), f"To: {', '.join(to)}".encode(), *lines]
    return b"\r\n".join(lines) + sep + body


def test_msmtp_sends_through_submission_and_the_message_is_delivered_and_in_sent(
    port: int, here: Operator, sender: Mailbox, tmp_path: Path
) -> None:
    colleague = factories.mailbox(factories.professional(), domain=sender.domain)
    _password, raw_password = services.create_app_password(
        sender.owner, label="msmtp", scope=AppPassword.Scope.SMTP, mailbox=sender
    )
    config = configure(tmp_path / "msmtp", port, here, sender, raw_password)
    raw = with_headers(corpus.message(1, colleague.address), sender.address, [colleague.address])
    assert b"Content-Disposition: attachment" in raw

    done = msmtp(config, raw)

    assert done.returncode == 0, done.stderr.decode(errors="replace")
    stored = Message.objects.get(origin=Message.Origin.CLIENT)
    assert stored.from_addr == sender.address
    assert sorted(a["filename"] for a in stored.attachments) == [
        "CR-BIO-000001.xml",
        "cr-bio-000001.pdf",
    ]
    assert Entry.objects.filter(mailbox=colleague, message=stored, folder__role="inbox").exists()
    assert Entry.objects.filter(mailbox=sender, message=stored, folder__role="sent").exists()
    # The attachments arrive as sent: the stored message carries the very same bytes.
    assert b"JVBERi0xLjQK" in read_raw(stored)  # "%PDF-1.4\n", base64
    used = AppPassword.objects.get()
    assert used.last_used_protocol == "smtp"


def test_a_charter_refusal_reaches_msmtp_and_nothing_is_stored(
    port: int, here: Operator, sender: Mailbox, tmp_path: Path
) -> None:
    _password, raw_password = services.create_app_password(
        sender.owner, label="msmtp", scope=AppPassword.Scope.SMTP, mailbox=sender
    )
    config = configure(tmp_path / "msmtp", port, here, sender, raw_password)
    for to, words in (
        (["quelqu.un@gmail.com"], b"espace de confiance"),
        ([f"confrere{i}@{HERE}" for i in range(41)], b"destinataires"),
    ):
        raw = with_headers(corpus.message(2, to[0]), sender.address, to)
        done = msmtp(config, raw)
        assert done.returncode != 0
        assert b"550" in done.stderr and words in done.stderr, done.stderr
    assert not Message.objects.exists()


def test_what_msmtp_sent_is_in_sent_for_the_imap_client_too(
    ours: Any, port: int, here: Operator, tmp_path: Path
) -> None:
    """The whole client story on one application password: send with msmtp, then mbsync
    finds the copy in Sent, byte-identical to what the webmail's source view serves."""
    from tests.clients_e2e.conftest import connect, special_folders
    from tests.clients_e2e.mbsync import Mirror

    box = ours.box
    colleague = factories.mailbox(factories.professional(), domain=box.domain)
    config = configure(tmp_path / "msmtp", port, here, box, ours.account.password)
    raw = with_headers(corpus.message(3, colleague.address), box.address, [colleague.address])
    done = msmtp(config, raw)
    assert done.returncode == 0, done.stderr.decode(errors="replace")

    conn = connect(ours.account)
    try:
        sent = special_folders(conn)["sent"]
    finally:
        conn.logout()
    mirror = Mirror(ours.account, tmp_path / "imap")
    mirror.sync()
    [(_msgid, served)] = ours.sources().items()  # the Sent copy, the box's only message
    [local] = mirror.messages(sent)
    assert local.raw() == served
    assert Entry.objects.get(mailbox=colleague).folder.role == "inbox"
