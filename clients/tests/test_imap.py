"""The IMAP server driven by clients nobody here wrote: Python's imaplib and IMAPClient.

One store, two views: what a client does over IMAP the webmail shows, and the other
way round. Each test signs in with an application password after STARTTLS, as a
practice software would.
"""

from __future__ import annotations

import asyncio
import imaplib
import ssl
from email.message import EmailMessage
from typing import Any

import pytest
from django.urls import reverse
from django.utils import timezone
from imapclient import IMAPClient
from pymap.parsing.response import ResponseOk, UntaggedResponse

from clients import services
from clients.imap.server import Connection
from clients.models import AppPassword
from mailboxes import selectors
from mailboxes.models import AccessEvent, Entry, Folder, Mailbox, Membership, Message
from mailboxes.services import open_draft, read_raw
from tests import factories
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
        typ, data = conn._simple_command("LOGIN", box.address, secret)
    except imaplib.IMAP4.error as exc:
        text = str(exc)
    else:
        text = f"{typ} {data}"
    finally:
        conn.shutdown()
    assert "PRIVACYREQUIRED" in text and "STARTTLS" in text and "refusee" in text
    conn = imaplib.IMAP4("127.0.0.1", imap.port, timeout=10)
    with pytest.raises(imaplib.IMAP4.error, match="PRIVACYREQUIRED"):
        conn.authenticate("PLAIN", lambda _challenge: f"\0{box.address}\0{secret}".encode())
    conn.shutdown()
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


def test_a_bad_password_is_refused_in_french_and_repeated_tries_lock_out(
    imap: Any, here: Operator, box: Mailbox
) -> None:
    password_for(box)
    answers = []
    for _ in range(12):
        c = IMAPClient("127.0.0.1", port=imap.port, ssl=False, timeout=10)
        c.starttls(context(here))
        with pytest.raises(Exception) as refused:
            c.login(box.address, "pas-le-bon-mot-de-passe")
        answers.append(str(refused.value))
        c.shutdown()
    assert "Identifiants refuses" in answers[0]
    assert "Trop d'essais" in answers[-1]
    # The server is still there for the next client.
    c = IMAPClient("127.0.0.1", port=imap.port, ssl=False, timeout=10)
    c.starttls(context(here))
    c.shutdown()


def test_implicit_tls_on_993_offers_login_at_once(imap: Any, here: Operator, box: Mailbox) -> None:
    secret = password_for(box, scope=AppPassword.Scope.IMAP)
    with IMAPClient("127.0.0.1", port=imap.tls_port, ssl=True, ssl_context=context(here)) as c:
        assert b"STARTTLS" not in c.capabilities()
        c.login(box.address, secret)
        assert c.select_folder("INBOX", readonly=True)[b"EXISTS"] == 0


def test_an_smtp_only_password_cannot_open_imap(imap: Any, here: Operator, box: Mailbox) -> None:
    secret = password_for(box, scope=AppPassword.Scope.SMTP)
    with pytest.raises(Exception, match="Identifiants refuses"):
        client(imap, here, box, secret)


def test_flags_set_over_imap_show_in_the_webmail_and_the_webmail_s_show_over_imap(
    imap: Any, here: Operator, claire: Person, box: Mailbox, colleague: Mailbox
) -> None:
    first = Entry.objects.get(mailbox=box, message=send(colleague, [box.address], subject="Un"))
    second = Entry.objects.get(mailbox=box, message=send(colleague, [box.address], subject="Deux"))
    web = login(claire.user)
    with client(imap, here, box, password_for(box)) as c:
        c.select_folder("INBOX")
        c.add_flags([first.uid], [b"\\Seen", b"\\Flagged", b"\\Answered"])
        first.refresh_from_db()
        assert first.seen and first.flagged and first.answered
        page = web.get(reverse("webmail_mailbox", args=[box.pk]))
        assert page.context["folders"][0].unread == 1
        # The webmail reads the second one and unflags the first: the client sees it.
        web.get(reverse("webmail_read", args=[second.pk]))
        web.post(reverse("webmail_flag", args=[first.pk]), {"flagged": ""})
        c.noop()
        flags = c.get_flags([first.uid, second.uid])
        assert set(flags[first.uid]) == {b"\\Seen", b"\\Answered"}
        assert b"\\Seen" in flags[second.uid]
        # A body fetched without PEEK marks the message read, as opening it does.
        c.remove_flags([second.uid], [b"\\Seen"])
        c.fetch([second.uid], ["BODY[]"])
    second.refresh_from_db()
    assert second.seen


