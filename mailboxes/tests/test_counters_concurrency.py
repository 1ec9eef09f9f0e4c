"""Folder counters under concurrent writers, on the real PostgreSQL: no drift, no deadlock.

Several threads (each its own connection, as web and worker processes are) write entries
the ways the code does, each write its own transaction: batches delivered to several
boxes in any order, moves, flag changes, trash and restore, deletions, while an operator
recounts. At the end every counter equals a real count, no transaction died of a
deadlock, and the recount running among them never saw a drift.

Each thread writes its own entries (of its own messages) into the same boxes and folders:
what they share is the folders' counter rows, so a deadlock here could only come from
them. (Two writers of the same entries in different orders may deadlock on the entry rows
themselves, counters or not; PostgreSQL then aborts one of them.)
"""

from __future__ import annotations

import random
import threading
import uuid

import pytest
from django.db import connection, connections, transaction
from django.utils import timezone

from mailboxes import services
from mailboxes.models import Entry, Folder, Mailbox, Message
from mailboxes.tests.test_counters import assert_counters_true
from mailboxes.tests.test_imap_uids import assert_uids_true
from tests import factories

pytestmark = [pytest.mark.services, pytest.mark.django_db(transaction=True)]

THREADS = 6
STEPS = 40


def _messages(n: int) -> list[Message]:
    now = timezone.now()
    return Message.objects.bulk_create(
        Message(
            message_id=f"<{uuid.uuid4().hex}@test>",
            thread_key=uuid.uuid4().hex,
            from_addr="expediteur@hopital.mssante.test",
            subject=f"Message {i}",
            date=now,
            size=100,
            blob_name=f"none/{uuid.uuid4().hex}",
            key_id="k",
            wrapped_key=b"k",
        )
        for i in range(n)
    )


class Writer:
    def __init__(self, seed: int, boxes: list[Mailbox], messages: list[Message]) -> None:
        self.rng = random.Random(seed)
        self.boxes = boxes
        self.messages = messages
        self.folders = {
            box.pk: list(Folder.objects.filter(mailbox=box).exclude(role="drafts")) for box in boxes
        }

    def entries(self, box: Mailbox, most: int = 5) -> list[Entry]:
        mine = Entry.objects.filter(mailbox=box, message__in=self.messages)
        found = list(mine.order_by("?")[:most])
        return self.rng.sample(found, self.rng.randint(0, len(found))) if found else []

    def step(self) -> list[object]:
        rng = self.rng
        box = rng.choice(self.boxes)
        what = rng.choice(
            [
                "deliver",
                "deliver",
                "move",
                "flag",
                "flag_many",
                "trash",
                "delete",
                "empty",
                "recount",
            ]
        )
        if what == "deliver":
            # A batch of the pipeline: one INSERT … ON CONFLICT DO NOTHING to several
            # boxes, in whatever order the deliveries came.
            targets = rng.sample(self.boxes, rng.randint(1, len(self.boxes)))
            batch = [
                Entry(
                    mailbox=target,
                    message=rng.choice(self.messages),
                    folder=next(f for f in self.folders[target.pk] if f.role == "inbox"),
                    seen=rng.random() < 0.3,
                )
                for target in targets
                for _ in range(rng.randint(1, 3))
            ]
            with transaction.atomic():
                Entry.objects.bulk_create(batch, ignore_conflicts=True)
        elif what == "move":
            chosen = self.entries(box)
            target = rng.choice([f for f in self.folders[box.pk] if f.role != "trash"])
            if chosen:
                services.move_entries(chosen, target, by=None)
        elif what == "flag":
            chosen = self.entries(box)
            if chosen:
                services.set_flags(chosen, by=None, seen=rng.random() < 0.5)
        elif what == "flag_many":
            # One statement over entries of several boxes and folders.
            ids = [e.pk for b in self.boxes for e in self.entries(b, 3)]
            with transaction.atomic():
                Entry.objects.filter(pk__in=ids).update(seen=rng.random() < 0.5)
        elif what == "trash":
            chosen = self.entries(box)
            if chosen:
                services.trash_entries(chosen, by=None)
                if rng.random() < 0.5:
                    services.restore_entries(chosen, by=None)
        elif what == "delete":
            chosen = self.entries(box, 2)
            with transaction.atomic():
                Entry.objects.filter(pk__in=[e.pk for e in chosen]).delete()
        elif what == "empty":
            with transaction.atomic():
                Entry.objects.filter(
                    folder__mailbox=box, folder__role="trash", message__in=self.messages
                ).delete()
        else:
            return list(services.recount_folders([box], fix=False))
        return []


def test_concurrent_writers_leave_true_counters_and_never_deadlock() -> None:
    if connection.vendor != "postgresql":
        pytest.skip("needs PostgreSQL: SQLite serialises every writer")
    boxes = [factories.mailbox() for _ in range(4)]
    for box in boxes:
        services.create_folder(box, "Dossier", by=None)
    messages = _messages(THREADS * 15)
    seed = random.SystemRandom().randrange(2**32)
    barrier = threading.Barrier(THREADS)
    errors: list[BaseException] = []
    drifts: list[object] = []
    lock = threading.Lock()

    def run(n: int) -> None:
        try:
            writer = Writer(seed + n, boxes, messages[n::THREADS])
            barrier.wait()
            for _ in range(STEPS):
                seen = writer.step()
                with lock:
                    drifts.extend(seen)
        except BaseException as exc:  # a deadlock, a lost update… reported below
            with lock:
                errors.append(exc)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=run, args=(n,)) for n in range(THREADS)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=300)
    assert errors == [], f"seed {seed}: {errors!r}"
    assert drifts == [], f"seed {seed}: the recount saw a drift"
    assert Entry.objects.exists()
    assert_counters_true()
    # The IMAP UIDs too (migration 0017): unique in each folder, below its next UID.
    assert_uids_true()
