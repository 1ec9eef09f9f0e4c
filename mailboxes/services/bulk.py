"""Work on a selection of messages at once: flags, filing, the trash, deletion for good.

A doctor triages a hundred results a day: one request acts on the whole selection, in one
transaction, with one statement per action (the folders' counters follow by trigger,
``mailboxes/dbtriggers.py``). The selection comes from a browser: it is bounded
(``MAX_SELECTION`` ids), every id must be an entry of the box the request names, and
anything else refuses the whole request, never part of it.
"""

from __future__ import annotations

from collections.abc import Sequence
from enum import StrEnum

from django.db import transaction
from django.http import Http404
from django.utils import timezone
from django.utils.translation import gettext as _

from accounts.models import User
from audit import journal
from mailboxes.models import Delivery, Entry, Folder, Mailbox
from mailboxes.selectors import Access
from mailboxes.services.errors import FolderError
from mailboxes.services.folders import (
    delete_entries,
    move_entries,
    restore_entries,
    trash_entries,
)
from mailboxes.services.rights import authorise

# A page shows 50 rows; a selection larger than ten pages is not a person's.
MAX_SELECTION = 500
# An entry id is a bigint: more digits than this is not one.
_MAX_ID_DIGITS = 18


class BulkError(Exception):
    """A selection refused as a whole; ``str()`` is the French reason (nothing was changed)."""


class Action(StrEnum):
    """What the selection toolbar asks (the values are the form's, in French)."""

    READ = "lu"
    UNREAD = "non-lu"
    FLAG = "suivi"
    UNFLAG = "non-suivi"
    MOVE = "deplacer"
    ARCHIVE = "archiver"
    TRASH = "corbeille"
    RESTORE = "restaurer"
    DELETE = "supprimer"


# Deleting for good destroys the message for every user of the box, like emptying the
# trash: managers and the holder. Everything else is what a reader does one by one
# (the role "Lecture" reads, files and marks: mailboxes/views/sharing.py).
_NEEDS = {Action.DELETE: Access.MANAGE}


def parse_action(value: str | None) -> tuple[Action, str]:
    """The action, and the target folder's id for ``deplacer:<id>`` (the move menu's buttons)."""
    name, _sep, folder = (value or "").partition(":")
    try:
        action = Action(name)
    except ValueError:
        raise BulkError(_("Action inconnue : rien n'a été modifié.")) from None
    if folder and action != Action.MOVE:
        raise BulkError(_("Action inconnue : rien n'a été modifié."))
    return action, folder


def parse_ids(values: Sequence[str]) -> list[int]:
    """The entry ids of a selection, in order, without repeats; refused if not ids or too many."""
    if len(values) > MAX_SELECTION:
        raise BulkError(
            _(
                "Trop de messages sélectionnés (%(count)s) : %(limit)s au plus à la fois. "
                "Rien n'a été modifié."
            )
            % {"count": len(values), "limit": MAX_SELECTION}
        )
    ids: dict[int, None] = {}
    for value in values:
        value = (value or "").strip()
        if not value.isascii() or not value.isdigit() or len(value) > _MAX_ID_DIGITS:
            raise BulkError(_("La sélection est invalide : rien n'a été modifié."))
        ids[int(value)] = None
    if not ids:
        raise BulkError(_("Sélectionnez au moins un message."))
    return list(ids)


def _selection(mailbox: Mailbox, ids: list[int]) -> list[Entry]:
    entries = list(
        Entry.objects.filter(mailbox=mailbox, pk__in=ids).only(
            "pk", "mailbox_id", "message_id", "folder_id", "seen", "flagged"
        )
    )
    if len(entries) != len(ids):
        # An id of another box, or one gone meanwhile: the same answer as any foreign id
        # (no oracle), and nothing of the rest is applied.
        raise Http404
    for entry in entries:
        # All of one box, already authorised: the services need not read it again.
        entry.mailbox = mailbox
    return entries


@transaction.atomic
def apply(
    mailbox: Mailbox,
    action: Action,
    ids: list[int],
    *,
    by: User | None,
    folder: Folder | None = None,
) -> int:
    """Apply ``action`` to the entries ``ids`` of ``mailbox``; how many changed.

    Refused whole (nothing written): a stranger (404), a member short of the right (403),
    an id that is not an entry of this box (404), a target folder of another box or the
    drafts, deleting for good what is not in the trash (``BulkError``).
    """
    authorise(by, mailbox, _NEEDS.get(action, Access.READ))
    entries = _selection(mailbox, ids)
    if action in (Action.READ, Action.UNREAD):
        return _set_seen(mailbox, entries, seen=action == Action.READ, by=by)
    if action in (Action.FLAG, Action.UNFLAG):
        flagged = action == Action.FLAG
        changed = Entry.objects.filter(pk__in=ids).exclude(flagged=flagged).update(flagged=flagged)
        journal.record(
            "entries.flagged" if flagged else "entries.unflagged",
            actor=by,
            obj=mailbox,
            count=changed,
            entries=ids[:100],
        )
        return changed
    if action == Action.ARCHIVE:
        folder = Folder.objects.get(mailbox=mailbox, role=Folder.Role.ARCHIVE)
    if action in (Action.MOVE, Action.ARCHIVE):
        if folder is None or folder.mailbox_id != mailbox.pk:
            raise Http404
        try:
            return move_entries(entries, folder, by=by)
        except FolderError as exc:
            raise BulkError(str(exc)) from None
    if action == Action.TRASH:
        return trash_entries(entries, by=by)
    if action == Action.RESTORE:
        return restore_entries(entries, by=by)
    # Action.DELETE: only what already is in the trash is destroyed.
    trash = Folder.objects.get(mailbox=mailbox, role=Folder.Role.TRASH)
    if any(e.folder_id != trash.pk for e in entries):
        raise BulkError(
            _(
                "Seuls les messages de la corbeille peuvent être supprimés définitivement : "
                "rien n'a été supprimé."
            )
        )
    return delete_entries(mailbox, Entry.objects.filter(pk__in=ids), by=by, event="entries.deleted")


def _set_seen(mailbox: Mailbox, entries: list[Entry], *, seen: bool, by: User | None) -> int:
    ids = [e.pk for e in entries]
    if seen:
        # The sender's timeline shows "Lu" from the first time the box marks it read,
        # as when it is opened (services.folders.set_flags). No read receipt leaves:
        # marking is not reading (mailboxes.transport.mdn answers an opening only).
        Delivery.objects.filter(
            mailbox=mailbox,
            message_id__in=[e.message_id for e in entries if not e.seen],
            read_at__isnull=True,
        ).update(read_at=timezone.now())
    changed = Entry.objects.filter(pk__in=ids).exclude(seen=seen).update(seen=seen)
    journal.record(
        "entries.marked_read" if seen else "entries.marked_unread",
        actor=by,
        obj=mailbox,
        count=changed,
        entries=ids[:100],
    )
    return changed


@transaction.atomic
def mark_folder_read(folder: Folder, *, by: User | None) -> int:
    """Mark every message of a folder read ("Tout marquer comme lu"), whatever its size."""
    mailbox = folder.mailbox
    authorise(by, mailbox, Access.READ)
    unread = Entry.objects.filter(folder=folder, seen=False)
    Delivery.objects.filter(
        mailbox=mailbox,
        message_id__in=unread.values("message_id"),
        read_at__isnull=True,
    ).update(read_at=timezone.now())
    changed = unread.update(seen=True)
    journal.record("folder.marked_read", actor=by, obj=folder, mailbox=mailbox.pk, count=changed)
    return changed