def test_move_and_expunge_go_where_the_webmail_would(
    imap: Any, here: Operator, claire: Person, box: Mailbox, colleague: Mailbox
) -> None:
    kept = Entry.objects.get(mailbox=box, message=send(colleague, [box.address], subject="Un"))
    gone = Entry.objects.get(mailbox=box, message=send(colleague, [box.address], subject="Deux"))
    archive = Folder.objects.get(mailbox=box, role=Folder.Role.ARCHIVE)
    with client(imap, here, box, password_for(box)) as c:
        archive_name = next(name for flags, _d, name in c.list_folders() if b"\\Archive" in flags)
        trash_name = next(name for flags, _d, name in c.list_folders() if b"\\Trash" in flags)
        c.select_folder("INBOX")
        c.move([kept.uid], archive_name)
        # UIDNEXT stays above the UID that left (never given again).
        assert c.folder_status("INBOX", ["UIDNEXT", "MESSAGES"]) == {
            b"UIDNEXT": 3,
            b"MESSAGES": 1,
        }
        kept.refresh_from_db()
        assert kept.folder_id == archive.pk
        assert kept.uid == 1  # numbered anew in the archive
        c.add_flags([gone.uid], [b"\\Deleted"])
        c.expunge()
        gone.refresh_from_db()
        assert gone.folder.role == Folder.Role.TRASH and gone.previous_folder.role == "inbox"
        emptied = c.select_folder("INBOX")
        # Empty, and UIDNEXT still above the UIDs that left (never given again).
        assert emptied[b"EXISTS"] == 0 and emptied[b"UIDNEXT"] == 3
        # In the trash, EXPUNGE is the webmail's "delete for good".
        c.select_folder(trash_name)
        c.add_flags([gone.uid], [b"\\Deleted"])
        c.expunge()
    assert not Entry.objects.filter(pk=gone.pk).exists()
    # The webmail sees the same: the archive holds the moved one, the trash is empty.
    page = login(claire.user).get(reverse("webmail_folder", args=[archive.pk]))
    assert page.status_code == 200 and "Un" in page.content.decode()


def test_idle_is_woken_by_a_delivery(
    imap: Any, here: Operator, box: Mailbox, colleague: Mailbox
) -> None:
    with client(imap, here, box, password_for(box)) as c:
        c.select_folder("INBOX")
        c.idle()
        send(colleague, [box.address], subject="Urgent")
        responses = c.idle_check(timeout=5)
        c.idle_done()
    assert (1, b"EXISTS") in responses


def test_two_idle_clients_of_one_folder_are_both_woken(
    imap: Any, here: Operator, box: Mailbox, colleague: Mailbox
) -> None:
    secret = password_for(box)
    with client(imap, here, box, secret) as first, client(imap, here, box, secret) as second:
        for c in (first, second):
            c.select_folder("INBOX")
            c.idle()
        send(colleague, [box.address], subject="Pour les deux")
        heard = [c.idle_check(timeout=5) for c in (first, second)]
        for c in (first, second):
            c.idle_done()
        # One more: both still hear (the watcher is not spent by the first change).
        for c in (first, second):
            c.idle()
        send(colleague, [box.address], subject="Encore")
        heard += [c.idle_check(timeout=5) for c in (first, second)]
        for c in (first, second):
            c.idle_done()
    assert [(1, b"EXISTS") in h for h in heard[:2]] == [True, True]
    assert [(2, b"EXISTS") in h for h in heard[2:]] == [True, True]


