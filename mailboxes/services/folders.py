"""Folders, moving entries between them, the trash, the flags and opening a message."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from django.db import IntegrityError, transaction
from django.db.models import F, QuerySet, Value
from django.db.models.functions import Coalesce
from django.utils import timezone
from django.utils.translation import gettext as _

from accounts.models import User
from audit import journal
from mailboxes import blobs, selectors
from mailboxes.models import (
    AccessEvent,
    Delivery,
    Entry,
    Folder,
    Mailbox,
    Message,
    ReceiptPreference,
)
from mailboxes.selectors import Access
from mailboxes.services.errors import FolderError
from mailboxes.services.pipeline import PENDING
from mailboxes.services.rights import authorise
from mailboxes.services.sharing import receipt_mode, record_access, record_entries
from mailboxes.transport import mdn


def _folder_name(mailbox: Mailbox, name: str, *, exclude: Folder | None = None) -> str:
    name = " ".join((name or "").split())
    if not name:
        raise FolderError(_("Donnez un nom au dossier."))
    if len(name) > 100:
        raise FolderError(_("Le nom du dossier est trop long (100 caractères au plus)."))
    clash = selectors.folder_by_name(mailbox, name)
    if clash is not None and clash != exclude:
        raise FolderError(_("Un dossier « %(name)s » existe déjà.") % {"name": name})
    return name


def _saved(folder: Folder, **kwargs: Any) -> None:
    # Two requests creating the same name at once: the second meets the constraint on
    # the name's digest, and gets the message the check above gives.
    try:
        with transaction.atomic():
            folder.save(**kwargs)
    except IntegrityError:
        raise FolderError(
            _("Un dossier « %(name)s » existe déjà.") % {"name": folder.name}
        ) from None


@transaction.atomic
def create_folder(mailbox: Mailbox, name: str, *, by: User | None) -> Folder:
    """Create a custom folder in a mailbox (managers and the holder organise a shared box)."""
    authorise(by, mailbox, Access.MANAGE)
    folder = Folder(mailbox=mailbox, role=Folder.Role.CUSTOM, name=_folder_name(mailbox, name))
    _saved(folder, force_insert=True)
    journal.record("folder.created", actor=by, obj=folder, mailbox=mailbox.pk)
    return folder


@transaction.atomic
def rename_folder(folder: Folder, name: str, *, by: User | None) -> Folder:
    """Rename a custom folder (system folders keep their names)."""
    authorise(by, folder.mailbox, Access.MANAGE)
    if folder.role != Folder.Role.CUSTOM:
        raise FolderError(_("Les dossiers du système ne peuvent pas être renommés."))
    folder.name = _folder_name(folder.mailbox, name, exclude=folder)
    _saved(folder, update_fields=["name"])
    journal.record("folder.renamed", actor=by, obj=folder, mailbox=folder.mailbox_id)
    return folder


@transaction.atomic
def delete_folder(folder: Folder, *, by: User | None) -> None:
    """Delete a custom folder that holds no message."""
    authorise(by, folder.mailbox, Access.MANAGE)
    if folder.role != Folder.Role.CUSTOM:
        raise FolderError(_("Les dossiers du système ne peuvent pas être supprimés."))
    if Entry.objects.filter(folder=folder).exists():
        raise FolderError(_("Le dossier « %(name)s » n'est pas vide.") % {"name": folder.name})
    journal.record("folder.deleted", actor=by, obj=folder, mailbox=folder.mailbox_id)
    folder.delete()


def _authorise_entries(items: list[Entry], by: User | None, need: Access) -> None:
    seen: set[int] = set()
    for entry in items:
        if entry.mailbox_id not in seen:
            seen.add(entry.mailbox_id)
            authorise(by, entry.mailbox, need)


def _entry_ids(
    entries: Iterable[Entry] | QuerySet[Entry], mailbox_id: int | None = None
) -> list[int]:
    items = list(entries)
    if mailbox_id is not None and any(e.mailbox_id != mailbox_id for e in items):
        # The view resolved these entries; a mismatch is a bug, not a user error.
        raise ValueError("entries and folder belong to different mailboxes")
    return [e.pk for e in items]


@transaction.atomic
def move_entries(entries: Iterable[Entry], folder: Folder, *, by: User | None) -> int:
    """Move entries to a folder of their mailbox; moving to the trash remembers the origin."""
    entries = list(entries)
    _authorise_entries(entries, by, Access.READ)
    if folder.role == Folder.Role.TRASH:
        return trash_entries(entries, by=by)
    if folder.role == Folder.Role.DRAFTS:
        # Drafts are Draft rows, not entries: a sent message never becomes one.
        raise FolderError(_("Les messages ne peuvent pas être déplacés dans les brouillons."))
    items = list(entries)
    ids = _entry_ids(items, folder.mailbox_id)
    moved = (
        Entry.objects.filter(pk__in=ids)
        .exclude(folder=folder)
        .update(folder=folder, previous_folder=None)
    )
    journal.record("entries.moved", actor=by, obj=folder, count=moved, entries=ids[:100])
    record_entries(items, AccessEvent.Action.MOVE, actor=by)
    return moved


@transaction.atomic
def trash_entries(entries: Iterable[Entry], *, by: User | None) -> int:
    """Move entries to their mailbox's trash, remembering where each came from."""
    items = list(entries)
    _authorise_entries(items, by, Access.READ)
    moved = 0
    for mailbox_id in {e.mailbox_id for e in items}:
        trash = Folder.objects.get(mailbox_id=mailbox_id, role=Folder.Role.TRASH)
        ids = [e.pk for e in items if e.mailbox_id == mailbox_id]
        moved += (
            Entry.objects.filter(pk__in=ids)
            .exclude(folder=trash)
            .update(previous_folder_id=F("folder_id"), folder=trash)
        )
        journal.record("entries.trashed", actor=by, obj=trash, count=len(ids), entries=ids[:100])
    record_entries(items, AccessEvent.Action.DELETE, actor=by)
    return moved


