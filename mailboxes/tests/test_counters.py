"""Folder counters kept by the database: every path that changes entries keeps them true.

The side menu and the mailbox switcher read ``FolderCounter`` rows that triggers keep
(migration 0009). Each test drives what a user (or staff, or software through the API)
does, then compares every counter of the database with a real count.
"""

from __future__ import annotations

import re
from typing import Any

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import connection
from django.db.models import Count, Q
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, rule, run_state_machine_as_test

from audit.models import AuditEvent
from mailboxes import dbtriggers, selectors, services
from mailboxes.models import Entry, Folder, FolderCounter, Mailbox, Message, Quarantine
from mailboxes.services import quarantine
from mailboxes.tests.test_views import entry_of, folder, listed_entry
from mssante.lib import mime
from tests import factories
from tests.personas import Lab, Person, after_commit, login, send, submit
from trust.scanning import ScanStatus, ScanVerdict

pytestmark = pytest.mark.django_db

PDF = b"%PDF-1.4\n1 0 obj<<>>endobj\ntrailer<<>>\n%%EOF\n"


# --------------------------------------------------------------------------- helpers


def real_counts() -> dict[int, tuple[int, int]]:
    """Every folder of the database: (total, unread), counted."""
    counted = {
        row["folder_id"]: (row["total"], row["unread"])
        for row in Entry.objects.values("folder_id")
        .annotate(total=Count("pk"), unread=Count("pk", filter=Q(seen=False)))
        .order_by()
    }
    return {pk: counted.get(pk, (0, 0)) for pk in Folder.objects.values_list("pk", flat=True)}


def stored_counts() -> dict[int, tuple[int, int] | None]:
    """Every folder of the database: (total, unread) as its counter says (None: no row)."""
    stored = {c.folder_id: (c.total, c.unread) for c in FolderCounter.objects.all()}
    return {pk: stored.get(pk) for pk in Folder.objects.values_list("pk", flat=True)}


def assert_counters_true() -> None:
    assert stored_counts() == real_counts()
    # No counter left behind by a folder that is gone.
    assert not FolderCounter.objects.exclude(folder_id__in=Folder.objects.values("pk")).exists()


def menu(client: Client, box: Mailbox) -> dict[str, tuple[int, int]]:
    """The side menu of the box's inbox page: role → (unread, total), and its badges agree."""
    response = client.get(reverse("webmail_mailbox", args=[box.pk]))
    assert response.status_code == 200
    html = response.content.decode()
    shown = {}
    for item in response.context["folders"]:
        role = item.folder.role if item.folder.role != Folder.Role.CUSTOM else item.folder.name
        shown[role] = (item.unread, item.total)
        badge = re.search(
            rf'data-role="{item.folder.role}">\s*<span>{re.escape(item.label)}</span>\s*'
            r'(?:<span class="webmail-count webmail-count--unread">(\d+))?',
            html,
        )
        assert badge is not None
        if item.folder.role not in (Folder.Role.SENT, Folder.Role.TRASH, Folder.Role.DRAFTS):
            assert int(badge.group(1) or 0) == item.unread
    return shown


# --------------------------------------------------------------------------- the user's paths


def test_the_side_menu_follows_every_webmail_action(claire: Person, julien: Person) -> None:
    (user, box), nurse = claire, julien.box
    client = login(user)
    first = send(nurse, [box.address], subject="Premier")
    second = send(nurse, [box.address], subject="Second")
    assert menu(client, box)["inbox"] == (2, 2)
    assert menu(login(julien.user), nurse)["sent"] == (0, 2)
    assert_counters_true()

    one, two = entry_of(box, first), entry_of(box, second)
    client.get(reverse("webmail_read", args=[one.pk]))
    assert menu(client, box)["inbox"] == (1, 2)
    client.post(reverse("webmail_mark_unread", args=[one.pk]))
    assert menu(client, box)["inbox"] == (2, 2)
    client.post(reverse("webmail_flag", args=[one.pk]), {"flagged": "1"})
    assert menu(client, box)["inbox"] == (2, 2)
    assert_counters_true()

    archive = folder(box, Folder.Role.ARCHIVE)
    client.post(reverse("webmail_move", args=[one.pk]), {"folder": archive.pk})
    shown = menu(client, box)
    assert shown["inbox"] == (1, 1) and shown["archive"] == (1, 1)
    client.post(reverse("webmail_trash", args=[two.pk]))
    shown = menu(client, box)
    assert shown["inbox"] == (0, 0) and shown["trash"] == (1, 1)
    client.post(reverse("webmail_restore", args=[two.pk]))
    shown = menu(client, box)
    assert shown["inbox"] == (1, 1) and shown["trash"] == (0, 0)
    assert_counters_true()

    client.post(reverse("webmail_trash", args=[two.pk]))
    client.post(reverse("webmail_trash", args=[one.pk]))
    assert menu(client, box)["trash"] == (2, 2)
    client.post(reverse("webmail_empty_trash", args=[box.pk]))
    shown = menu(client, box)
    assert shown["trash"] == (0, 0) and shown["archive"] == (0, 0)
    assert_counters_true()