def test_append_to_sent_finds_the_copy_kept_by_the_submission(
    imap: Any, here: Operator, box: Mailbox, colleague: Mailbox
) -> None:
    message = send(box, [colleague.address], subject="Envoyé")
    sent = Entry.objects.get(mailbox=box, message=message)
    with client(imap, here, box, password_for(box)) as c:
        sent_name = next(name for flags, _d, name in c.list_folders() if b"\\Sent" in flags)
        answer = c.append(sent_name, read_raw(message))
        assert str(sent.uid).encode() in answer
        before = Entry.objects.count()
        with pytest.raises(Exception, match=r"Depot refuse|Copie refusee"):
            c.append(sent_name, b"Message-ID: <ailleurs@example.org>\r\nSubject: x\r\n\r\nx\r\n")
        with pytest.raises(Exception, match="Depot refuse"):
            c.append("INBOX", b"Subject: x\r\n\r\nx\r\n")
    assert Entry.objects.count() == before


def test_append_to_drafts_makes_a_draft_the_webmail_shows(
    imap: Any, here: Operator, claire: Person, box: Mailbox, colleague: Mailbox, settings: Any
) -> None:
    msg = EmailMessage()
    msg["From"] = box.address
    msg["To"] = colleague.address
    msg["Subject"] = "Brouillon du cabinet"
    msg.set_content("Bonjour,\nà compléter.\n")
    msg.add_attachment(b"%PDF-1.4 ...", maintype="application", subtype="pdf", filename="cr.pdf")
    with client(imap, here, box, password_for(box)) as c:
        drafts = next(name for flags, _d, name in c.list_folders() if b"\\Drafts" in flags)
        c.append(drafts, msg.as_bytes())
        # Past the attachment limit: refused in French, and no half-made draft left.
        settings.MESSAGE_MAX_ATTACHMENTS = 1
        bad = EmailMessage()
        bad["Subject"] = "Trop de pièces"
        bad.set_content("x")
        for name in ("a.pdf", "b.pdf"):
            bad.add_attachment(b"%PDF-1.4", maintype="application", subtype="pdf", filename=name)
        with pytest.raises(Exception, match="pieces jointes"):
            c.append(drafts, bad.as_bytes())
    (draft,) = selectors.drafts(box, claire.user)
    content = open_draft(draft)
    assert content.subject == "Brouillon du cabinet" and content.to == [colleague.address]
    assert [f.filename for f in draft.files.all()] == ["cr.pdf"]


def test_append_of_a_message_of_the_box_files_it_as_a_client_without_move_does(
    imap: Any, here: Operator, box: Mailbox, colleague: Mailbox
) -> None:
    # isync's mbsync has no MOVE: it APPENDs to the target, then expunges the source.
    entry = Entry.objects.get(mailbox=box, message=send(colleague, [box.address], subject="Un"))
    archive = Folder.objects.get(mailbox=box, role=Folder.Role.ARCHIVE)
    with client(imap, here, box, password_for(box)) as c:
        archive_name = next(name for flags, _d, name in c.list_folders() if b"\\Archive" in flags)
        c.select_folder("INBOX")
        answer = c.append(archive_name, read_raw(entry.message))
        entry.refresh_from_db()
        assert entry.folder_id == archive.pk
        assert f"APPENDUID {archive.uid_validity} {entry.uid}".encode() in answer
        c.add_flags([1], [b"\\Deleted"])
        c.expunge()
        assert c.select_folder(archive_name)[b"EXISTS"] == 1
    entry.refresh_from_db()
    assert entry.folder_id == archive.pk  # filed, not in the trash
    assert Entry.objects.filter(mailbox=box).count() == 1


def test_append_of_a_forged_copy_with_a_message_id_of_the_box_is_refused(
    imap: Any, here: Operator, box: Mailbox, colleague: Mailbox
) -> None:
    entry = Entry.objects.get(mailbox=box, message=send(colleague, [box.address], subject="Un"))
    raw = read_raw(entry.message)
    forged = raw.replace(b"Un", b"Virement urgent", 1)
    assert forged != raw and entry.message.message_id
    before = list(Entry.objects.values_list("pk", "folder_id", "uid"))
    with client(imap, here, box, password_for(box)) as c:
        archive_name = next(name for flags, _d, name in c.list_folders() if b"\\Archive" in flags)
        with pytest.raises(Exception, match="Depot refuse"):
            c.append(archive_name, forged)
        with pytest.raises(Exception, match="Depot refuse"):
            c.append("INBOX", forged + b"x")
    assert list(Entry.objects.values_list("pk", "folder_id", "uid")) == before