@transaction.atomic
def restore_entries(entries: Iterable[Entry], *, by: User | None) -> int:
    """Put trashed entries back where they were (the inbox when that folder is gone)."""
    items = list(entries)
    _authorise_entries(items, by, Access.READ)
    restored = 0
    for mailbox_id in {e.mailbox_id for e in items}:
        inbox = Folder.objects.get(mailbox_id=mailbox_id, role=Folder.Role.INBOX)
        ids = [e.pk for e in items if e.mailbox_id == mailbox_id]
        in_trash = Entry.objects.filter(pk__in=ids, folder__role=Folder.Role.TRASH)
        # One statement: the folders' counters are then taken in one go, in folder
        # order (docs/decisions.md, "A big mailbox that stays fast").
        restored += in_trash.update(
            folder_id=Coalesce(F("previous_folder_id"), Value(inbox.pk)), previous_folder=None
        )
        journal.record("entries.restored", actor=by, obj=inbox, count=len(ids), entries=ids[:100])
    record_entries(items, AccessEvent.Action.MOVE, actor=by)
    return restored


def empty_trash(mailbox: Mailbox, *, by: User | None) -> int:
    """Delete every entry in the trash; purge messages nobody holds any more, with their blob."""
    # Emptying destroys messages for everyone in a shared box: managers and the holder only.
    authorise(by, mailbox, Access.MANAGE)
    with transaction.atomic():
        trashed = Entry.objects.filter(
            folder=Folder.objects.get(mailbox=mailbox, role=Folder.Role.TRASH)
        )
        return delete_entries(mailbox, trashed, by=by, event="trash.emptied")


def erase_closed_mailbox(mailbox: Mailbox) -> int:
    """Delete every entry of a closed box for good (the platform, once its retention ends).

    Messages nobody else holds go with their blob; a correspondent's own copy stays theirs.
    Refused for a box that is not closed. Returns how many entries were deleted.
    """
    with transaction.atomic():
        box = Mailbox.objects.select_for_update().get(pk=mailbox.pk)
        if box.status != Mailbox.Status.CLOSED:
            raise FolderError(_("Seule une boîte fermée peut être effacée."))
        return delete_entries(
            box, Entry.objects.filter(mailbox=box), by=None, event="mailbox.erased"
        )