@pytest.mark.parametrize("page", ["inbox", "read", "search"])
def test_no_page_counts_the_messages_of_a_box(
    claire: Person, julien: Person, secretariat: Mailbox, page: str
) -> None:
    """The side menu and the switcher read counters: no query groups or counts the entries
    of a folder or a box (only the conversation of the message read is counted)."""
    (user, box), nurse = claire, julien.box
    for _ in range(3):
        send(nurse, [box.address, secretariat.address], subject="Bilan")
    client = login(user)
    url = {
        "inbox": reverse("webmail_mailbox", args=[box.pk]),
        "read": reverse("webmail_read", args=[Entry.objects.filter(mailbox=box).first().pk]),
        "search": client.post(reverse("webmail_search", args=[box.pk]), {"q": "Bilan"})["Location"],
    }[page]
    client.get(url)
    with CaptureQueriesContext(connection) as queries:
        assert client.get(url).status_code == 200
    on_entries = [q["sql"] for q in queries if '"mailboxes_entry"' in q["sql"]]
    assert on_entries
    for sql in on_entries:
        assert "GROUP BY" not in sql
        assert "COUNT(" not in sql or '"mailboxes_message"."thread_key" =' in sql


def test_a_custom_folder_counts_and_goes_with_its_counter(claire: Person, julien: Person) -> None:
    (user, box), nurse = claire, julien.box
    client = login(user)
    client.post(reverse("webmail_folder_create", args=[box.pk]), {"name": "Patients"})
    custom = selectors.folder_by_name(box, "Patients")
    assert custom is not None
    entry = entry_of(box, send(nurse, [box.address]))
    client.post(reverse("webmail_move", args=[entry.pk]), {"folder": custom.pk})
    assert menu(client, box)["Patients"] == (1, 1)
    client.post(reverse("webmail_restore", args=[entry.pk]))  # not in the trash: no-op
    client.post(reverse("webmail_trash", args=[entry.pk]))
    client.post(reverse("webmail_restore", args=[entry.pk]))
    assert menu(client, box)["Patients"] == (1, 1)
    client.post(reverse("webmail_move", args=[entry.pk]), {"folder": folder(box, "inbox").pk})
    client.post(reverse("webmail_folder_delete", args=[custom.pk]))
    assert not Folder.objects.filter(pk=custom.pk).exists()
    assert not FolderCounter.objects.filter(folder_id=custom.pk).exists()
    assert_counters_true()


def test_the_switcher_shows_the_unread_of_each_inbox(
    claire: Person, julien: Person, secretariat: Mailbox
) -> None:
    (user, box), nurse = claire, julien.box
    send(nurse, [secretariat.address], subject="Au secrétariat")
    send(nurse, [secretariat.address], subject="Encore")
    send(nurse, [box.address], subject="À Claire")
    response = login(user).get(reverse("webmail_mailbox", args=[box.pk]))
    unread = {item.mailbox.address: item.unread for item in response.context["switcher"]}
    assert unread == {box.address: 1, secretariat.address: 2}
    html = response.content.decode()
    assert re.search(
        rf'data-mailbox="{re.escape(secretariat.address)}">\s*<span>[^<]*</span>\s*'
        r'<span class="webmail-count webmail-count--unread">2<',
        html,
    )


def test_software_filing_through_the_api_keeps_the_counters(
    laboratoire: Lab, claire: Person
) -> None:
    lab, doctor = laboratoire.box, claire.box
    message = send(doctor, [lab.address], subject="Demande")
    client = Client()
    with after_commit():
        answer = client.post(
            f"/api/v1/messages/{message.public_id}/flags",
            data='{"seen": true, "folder": "archive"}',
            content_type="application/json",
            headers={"Authorization": f"Bearer {laboratoire.raw}"},
        )
    assert answer.status_code == 200, answer.content
    counters = {
        c.folder.role: (c.total, c.unread)
        for c in FolderCounter.objects.filter(folder__mailbox=lab).select_related("folder")
    }
    assert counters["inbox"] == (0, 0) and counters["archive"] == (1, 0)
    assert_counters_true()