def test_headers_envelopes_and_sizes_are_fetched_without_opening_a_message(
    imap: Any, here: Operator, box: Mailbox, colleague: Mailbox, monkeypatch: Any
) -> None:
    from mailboxes import blobs

    messages = [send(colleague, [box.address], subject=f"Objet {n}") for n in range(3)]
    raws = [read_raw(m) for m in messages]
    # One stored before the header column: filled on its first listing (one opening).
    Message.objects.filter(pk=messages[0].pk).update(header_block=None)
    opened: list[str] = []
    real_read = blobs.read

    def counting_read(name: str, *args: Any) -> bytes:
        opened.append(name)
        return real_read(name, *args)

    monkeypatch.setattr(blobs, "read", counting_read)
    with client(imap, here, box, password_for(box)) as c:
        c.select_folder("INBOX", readonly=True)
        wanted = [b"BODY.PEEK[HEADER]", b"ENVELOPE", b"RFC822.SIZE", b"FLAGS", b"INTERNALDATE"]
        uids = sorted(Entry.objects.filter(mailbox=box).values_list("uid", flat=True))
        first = c.fetch(uids, wanted)
        assert len(opened) == 1  # the old one, filled now
        again = c.fetch(uids, [*wanted, b"BODY.PEEK[HEADER.FIELDS (SUBJECT FROM)]"])
        assert len(opened) == 1  # nothing opened: the sealed header column
        for uid, raw in zip(sorted(first), raws, strict=True):
            head = raw[: raw.index(b"\r\n\r\n") + 4]
            assert first[uid][b"BODY[HEADER]"] == head == again[uid][b"BODY[HEADER]"]
            assert first[uid][b"RFC822.SIZE"] == len(raw)
            assert first[uid][b"ENVELOPE"].message_id == messages[uid - 1].message_id.encode()
        [fields] = [v for k, v in again[uids[2]].items() if k.startswith(b"BODY[HEADER.FIELDS")]
        assert b"Objet 2" in fields and b"Date:" not in fields
        # Whole messages: read in one batch, byte for byte.
        full = c.fetch(uids, [b"BODY.PEEK[]"])
        assert [full[uid][b"BODY[]"] for uid in sorted(full)] == raws
    assert len(opened) == 4
    assert Message.objects.get(pk=messages[0].pk).header_block is not None


def test_search_answers_from_the_columns_and_the_index_without_opening_a_message(
    imap: Any, here: Operator, box: Mailbox, colleague: Mailbox, monkeypatch: Any
) -> None:
    from clients.imap import backend
    from mailboxes import blobs

    bilan = send(colleague, [box.address], subject="Résultats de biologie", text="Créatinine.")
    autre = send(colleague, [box.address], subject="Rendez-vous", text="Mardi à 9 h, bureau 4.")
    uid = {m.pk: Entry.objects.get(mailbox=box, message=m).uid for m in (bilan, autre)}
    opened: list[str] = []
    real_read = blobs.read

    def counting_read(name: str, *args: Any) -> bytes:
        opened.append(name)
        return real_read(name, *args)

    monkeypatch.setattr(blobs, "read", counting_read)
    with client(imap, here, box, password_for(box)) as c:
        c.select_folder("INBOX", readonly=True)
        everyone = {uid[bilan.pk], uid[autre.pk]}
        assert set(c.search(["FROM", colleague.address.split("@")[0]])) == everyone
        assert set(c.search(["FROM", "personne-d-autre"])) == set()
        assert c.search(["SUBJECT", "biologie"]) == [uid[bilan.pk]]
        assert c.search(["SUBJECT", "Resultats"]) == [uid[bilan.pk]]  # accents aside
        assert c.search(["BODY", "creatinine"]) == [uid[bilan.pk]]
        assert c.search(["TEXT", "bureau"]) == [uid[autre.pk]]
        assert c.search(["NOT", "SUBJECT", "biologie"]) == [uid[autre.pk]]
        assert set(c.search(["OR", "SUBJECT", "biologie", "BODY", "mardi"])) == everyone
        assert set(c.search(["TO", box.address, "UNSEEN", "LARGER", "10"])) == everyone
        assert c.search(["SMALLER", "10"]) == []
        assert opened == []
        # A key nothing indexes reads the messages, a bounded number of them.
        assert c.search(["HEADER", "X-Mailer", "nope"]) == []
        monkeypatch.setattr(backend, "SEARCH_OPENS", 1)
        with pytest.raises(Exception, match="Recherche trop large"):
            c.search(["HEADER", "X-Mailer", "nope"])
        assert c.search(["HEADER", "X-Mailer", "nope", "SUBJECT", "biologie"]) == []