def delete_entries(
    mailbox: Mailbox, entries: QuerySet[Entry], *, by: User | None, event: str
) -> int:
    """Delete these entries of ``mailbox`` for good (the caller checked the manage right).

    A message nobody holds any more is purged with its blob (once committed), unless a
    delivery still needs it; the journal keeps who and when, never which purged message.
    """
    with transaction.atomic():
        message_ids = list(entries.values_list("message_id", flat=True))
        deleted, _detail = entries.delete()
        # A message still waiting for a delivery must stay: the pipeline needs it.
        orphans = (
            Message.objects.filter(pk__in=message_ids, entries__isnull=True)
            .exclude(deliveries__status__in=PENDING)
            .values_list("pk", "blob_name")
        )
        purged = list(orphans)
        Message.objects.filter(pk__in=[pk for pk, _b in purged]).delete()
        journal.record(event, actor=by, obj=mailbox, count=deleted, purged=len(purged))
        purged_ids = {pk for pk, _b in purged}
        record_access(
            mailbox,
            AccessEvent.Action.DELETE,
            actor=by,
            # A purged message is gone: its journal line keeps who and when, not which.
            messages=[None if pk in purged_ids else pk for pk in message_ids],
        )
        names = [name for _pk, name in purged]
        transaction.on_commit(lambda: blobs.delete_many(names))
    return deleted


@transaction.atomic
def set_flags(
    entries: Iterable[Entry],
    *,
    by: User | None,
    seen: bool | None = None,
    flagged: bool | None = None,
    answered: bool | None = None,
) -> int:
    """Set or clear the seen, flagged (and answered: IMAP) flags; the first reading is noted on the delivery."""
    items = list(entries)
    _authorise_entries(items, by, Access.READ)
    changes: dict[str, Any] = {}
    if seen is not None:
        changes["seen"] = seen
    if flagged is not None:
        changes["flagged"] = flagged
    if answered is not None:
        changes["answered"] = answered
    if not changes or not items:
        return 0
    updated = Entry.objects.filter(pk__in=[e.pk for e in items]).update(**changes)
    if seen:
        # One statement per box (a selection is one box): no OR of a pair per entry.
        by_box: dict[int, list[int]] = {}
        for e in items:
            by_box.setdefault(e.mailbox_id, []).append(e.message_id)
        for mailbox_id, message_ids in by_box.items():
            Delivery.objects.filter(
                mailbox_id=mailbox_id, message_id__in=message_ids, read_at__isnull=True
            ).update(read_at=timezone.now())
    for e in items:
        for name, value in changes.items():
            setattr(e, name, value)
    return updated


def open_entry(entry: Entry, *, by: User) -> None:
    """A person opens a message: it becomes seen (for the whole box) and the opening is journaled."""
    authorise(by, entry.mailbox, Access.READ)
    if not entry.seen:
        unread = mdn.first_reads(entry)
        set_flags([entry], by=by, seen=True)
        entry.seen = True
        journal.record(
            "message.first_opened", actor=by, obj=entry.message, mailbox=entry.mailbox.address
        )
        # A first opening answers a Disposition-Notification-To (RFC 8098 MDN),
        # at once or, for a professional who chose "sur demande", when they say so.
        # A receipt leaves from the box: a reader without the send right (a read-only
        # delegate) never makes one leave; it waits for someone who may send.
        level = selectors.access(by, entry.mailbox)
        may_send = level is not None and level >= Access.SEND
        if not may_send or receipt_mode(by) == ReceiptPreference.Mode.ON_REQUEST:
            # Nothing leaves: the receipts asked for wait for the reader's decision.
            mdn.send_read_receipts(unread, ask=True)
        else:
            mdn.send_on_commit(unread)
    record_access(entry.mailbox, AccessEvent.Action.OPEN, actor=by, messages=[entry.message_id])
