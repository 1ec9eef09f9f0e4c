"""Reading a message in other shapes: printed, its headers and source (issue 14)."""

from __future__ import annotations

from accounts.models import User
from audit import journal
from mailboxes.models import AccessEvent, Entry
from mailboxes.selectors import Access
from mailboxes.services.messages import read_raw
from mailboxes.services.rights import authorise
from mailboxes.services.sharing import record_access

# Past this, the source page shows the beginning and offers the whole file (.eml).
SOURCE_SHOWN_MAX = 1_000_000


def read_source(entry: Entry, *, by: User) -> bytes:
    """The raw MIME of ``entry`` as stored, for a reader of its box; journaled like an opening."""
    authorise(by, entry.mailbox, Access.READ)
    raw = read_raw(entry.message)
    journal.record(
        "message.source_viewed", actor=by, obj=entry.message, mailbox=entry.mailbox.address
    )
    # In a shared or delegated box, the responsible sees who looked at it (journal.html).
    record_access(entry.mailbox, AccessEvent.Action.OPEN, actor=by, messages=[entry.message_id])
    return raw