# --------------------------------------------------------------------------- shared boxes


@pytest.fixture
def service(julien: Person) -> Mailbox:
    """An organisational box under Julien's responsibility."""
    return factories.shared_mailbox(julien.user)


def all_boxes_password(person: Person) -> str:
    _password, raw = services.create_app_password(
        person.user, label="Thunderbird", scope=AppPassword.Scope.IMAP, mailbox=None
    )
    return raw


def shared_names(c: IMAPClient, box: Mailbox) -> dict[str, str]:
    """The shared box's folders as the client lists them (name → its last part)."""
    prefix = f"Partagés/{box.address}/"
    return {
        name: name[len(prefix) :] for _f, _d, name in c.list_folders() if name.startswith(prefix)
    }


def test_a_member_sees_the_shared_box_and_each_opening_is_journaled(
    imap: Any, here: Operator, claire: Person, julien: Person, service: Mailbox
) -> None:
    factories.member(service, claire.user, Membership.Role.SEND)
    message = send(julien.box, [service.address], subject="Pour le service")
    entry = Entry.objects.get(mailbox=service, message=message)
    with client(imap, here, claire.box, all_boxes_password(claire)) as c:
        names = shared_names(c, service)
        inbox = next(n for n in names if n.endswith("Boîte de réception"))
        c.select_folder(inbox)
        c.fetch([entry.uid], ["BODY.PEEK[HEADER]"])
        assert not AccessEvent.objects.filter(mailbox=service).exists()
        body = c.fetch([entry.uid], ["BODY.PEEK[]"])[entry.uid][b"BODY[]"]
    assert body == read_raw(message)
    event = AccessEvent.objects.get(mailbox=service)
    assert (event.actor_id, event.action, event.message_id) == (
        claire.user.pk,
        AccessEvent.Action.OPEN,
        message.pk,
    )


def test_a_read_only_member_examines_and_cannot_store_or_expunge(
    imap: Any, here: Operator, claire: Person, julien: Person, service: Mailbox
) -> None:
    factories.member(service, claire.user, Membership.Role.READ)
    entry = Entry.objects.get(
        mailbox=service, message=send(julien.box, [service.address], subject="Lecture")
    )
    with client(imap, here, claire.box, all_boxes_password(claire)) as c:
        inbox = next(n for n in shared_names(c, service) if n.endswith("Boîte de réception"))
        with pytest.raises(imaplib.IMAP4.readonly):
            # SELECT answers [READ-ONLY] (imaplib, told to write, stops there).
            c.select_folder(inbox)
        # Opened read-only, imaplib lets the commands through: the server must say no.
        c.select_folder(inbox, readonly=True)
        with pytest.raises(Exception, match="READ-ONLY"):
            c.add_flags([entry.uid], [b"\\Deleted"])
        with pytest.raises(Exception, match="READ-ONLY"):
            c.expunge()
        # Reading does not mark it read for the service either.
        c.fetch([entry.uid], ["BODY[]"])
    entry.refresh_from_db()
    assert not entry.seen and entry.folder.role == Folder.Role.INBOX