def test_staff_deleting_a_quarantined_message_keeps_the_counters(
    claire: Person, julien: Person, staff_client: Client, django_capture_on_commit_callbacks: Any
) -> None:
    (user, box), nurse = claire, julien.box
    message = submit(
        box, [nurse.address], attachments=[mime.Attachment("cr.pdf", "application/pdf", PDF)]
    )
    with django_capture_on_commit_callbacks(execute=True):
        message.scan_status = Message.ScanStatus.INFECTED
        message.save(update_fields=["scan_status"])
        quarantine.quarantine_message(
            message, ScanVerdict(ScanStatus.INFECTED, ("Test.EICAR",), parts_scanned=2)
        )
    assert menu(login(user), box)["sent"] == (0, 1)
    record = Quarantine.objects.get(message=message)
    form = {"action": "delete_for_good", "_selected_action": [record.pk]}
    staff_client.post("/admin/mailboxes/quarantine/", {**form, "apply": "1", "reason": "Virus"})
    assert not Message.objects.filter(pk=message.pk).exists()
    assert menu(login(user), box)["sent"] == (0, 0)
    assert_counters_true()


def test_a_closed_box_keeps_its_counts_and_a_deleted_one_takes_its_counters(
    claire: Person, julien: Person, staff: Any
) -> None:
    """No page deletes a box; what the ORM (or a purge to come) does stays true: its
    entries go first (they protect its folders), then the box with its folders."""
    (_user, box), nurse = claire, julien.box
    send(nurse, [box.address], subject="Un")
    send(box, [nurse.address], subject="Deux")
    services.close_mailbox(box, by=staff, reason="Départ")
    assert_counters_true()
    folders = list(box.folders.values_list("pk", flat=True))
    Entry.objects.filter(mailbox=box).delete()
    assert_counters_true()
    box.delete()
    assert not FolderCounter.objects.filter(folder_id__in=folders).exists()
    assert FolderCounter.objects.get(folder=folder(nurse, "inbox")).total == 1
    assert_counters_true()


def test_an_entry_saved_whole_from_python_keeps_counters_and_search_tokens(
    claire: Person, julien: Person
) -> None:
    (_user, box), nurse = claire, julien.box
    entry = entry_of(box, send(nurse, [box.address], subject="Échographie cardiaque"))
    stale = Entry.objects.get(pk=entry.pk)
    stale.seen = True
    stale.save()
    assert_counters_true()
    assert [e.pk for e in selectors.search(box, "cardiaque").entries] == [entry.pk]


def test_an_entry_inserted_in_sql_is_counted_and_found_once_indexed(claire: Person) -> None:
    """What a set-based insert would do without the ORM: counted at once; its search
    tokens are computed in Python, by the rebuild command for such a row."""
    _user, box = claire
    message = listed_entry(box, subject="Écrit en SQL").message
    Entry.objects.filter(message=message).delete()
    inbox = folder(box, Folder.Role.INBOX)
    with connection.cursor() as cursor:
        cursor.execute(
            "INSERT INTO mailboxes_entry (mailbox_id, message_id, folder_id, seen, flagged, "
            "answered, received_at) VALUES (%s, %s, %s, %s, %s, %s, %s)",
            [box.pk, message.pk, inbox.pk, False, False, False, message.date],
        )
    assert FolderCounter.objects.get(folder=inbox).unread == 1
    assert_counters_true()
    assert selectors.search(box, "en SQL").entries == []
    call_command("rebuild_search_index", "--manquants")
    assert [e.message_id for e in selectors.search(box, "en SQL").entries] == [message.pk]


# --------------------------------------------------------------------------- the operators' check


def test_recount_folders_reports_a_drift_then_repairs_it(claire: Person, capsys: Any) -> None:
    _user, box = claire
    listed_entry(box)
    inbox = folder(box, Folder.Role.INBOX)
    with connection.cursor() as cursor:
        cursor.execute(
            "UPDATE mailboxes_foldercounter SET total = 7, unread = 5 WHERE folder_id = %s",
            [inbox.pk],
        )
    with pytest.raises(CommandError):
        call_command("recount_folders", "--verifier")
    out = capsys.readouterr().out
    assert f"{box.address} « {inbox.name} »" in out and "compteur 7/5, compté 1/1" in out
    assert FolderCounter.objects.get(folder=inbox).total == 7
    call_command("recount_folders", "--boite", box.address)
    assert "corrigé" in capsys.readouterr().out
    assert_counters_true()
    event = AuditEvent.objects.get(action="folders.recounted")
    assert event.data["folders"] == [{"folder": inbox.pk, "stored": [7, 5], "counted": [1, 1]}]
    call_command("recount_folders", "--verifier")
    assert "0 écart(s)" in capsys.readouterr().out


def test_the_database_has_every_trigger() -> None:
    assert dbtriggers.missing() == []


