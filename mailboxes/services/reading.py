"""Reading a message in other shapes: printed, its headers and source, its calendar invitation."""

from __future__ import annotations

from typing import TYPE_CHECKING

from django.conf import settings
from django.utils.translation import gettext as _
from django.utils.translation import gettext_noop

from accounts.models import User
from audit import journal
from mailboxes.models import AccessEvent, Entry, Message
from mailboxes.selectors import Access
from mailboxes.services.errors import SubmissionError
from mailboxes.services.messages import parse, read_raw, submit_message
from mailboxes.services.rights import authorise
from mailboxes.services.sharing import record_access
from mssante.lib import invitations, mime

if TYPE_CHECKING:
    from django.http import HttpRequest

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


# --------------------------------------------------------------------------- invitations

CALENDAR_TYPES = frozenset({"text/calendar", "application/ics"})


def invitation_of(entry: Entry, parsed: mime.ParsedMessage) -> invitations.Invitation | None:
    """The calendar invitation (or reply) a message carries, read with bounds; else None.

    Only the first ``text/calendar`` part is read; a part too big, too deep or malformed
    stays a plain attachment (``invitations.read`` returns None).
    """
    if entry.message.scan_status == Message.ScanStatus.INFECTED:
        return None
    part = next(
        (
            p
            for p in parsed.attachments
            if p.content_type.lower() in CALENDAR_TYPES and p.size <= invitations.MAX_ICS_BYTES
        ),
        None,
    )
    if part is None:
        return None
    try:
        data = mime.get_part(read_raw(entry.message), part.index).data
    except mime.PartNotFoundError:
        return None
    return invitations.read(data)


_ANSWER_SUBJECTS = {
    "ACCEPTED": gettext_noop("Accepté : %(summary)s"),
    "TENTATIVE": gettext_noop("Peut-être : %(summary)s"),
    "DECLINED": gettext_noop("Refusé : %(summary)s"),
}
_ANSWER_TEXTS = {
    "ACCEPTED": gettext_noop("%(who)s a accepté l'invitation « %(summary)s »."),
    "TENTATIVE": gettext_noop("%(who)s participera peut-être à « %(summary)s »."),
    "DECLINED": gettext_noop("%(who)s a refusé l'invitation « %(summary)s »."),
}


def answer_invitation(
    entry: Entry, answer: str, *, by: User, request: HttpRequest | None = None
) -> Message:
    """Send the box's iTIP REPLY to the invitation ``entry`` carries, through ``submit_message``.

    The reply goes to the message's sender (From), never to an address the calendar part
    names alone: a calendar from anyone must not make us write to a third party.
    Raises ``SubmissionError`` (French) when there is no invitation to answer.
    """
    authorise(by, entry.mailbox, Access.SEND)
    if answer not in invitations.ANSWERS:
        raise SubmissionError(_("Réponse inconnue."))
    invitation = invitation_of(entry, parse(entry.message))
    if invitation is None or invitation.method != "REQUEST" or not invitation.uid:
        raise SubmissionError(_("Ce message ne contient pas d'invitation à laquelle répondre."))
    mailbox = entry.mailbox
    organizer = entry.message.from_addr
    summary = invitation.summary or _("(sans titre)")
    data = invitations.build_reply(
        invitation,
        attendee=mailbox.address,
        attendee_name=mailbox.display_name,
        answer=answer,
        organizer=organizer,
        prodid=f"-//{settings.SMTP_HOSTNAME}//MSSante//FR",
    )
    values = {"who": mailbox.display_name or mailbox.address, "summary": summary}
    return submit_message(
        mailbox=mailbox,
        author=by,
        to=[organizer],
        cc=[],
        subject=_(_ANSWER_SUBJECTS[answer]) % values,
        text=_(_ANSWER_TEXTS[answer]) % values + "\n",
        attachments=[mime.Attachment("reponse.ics", "text/calendar", data)],
        in_reply_to=entry.message,
        request=request,
    )