def test_a_stranger_s_box_is_invisible_and_a_revoked_member_loses_it(
    imap: Any, here: Operator, claire: Person, julien: Person, service: Mailbox
) -> None:
    grant = factories.member(service, claire.user, Membership.Role.SEND)
    with client(imap, here, claire.box, all_boxes_password(claire)) as c:
        listed = [name for _f, _d, name in c.list_folders()]
        assert not any(julien.box.address in name for name in listed)
        with pytest.raises(Exception, match=r"NONEXISTENT|does not exist"):
            c.select_folder(f"Partagés/{julien.box.address}/Boîte de réception")
        inbox = next(n for n in shared_names(c, service) if n.endswith("Boîte de réception"))
        c.select_folder(inbox)
        grant.revoked_at = timezone.now()
        grant.save()
        # At its next command the box is gone for this session.
        with pytest.raises(Exception):  # noqa: B017 (BYE or NO: either ends it)
            c.noop()
            c.select_folder(inbox)
    assert not shared_names_after_login(imap, here, claire, service)


def shared_names_after_login(
    imap: Any, here: Operator, person: Person, box: Mailbox
) -> dict[str, str]:
    with client(imap, here, person.box, all_boxes_password(person)) as c:
        return shared_names(c, box)


def test_a_password_for_one_box_shows_only_that_box(
    imap: Any, here: Operator, claire: Person, julien: Person, service: Mailbox
) -> None:
    factories.member(service, claire.user, Membership.Role.SEND)
    with client(imap, here, claire.box, password_for(claire.box)) as c:
        assert shared_names(c, service) == {}


# --------------------------------------------------------------------------- hostile clients


def raw_session(imap: Any, here: Operator, box: Mailbox) -> imaplib.IMAP4:
    conn = imaplib.IMAP4("127.0.0.1", imap.port, timeout=10)
    conn.starttls(context(here))
    conn.login(box.address, password_for(box))
    return conn


def still_serving(imap: Any, here: Operator) -> None:
    conn = imaplib.IMAP4("127.0.0.1", imap.port, timeout=10)
    conn.starttls(context(here))
    assert "AUTH=PLAIN" in conn.capabilities
    conn.shutdown()


def test_a_huge_literal_ends_the_connection_and_nothing_else(
    imap: Any, here: Operator, box: Mailbox
) -> None:
    conn = raw_session(imap, here, box)
    conn.send(b"a1 APPEND INBOX {2000000000+}\r\n" + b"x" * 1000)
    answer = conn.readline()
    assert answer.startswith(b"* BYE [TOOBIG]") and b"trop longue" in answer
    conn.shutdown()
    # Without LITERAL+, pymap refuses the size before asking for the bytes.
    conn = raw_session(imap, here, box)
    conn.send(b"a2 APPEND INBOX {2000000000}\r\n")
    assert conn.readline().startswith(b"a2 BAD")
    conn.shutdown()
    # A line with no end (past 64 KiB).
    conn = raw_session(imap, here, box)
    conn.send(b"a3 NOOP " + b"y" * 100_000)
    assert conn.readline().startswith(b"* BYE")
    conn.shutdown()
    still_serving(imap, here)


def test_a_silent_client_is_let_go_in_french(
    imap: Any, here: Operator, box: Mailbox, monkeypatch: pytest.MonkeyPatch
) -> None:
    from clients.imap import server

    monkeypatch.setattr(server, "LOGIN_TIMEOUT", 0.5)
    conn = imaplib.IMAP4("127.0.0.1", imap.port, timeout=10)
    line = conn.readline()
    assert line.startswith(b"* BYE") and b"Inactivite" in line
    assert conn.readline() == b""  # closed
    still_serving(imap, here)


def test_any_uid_range_on_an_empty_folder_is_answered_cleanly(
    imap: Any, here: Operator, box: Mailbox
) -> None:
    conn = raw_session(imap, here, box)
    assert conn.select("INBOX") == ("OK", [b"0"])
    for command, args in (
        ("FETCH", ("1:*", "(FLAGS BODY.PEEK[])")),
        ("SEARCH", ("UID", "1:*")),
        ("STORE", ("1:*", "+FLAGS", "(\\Seen)")),
        ("MOVE", ("1:*", "INBOX")),
        ("FETCH", ("4294967295:*", "(UID)")),
    ):
        typ, _data = conn.uid(command, *args)
        assert typ == "OK", command
    assert conn.expunge()[0] == "OK"
    conn.shutdown()