@pytest.mark.skipif(
    connection.vendor != "sqlite", reason="PostgreSQL keeps triggers when a table is altered"
)
def test_a_migrate_puts_back_sqlite_triggers_a_table_rebuild_dropped(capsys: Any) -> None:
    with connection.cursor() as cursor:
        cursor.execute("DROP TRIGGER mailboxes_entry_counted_update")
    assert dbtriggers.missing() == ["mailboxes_entry_counted_update"]
    with pytest.raises(CommandError):
        call_command("recount_folders", "--verifier")
    assert "mailboxes_entry_counted_update" in capsys.readouterr().err
    call_command("migrate", verbosity=0)
    assert dbtriggers.missing() == []


# --------------------------------------------------------------------------- any order of writes


class EntryWrites(RuleBasedStateMachine):
    """Writes of every shape the code uses, in any order: the counters stay counts."""

    def __init__(self) -> None:
        super().__init__()
        self.boxes = [factories.mailbox(), factories.mailbox()]
        self.folders = list(Folder.objects.filter(mailbox__in=self.boxes))

    def _entries(self, box: int) -> list[Entry]:
        return list(Entry.objects.filter(mailbox=self.boxes[box]).order_by("pk"))

    @rule(box=st.integers(0, 1), n=st.integers(1, 4), seen=st.booleans(), again=st.booleans())
    def deliver(self, box: int, n: int, seen: bool, again: bool) -> None:
        # As the pipeline does: one INSERT … ON CONFLICT DO NOTHING for a batch.
        mailbox = self.boxes[box]
        inbox = next(f for f in self.folders if f.mailbox_id == mailbox.pk and f.role == "inbox")
        entries = [
            Entry(mailbox=mailbox, message=listed_entry(mailbox).message, folder=inbox, seen=seen)
            for _ in range(n)
        ]
        Entry.objects.filter(message__in=[e.message for e in entries]).delete()
        Entry.objects.bulk_create(entries, ignore_conflicts=True)
        if again:
            Entry.objects.bulk_create(
                [Entry(mailbox=e.mailbox, message=e.message, folder=inbox) for e in entries],
                ignore_conflicts=True,
            )

    @rule(box=st.integers(0, 1), data=st.data())
    def move(self, box: int, data: st.DataObject) -> None:
        entries = self._entries(box)
        if not entries:
            return
        chosen = data.draw(st.lists(st.sampled_from(entries), max_size=4, unique=True))
        target = data.draw(
            st.sampled_from(
                [
                    f
                    for f in self.folders
                    if f.mailbox_id == self.boxes[box].pk and f.role != "drafts"
                ]
            )
        )
        services.move_entries(chosen, target, by=None)

    @rule(box=st.integers(0, 1), seen=st.booleans(), data=st.data())
    def flag(self, box: int, seen: bool, data: st.DataObject) -> None:
        entries = self._entries(box)
        if entries:
            chosen = data.draw(st.lists(st.sampled_from(entries), max_size=4, unique=True))
            Entry.objects.filter(pk__in=[e.pk for e in chosen]).update(seen=seen)

    @rule(box=st.integers(0, 1), data=st.data())
    def save_an_instance(self, box: int, data: st.DataObject) -> None:
        entries = self._entries(box)
        if entries:
            entry = data.draw(st.sampled_from(entries))
            entry.seen = not entry.seen
            entry.folder = data.draw(
                st.sampled_from([f for f in self.folders if f.mailbox_id == entry.mailbox_id])
            )
            entry.save()

    @rule(box=st.integers(0, 1), data=st.data())
    def trash_and_restore(self, box: int, data: st.DataObject) -> None:
        entries = self._entries(box)
        if entries:
            chosen = data.draw(st.lists(st.sampled_from(entries), max_size=4, unique=True))
            services.trash_entries(chosen, by=None)
            if data.draw(st.booleans()):
                services.restore_entries(chosen[: len(chosen) // 2 + 1], by=None)

    @rule(box=st.integers(0, 1), data=st.data())
    def delete(self, box: int, data: st.DataObject) -> None:
        entries = self._entries(box)
        if entries:
            chosen = data.draw(st.lists(st.sampled_from(entries), max_size=3, unique=True))
            Entry.objects.filter(pk__in=[e.pk for e in chosen]).delete()

    @rule(box=st.integers(0, 1))
    def empty_trash(self, box: int) -> None:
        mailbox = self.boxes[box]
        trash = Folder.objects.get(mailbox=mailbox, role="trash")
        Entry.objects.filter(folder=trash).delete()

    @invariant()
    def counters_are_counts(self) -> None:
        assert_counters_true()


def test_any_sequence_of_writes_leaves_true_counters() -> None:
    run_state_machine_as_test(
        EntryWrites,
        settings=settings(
            max_examples=15,
            stateful_step_count=12,
            deadline=None,
            suppress_health_check=[HealthCheck.too_slow],
        ),
    )
