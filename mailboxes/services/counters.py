"""Checking the folder counters the database keeps against a real count (``recount_folders``).

The counters are maintained by triggers (``mailboxes.dbtriggers``), not by this module;
it exists for operators: after a restore, a trigger dropped by hand, or to prove nothing
drifted. Each box is recounted in a transaction of its own that first locks its counter
rows (in folder order, as the triggers do): a delivery committing meanwhile either
committed before the count (counted) or waits for the lock and adds itself after it.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass

from django.db import transaction
from django.db.models import Count, Q

from audit import journal
from mailboxes.models import Entry, Folder, FolderCounter, Mailbox


@dataclass(frozen=True, slots=True)
class Drift:
    """A folder whose counter said something else than its entries."""

    mailbox: str
    folder_id: int
    folder: str
    stored: tuple[int, int] | None  # (total, unread); None: no counter row at all
    counted: tuple[int, int]


def recount_folders(
    mailboxes: Iterable[Mailbox] | None = None, *, fix: bool = True
) -> Iterator[Drift]:
    """Count the entries of every folder again; yield each folder whose counter differs.

    With ``fix``, the counter takes the counted value in the same transaction, and the
    journal records which folders were repaired (ids and numbers, no content).
    """
    boxes = Mailbox.objects.order_by("pk").iterator() if mailboxes is None else mailboxes
    for mailbox in boxes:
        yield from _recount(mailbox, fix=fix)


def _recount(mailbox: Mailbox, *, fix: bool) -> list[Drift]:
    with transaction.atomic():
        folders = {f.pk: f for f in Folder.objects.filter(mailbox=mailbox).order_by("pk")}
        # The lock first (the triggers' order): then the count sees every commit before
        # it, and every write after it waits and adds itself to what is written here.
        stored = {
            c.folder_id: (c.total, c.unread)
            for c in FolderCounter.objects.select_for_update(no_key=True)
            .filter(folder_id__in=list(folders))
            .order_by("folder_id")
        }
        counted = {
            row["folder_id"]: (row["total"], row["unread"])
            for row in Entry.objects.filter(folder_id__in=list(folders))
            .values("folder_id")
            .annotate(total=Count("pk"), unread=Count("pk", filter=Q(seen=False)))
            .order_by()
        }
        drifts = []
        for folder_id, folder in folders.items():
            real = counted.get(folder_id, (0, 0))
            if stored.get(folder_id) != real:
                drifts.append(
                    Drift(mailbox.address, folder_id, folder.name, stored.get(folder_id), real)
                )
        if fix and drifts:
            for drift in drifts:
                total, unread = drift.counted
                FolderCounter.objects.update_or_create(
                    folder_id=drift.folder_id, defaults={"total": total, "unread": unread}
                )
            journal.record(
                "folders.recounted",
                obj=mailbox,
                folders=[
                    {"folder": d.folder_id, "stored": d.stored, "counted": d.counted}
                    for d in drifts
                ],
            )
    return drifts