def test_garbage_commands_get_bad_then_a_bye_and_the_server_lives_on(
    imap: Any, here: Operator, box: Mailbox
) -> None:
    conn = raw_session(imap, here, box)
    for garbage in (b"\x00\xff\xfe", b"a1 FETCH", b"a2 SELECT", b"a3 UID FETCH x:y (FLAGS)", b")("):
        conn.send(garbage + b"\r\n")
    answers = []
    while line := conn.readline():
        answers.append(line)
    # Each one BAD, then pymap's limit of five errors in a row ends the connection (the
    # loop above stopped: the server closed it).
    assert len(answers) == 5 and all(b" BAD " in a for a in answers)
    conn.shutdown()
    # Unknown folder names, odd patterns: plain NO or an empty list.
    with client(imap, here, box, password_for(box)) as c:
        assert c.list_folders("", "*a*a*a*a*a*a*a*a*a*zz") == []
        assert [n for _f, _d, n in c.list_folders("", "INB%")] == ["INBOX"]
        with pytest.raises(Exception, match="trop complexe"):
            c.list_folders("", "*%" * 40)
        with pytest.raises(Exception, match="NONEXISTENT"):
            c.select_folder("../" * 50 + "\x7f")
    still_serving(imap, here)


def test_namespace_and_enable_are_answered(imap: Any, here: Operator, box: Mailbox) -> None:
    with client(imap, here, box, password_for(box)) as c:
        capabilities = c.capabilities()
        for wanted in (b"IDLE", b"UIDPLUS", b"MOVE", b"SPECIAL-USE", b"NAMESPACE", b"ENABLE"):
            assert wanted in capabilities
        personal, other, shared = c.namespace()
        assert personal == (("", "/"),) and other is None
        assert shared == (("Partagés/", "/"),)
        assert c.enable("CONDSTORE") == []
        assert c.select_folder("INBOX")[b"EXISTS"] == 0


def test_a_response_leaves_in_one_write_whatever_pymap_cuts_it_into() -> None:
    """A FETCH answer written by pieces reached an IDLE client over TLS as broken lines
    ("unexpected response: (FLAGS ())"): each response now goes out in one write."""

    class Recorder:
        def __init__(self) -> None:
            self.writes: list[bytes] = []

        def write(self, data: bytes) -> None:
            self.writes.append(bytes(data))

        async def drain(self) -> None:
            return None

    class Pieces(UntaggedResponse):
        def write(self, writer: Any) -> None:
            writer.write(b"* 3 FETCH ")
            writer.write(b"(FLAGS ())\r\n")

    response = ResponseOk(b"a1", b"IDLE terminated")
    response.add_untagged(Pieces(b""))
    recorder = Recorder()
    connection = Connection.__new__(Connection)
    connection.writer = recorder  # type: ignore[assignment]
    asyncio.run(connection.write_response(response))
    assert recorder.writes == [b"* 3 FETCH (FLAGS ())\r\na1 OK IDLE terminated\r\n"]


# --------------------------------------------------------------------------- shared views


