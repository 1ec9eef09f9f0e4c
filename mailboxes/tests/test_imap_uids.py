"""IMAP UIDs given by the database: every door that places or moves an entry keeps them.

A UID names a message in a folder for IMAP clients (RFC 3501 2.3.1.1): strictly
ascending, never reused while the folder's UIDVALIDITY stands. The triggers of migration
0017 give them; these tests take the webmail's paths (one move, the selection toolbar,
the trash) and check the promise.
"""

from __future__ import annotations

import pytest
from django.db import connection
from django.urls import reverse

from mailboxes import dbtriggers
from mailboxes.models import Entry, Folder, FolderCounter, Mailbox
from mailboxes.tests.test_views import entry_of, folder
from tests.personas import Person, login, send

pytestmark = pytest.mark.django_db


def assert_uids_true() -> None:
    """Every entry has a UID, unique in its folder and below the folder's next one."""
    rows = list(Entry.objects.values_list("folder_id", "uid"))
    assert all(uid > 0 for _f, uid in rows)
    assert len(set(rows)) == len(rows), "two entries of a folder share a UID"
    next_uid = dict(FolderCounter.objects.values_list("folder_id", "uid_next"))
    assert all(uid < next_uid[f] for f, uid in rows)


def uids(box: Mailbox, role: str) -> list[int]:
    return list(
        Entry.objects.filter(mailbox=box, folder__role=role)
        .order_by("uid")
        .values_list("uid", flat=True)
    )


def counter(box: Mailbox, role: str) -> FolderCounter:
    return FolderCounter.objects.get(folder=folder(box, role))


def test_delivered_messages_get_ascending_uids_in_their_folder(
    claire: Person, julien: Person
) -> None:
    (_user, box), nurse = claire, julien.box
    for i in range(3):
        send(nurse, [box.address], subject=f"Résultat {i}")
    assert uids(box, Folder.Role.INBOX) == [1, 2, 3]
    assert counter(box, Folder.Role.INBOX).uid_next == 4
    # The sender's Sent copy is numbered in its own folder.
    assert uids(nurse, Folder.Role.SENT) == [1, 2, 3]


def test_a_message_moved_in_the_webmail_gets_a_fresh_uid_and_uids_never_go_back(
    claire: Person, julien: Person
) -> None:
    (user, box), nurse = claire, julien.box
    client = login(user)
    first = entry_of(box, send(nurse, [box.address], subject="Premier"))
    second = entry_of(box, send(nurse, [box.address], subject="Second"))
    archive = folder(box, Folder.Role.ARCHIVE)
    before = counter(box, Folder.Role.INBOX).modseq

    client.post(reverse("webmail_move", args=[first.pk]), {"folder": archive.pk})
    moved = Entry.objects.get(pk=first.pk)
    assert (moved.folder_id, moved.uid) == (archive.pk, 1)
    # The inbox saw a departure: its modification sequence went up, its UIDs stay.
    assert counter(box, Folder.Role.INBOX).modseq > before
    assert uids(box, Folder.Role.INBOX) == [2]

    # Back to the inbox: a new UID, above every one the inbox ever gave.
    client.post(reverse("webmail_move", args=[first.pk]), {"folder": folder(box, "inbox").pk})
    assert Entry.objects.get(pk=first.pk).uid == 3
    client.post(reverse("webmail_trash", args=[second.pk]))
    client.post(reverse("webmail_restore", args=[second.pk]))
    assert uids(box, Folder.Role.INBOX) == [3, 4]
    assert uids(box, Folder.Role.TRASH) == []
    assert counter(box, Folder.Role.TRASH).uid_next == 2


def test_a_bulk_move_numbers_each_message_anew_in_the_target(
    claire: Person, julien: Person
) -> None:
    (user, box), nurse = claire, julien.box
    entries = [entry_of(box, send(nurse, [box.address], subject=f"R{i}")) for i in range(4)]
    archive = folder(box, Folder.Role.ARCHIVE)
    entry_of(box, send(nurse, [box.address], subject="Déjà classé"))
    Entry.objects.filter(mailbox=box, folder__role="inbox", uid=5).update(folder=archive)
    response = login(user).post(
        reverse("webmail_bulk", args=[box.pk]),
        {"action": f"deplacer:{archive.pk}", "entries": [str(e.pk) for e in entries[:3]]},
    )
    assert response.status_code in (200, 302)
    archived = uids(box, Folder.Role.ARCHIVE)

    assert archived == [1, 2, 3, 4]
    assert uids(box, Folder.Role.INBOX) == [4]
    assert counter(box, Folder.Role.ARCHIVE).uid_next == 5
    assert_uids_true()


def test_a_flag_change_keeps_the_uid_and_raises_the_modseq(claire: Person, julien: Person) -> None:
    (user, box), nurse = claire, julien.box
    entry = entry_of(box, send(nurse, [box.address]))
    before = Entry.objects.get(pk=entry.pk)
    login(user).post(reverse("webmail_flag", args=[entry.pk]), {"flagged": "1"})
    after = Entry.objects.get(pk=entry.pk)
    assert after.flagged and after.uid == before.uid and after.modseq > before.modseq
    assert counter(box, Folder.Role.INBOX).modseq == after.modseq


def test_a_stale_entry_saved_whole_keeps_its_uid(claire: Person, julien: Person) -> None:
    (_user, box), nurse = claire, julien.box
    entry = entry_of(box, send(nurse, [box.address]))
    stale = Entry.objects.get(pk=entry.pk)
    stale.uid = 99
    stale.modseq = 0
    stale.seen = True
    stale.save()
    kept = Entry.objects.get(pk=entry.pk)
    assert kept.uid == 1 and kept.seen and kept.modseq > 1


def test_a_new_folder_has_a_uidvalidity_and_the_triggers_are_there(claire: Person) -> None:
    _user, box = claire
    assert all(f.uid_validity > 0 for f in Folder.objects.filter(mailbox=box))
    assert dbtriggers.missing() == []
    if connection.vendor == "sqlite":
        assert "mailboxes_entry_uid_kept" in dbtriggers.installed()