def test_connections_to_one_folder_share_its_view_and_see_each_other_s_changes(
    imap: Any, here: Operator, claire: Person, box: Mailbox, colleague: Mailbox, monkeypatch: Any
) -> None:
    from clients.imap import store

    calls: list[str] = []
    for name in ("folder_state", "folder_changes", "search_uids", "load_many"):
        real = getattr(store, name)

        def counted(*args: Any, _real: Any = real, _name: str = name, **kwargs: Any) -> Any:
            calls.append(_name)
            return _real(*args, **kwargs)

        monkeypatch.setattr(store, name, counted)
    entries = [
        Entry.objects.get(mailbox=box, message=send(colleague, [box.address], subject=s))
        for s in ("Un", "Deux", "Trois")
    ]
    uids = [e.uid for e in entries]
    secret = password_for(box)
    with client(imap, here, box, secret) as first, client(imap, here, box, secret) as second:
        first.select_folder("INBOX")
        assert second.select_folder("INBOX")[b"EXISTS"] == 3
        # The second SELECT read no row: the first one's view serves both.
        assert calls.count("folder_state") == 1
        first.add_flags([uids[0]], [b"\\Seen"])
        first.add_flags([uids[1]], [b"\\Deleted"])
        second.noop()
        flags = second.get_flags(uids)
        assert b"\\Seen" in flags[uids[0]] and b"\\Deleted" in flags[uids[1]]
        # Flags, dates and sizes are the view's: no query, no message opened.
        before = len(calls)
        assert second.search(["UNSEEN"]) == uids[1:]
        assert second.search(["SEEN", "LARGER", "10"]) == [uids[0]]
        assert second.search(["DELETED"]) == [uids[1]]
        assert second.search(["SINCE", timezone.now().date()]) == uids
        assert second.search(["NOT", "SEEN", "UID", f"{uids[2]}:*"]) == [uids[2]]
        assert calls[before:] == []
        # A delivery and an expunge: what changed is read, not the folder again.
        fourth = send(colleague, [box.address], subject="Quatre")
        first.expunge()
        heard = second.noop()[1]
        assert (2, b"EXPUNGE") in heard and (3, b"EXISTS") in heard
        assert calls.count("folder_state") == 1 and "folder_changes" in calls
        new_uid = Entry.objects.get(mailbox=box, message=fourth).uid
        assert second.search(["UNSEEN"]) == [uids[2], new_uid]
        # The webmail's change shows too.
        login(claire.user).post(reverse("webmail_flag", args=[entries[2].pk]), {"flagged": "1"})
        second.noop()
        assert b"\\Flagged" in second.get_flags([uids[2]])[uids[2]]
        assert set(first.search(["FLAGGED"])) == {uids[2]}


def test_an_expunge_seen_during_a_sequence_number_fetch_is_told_after_it(
    imap: Any, here: Operator, box: Mailbox, colleague: Mailbox
) -> None:
    entries = [
        Entry.objects.get(mailbox=box, message=send(colleague, [box.address], subject=s))
        for s in ("Un", "Deux", "Trois")
    ]
    secret = password_for(box)
    with client(imap, here, box, secret) as first, client(imap, here, box, secret) as second:
        first.select_folder("INBOX")
        second.select_folder("INBOX")
        first.add_flags([entries[1].uid], [b"\\Deleted"])
        first.expunge()
        # A FETCH by sequence numbers must not renumber under the client: no EXPUNGE
        # during it, the three numbers it knew still answered.
        second.use_uid = False
        fetched = second.fetch([1, 2, 3], ["UID"])
        assert sorted(fetched) == [1, 2, 3]
        # Told at the next command that may renumber (and only then: it was kept back).
        heard = second.noop()[1]
        assert (2, b"EXPUNGE") in heard
        assert sorted(second.fetch([1, 2, 3], ["UID"])) == [1, 2]
        second.use_uid = True
        assert second.search(["ALL"]) == [entries[0].uid, entries[2].uid]


def test_the_byte_formatting_shortcuts_answer_as_pymap_does() -> None:
    from pymap.bytes import BytesFormat
    from pymap.parsing.primitives import List, Number
    from pymap.parsing.specials import DateTime

    from clients.imap import speedups

    values: list[Any] = [
        (b"a", b"b"),
        (b"UID", Number(7)),
        b"x",
        Number(3),
        [b"a", b"b"],
        (DateTime(timezone.now()), List([b"\\Seen"])),
    ]
    formats = [BytesFormat(b"%b %b"), BytesFormat(b"%b %b"), BytesFormat(b"%b")]

    def formatted() -> list[bytes]:
        out = []
        for value in values:
            count = len(value) if isinstance(value, tuple | list) else 1
            out.append(formats[0 if count == 2 else 2] % value)
        return out

    before = formatted()
    assert speedups.apply()
    assert formatted() == before
    with pytest.raises(NotImplementedError):
        BytesFormat(b"%b") % object()  # type: ignore[operator]  # refused, as pymap does
