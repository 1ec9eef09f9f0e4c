"""Drafts: sealed while being written, their files as encrypted blobs, then sent."""

from __future__ import annotations

import hashlib
import json
import logging
import os
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from django.conf import settings
from django.db import IntegrityError, transaction
from django.http import Http404
from django.utils import timezone
from django.utils.html import strip_tags
from django.utils.translation import gettext as _

from accounts.models import User
from mailboxes import blobs
from mailboxes.models import AccessEvent, Draft, DraftAttachment, Entry, Mailbox, Message
from mailboxes.selectors import Access
from mailboxes.services.errors import DraftError
from mailboxes.services.messages import human_size, read_raw, submit_message
from mailboxes.services.rights import authorise
from mailboxes.services.sharing import record_access
from mssante.lib import mime
from mssante.lib.xdm import FILENAME as XDM_FILENAME

if TYPE_CHECKING:
    from django.http import HttpRequest

log = logging.getLogger(__name__)


@dataclass(slots=True)
class DraftContent:
    """The decrypted fields of a draft."""

    to: list[str]
    cc: list[str]
    subject: str
    text: str
    in_reply_to_id: int | None
    forward_of_id: int | None
    # Headers recorded for the sending (X-MSS-INS / X-MSS-CODECDA of an attached XDM).
    headers: dict[str, str] = field(default_factory=dict)
    # "Demander un accusé de lecture" (Disposition-Notification-To when sent).
    read_receipt: bool = False
    # Cci: delivered, never written in the message's headers.
    bcc: list[str] = field(default_factory=list)
    # The rich-text body, already sanitised like incoming HTML; None: plain text only.
    html: str | None = None

    def is_empty(self) -> bool:
        """Nothing typed: no recipient, subject, text or formatted body."""
        return not (
            self.to
            or self.cc
            or self.bcc
            or self.subject.strip()
            or self.text.strip()
            or (self.html and sanitize_html_text(self.html))
        )


def sanitize_html_text(html: str) -> str:
    """The visible text of some HTML, to tell an empty editor from a written one."""
    return strip_tags(html).replace("&nbsp;", " ").strip()


def clean_compose_html(html: str) -> str | None:
    """The compose editor's HTML, sanitised with nh3 exactly like incoming HTML.

    What the browser sends is untrusted like any mail: the same sanitiser, no remote
    image (the recipients' readers would block it anyway). Empty or too large: None.
    """
    if not html or not html.strip() or mime.html_too_large(html):
        return None
    clean = mime.sanitize_html(html, allow_remote_images=False).html
    return clean if sanitize_html_text(clean) else None


def _draft_context(draft: Draft) -> bytes:
    return f"draft:{draft.pk}".encode()


def _authorise_draft(draft: Draft, by: User | None) -> None:
    """A draft is its author's alone, and only while they may still send from its box."""
    if by is not None and draft.author_id != by.pk:
        # Someone else's draft does not exist for them (no oracle).
        raise Http404
    authorise(by, draft.mailbox, Access.SEND)


def _authorise_quote(mailbox: Mailbox, message: Message | None) -> None:
    """A draft answers or forwards only a message of its own box (no reading of another's)."""
    if message is not None and not Entry.objects.filter(mailbox=mailbox, message=message).exists():
        raise Http404


def save_draft(
    *,
    mailbox: Mailbox,
    author: User,
    draft: Draft | None,
    to: list[str],
    cc: list[str],
    subject: str,
    text: str,
    in_reply_to: Message | None = None,
    forward_of: Message | None = None,
    read_receipt: bool | None = None,
    bcc: list[str] | None = None,
    html: str | None = None,
    compose_key: str = "",
) -> Draft:
    """Create or update a draft; to, cc, bcc and body are sealed, addresses are not checked.

    ``read_receipt``: whether to ask for a read receipt; ``None`` keeps the draft's choice.
    ``html``: the rich-text body as the editor sent it; it is sanitised here, before it is
    stored (``clean_compose_html``). ``compose_key``: the compose page creating it; a
    second creation with the same key (a racing autosave, the upload, Send) updates the
    draft the first one created.
    """
    authorise(author, mailbox, Access.SEND)
    if draft is None and compose_key:
        draft = compose_draft(author, mailbox, compose_key)
    if draft is not None:
        if draft.mailbox_id != mailbox.pk:
            raise ValueError("the draft belongs to another mailbox")
        _authorise_draft(draft, author)
    _authorise_quote(mailbox, in_reply_to)
    _authorise_quote(mailbox, forward_of)
    with transaction.atomic():
        created = draft is None
        if draft is None:
            try:
                with transaction.atomic():
                    draft = Draft.objects.create(
                        mailbox=mailbox, author=author, compose_key=compose_key[:32]
                    )
            except IntegrityError:
                # The same compose page created it meanwhile (two requests in flight).
                draft = compose_draft(author, mailbox, compose_key)
                if draft is None:
                    raise
                return save_draft(
                    mailbox=mailbox,
                    author=author,
                    draft=draft,
                    to=to,
                    cc=cc,
                    subject=subject,
                    text=text,
                    read_receipt=read_receipt,
                    bcc=bcc,
                    html=html,
                )
            reply_id, forward_id = None, None
            kept_headers: dict[str, str] = {}
            receipt = False
        else:
            if not Draft.objects.select_for_update().filter(pk=draft.pk).exists():
                # Sent or deleted by another request meanwhile: saving would bring it back
                # (an UPDATE of no row becomes an INSERT), and it could be sent twice.
                raise Draft.DoesNotExist(f"draft {draft.pk} was already sent or deleted")
            # A draft keeps what it answers or forwards whatever the form resends.
            previous = open_draft(draft)
            reply_id, forward_id = previous.in_reply_to_id, previous.forward_of_id
            kept_headers = previous.headers
            receipt = previous.read_receipt
        if read_receipt is not None:
            receipt = read_receipt
        in_reply_to_id = in_reply_to.pk if in_reply_to else reply_id
        forward_of_id = forward_of.pk if forward_of else forward_id
        payload = json.dumps(
            {
                "to": [a.strip() for a in to if a and a.strip()],
                "cc": [a.strip() for a in cc if a and a.strip()],
                "bcc": [a.strip() for a in (bcc or []) if a and a.strip()],
                "html": clean_compose_html(html) if html else None,
                "text": text,
                "in_reply_to": in_reply_to_id,
                "forward_of": forward_of_id,
                "headers": kept_headers,
                "read_receipt": receipt,
            },
            ensure_ascii=False,
        ).encode()
        sealed = blobs.seal_value(payload, _draft_context(draft))
        draft.subject = subject.strip()[:998]
        draft.key_id = sealed.key_id
        draft.wrapped_key = sealed.wrapped_key
        draft.sealed = sealed.ciphertext
        draft.save()
    if created and forward_of is not None:
        attach_forwarded(draft, forward_of)
    return draft


def compose_draft(author: User, mailbox: Mailbox, compose_key: str) -> Draft | None:
    """The draft a compose page (its key) already created in ``mailbox``, if any."""
    if not compose_key:
        return None
    return (
        Draft.objects.select_related("mailbox")
        .filter(author=author, mailbox=mailbox, compose_key=compose_key[:32])
        .first()
    )


def compose_sent_key(author_id: int, compose_key: str) -> str:
    """The unique key of the message a compose page sent ("" for drafts without a page key)."""
    if not compose_key:
        return ""
    return hashlib.sha256(f"web:{author_id}:{compose_key}".encode()).hexdigest()


def compose_was_sent(author: User, compose_key: str) -> bool:
    """Whether this compose page's message was already sent."""
    key = compose_sent_key(author.pk, compose_key)
    return bool(key) and Message.objects.filter(resend_key=key).exists()


def open_draft(draft: Draft) -> DraftContent:
    """The decrypted content of a draft."""
    if not draft.sealed or draft.wrapped_key is None:
        return DraftContent([], [], draft.subject, "", None, None)
    data = json.loads(
        blobs.open_value(draft.key_id, draft.wrapped_key, draft.sealed, _draft_context(draft))
    )
    return DraftContent(
        to=list(data.get("to", [])),
        cc=list(data.get("cc", [])),
        subject=draft.subject,
        text=data.get("text", ""),
        in_reply_to_id=data.get("in_reply_to"),
        forward_of_id=data.get("forward_of"),
        headers={str(k): str(v) for k, v in (data.get("headers") or {}).items()},
        read_receipt=bool(data.get("read_receipt", False)),
        bcc=list(data.get("bcc", [])),
        html=data.get("html") or None,
    )


def set_draft_headers(draft: Draft, headers: dict[str, str], *, by: User | None) -> None:
    """Record headers to send with the draft, sealed with its content (kept across saves)."""
    _authorise_draft(draft, by)
    with transaction.atomic():
        locked = Draft.objects.select_for_update().get(pk=draft.pk)
        data = (
            json.loads(
                blobs.open_value(
                    locked.key_id, locked.wrapped_key, locked.sealed, _draft_context(locked)
                )
            )
            if locked.sealed and locked.wrapped_key is not None
            else {}
        )
        data["headers"] = dict(headers)
        sealed = blobs.seal_value(
            json.dumps(data, ensure_ascii=False).encode(), _draft_context(locked)
        )
        locked.key_id = sealed.key_id
        locked.wrapped_key = sealed.wrapped_key
        locked.sealed = sealed.ciphertext
        locked.save(update_fields=["key_id", "wrapped_key", "sealed"])
        draft.key_id, draft.wrapped_key, draft.sealed = (
            locked.key_id,
            locked.wrapped_key,
            locked.sealed,
        )


def _encoded_size(n: int) -> int:
    # base64 with 76-character lines, as the message will carry the file.
    encoded = (n + 2) // 3 * 4
    return encoded + encoded // 76 * 2


def _clean_filename(filename: str) -> str:
    name = os.path.basename((filename or "").replace("\\", "/")).strip().lstrip(".")
    return name[:255] or "piece-jointe"


def add_draft_attachment(
    draft: Draft, filename: str, content_type: str, data: bytes, *, by: User | None
) -> DraftAttachment:
    """Store an uploaded file, encrypted, in a draft; the message limits are checked now."""
    _authorise_draft(draft, by)
    with transaction.atomic():
        Draft.objects.select_for_update().filter(pk=draft.pk).first()
        files = list(draft.files.values_list("size", flat=True))
        limit = settings.MESSAGE_MAX_ATTACHMENTS
        if len(files) + 1 > limit:
            raise DraftError(
                _("Pas plus de %(limit)d pièces jointes par message.") % {"limit": limit}
            )
        total = sum(_encoded_size(s) for s in files) + _encoded_size(len(data))
        if total > settings.MESSAGE_MAX_BYTES:
            raise DraftError(
                _(
                    "« %(name)s » ne peut pas être ajouté : le message dépasserait %(limit)s "
                    "une fois encodé."
                )
                % {
                    "name": _clean_filename(filename),
                    "limit": human_size(settings.MESSAGE_MAX_BYTES),
                }
            )
        name = blobs.new_name("drafts")
        sealed = blobs.write(name, data)
        try:
            with transaction.atomic():
                return DraftAttachment.objects.create(
                    draft=draft,
                    filename=_clean_filename(filename),
                    content_type=(content_type or "application/octet-stream")[:127],
                    size=len(data),
                    blob_name=name,
                    key_id=sealed.key_id,
                    wrapped_key=sealed.wrapped_key,
                )
        except BaseException:
            blobs.delete(name)
            raise


def remove_draft_attachment(att: DraftAttachment, *, by: User | None) -> None:
    """Remove a file from a draft, and its blob."""
    _authorise_draft(att.draft, by)
    name = att.blob_name
    att.delete()
    transaction.on_commit(lambda: blobs.delete(name))


def read_draft_attachment(att: DraftAttachment) -> bytes:
    """The bytes of a draft's file, decrypted."""
    return blobs.read(att.blob_name, att.key_id, att.wrapped_key)


def delete_draft(draft: Draft, *, by: User | None) -> None:
    """Delete a draft and the blobs of its files."""
    _authorise_draft(draft, by)
    names = list(draft.files.values_list("blob_name", flat=True))
    draft.delete()
    transaction.on_commit(lambda: blobs.delete_many(names))


def attach_forwarded(draft: Draft, message: Message) -> list[DraftAttachment]:
    """Copy a message's attachments into a draft (forwarding carries them)."""
    _authorise_quote(draft.mailbox, message)
    raw = read_raw(message)
    added = []
    for part in mime.parse_message(raw).attachments:
        try:
            att = mime.get_part(raw, part.index)
        except mime.PartNotFoundError:
            continue
        added.append(
            add_draft_attachment(draft, att.filename, att.content_type, att.data, by=draft.author)
        )
    return added


@transaction.atomic
def send_draft(
    draft: Draft,
    *,
    by: User,
    request: HttpRequest | None = None,
    extra_headers: dict[str, str] | None = None,
) -> Message:
    """Send a draft through ``submit_message`` with its files and delete it, in one transaction.

    The draft is locked first and deleted in the transaction that stores the message:
    a second sending of the same draft (a double click, or a retry after an answer
    lost to a failure) finds it gone, ``Draft.DoesNotExist``, and sends nothing again.
    """
    # The view checked it too; a grant revoked since must still stop the message here.
    _authorise_draft(draft, by)
    draft = (
        Draft.objects.select_for_update(of=("self",))
        .select_related("mailbox")
        .get(pk=draft.pk)  # Draft.DoesNotExist: already sent (or deleted) by another request
    )
    content = open_draft(draft)
    files = [
        mime.Attachment(a.filename, a.content_type, read_draft_attachment(a))
        for a in draft.files.order_by("pk")
    ]
    # The XDM headers recorded in compose go only while the package is still attached.
    headers: dict[str, str] = {}
    if content.headers and any(f.filename.upper() == XDM_FILENAME for f in files):
        headers.update(content.headers)
    headers.update(extra_headers or {})
    parent = None
    if content.in_reply_to_id is not None:
        parent = Message.objects.filter(pk=content.in_reply_to_id).first()
    message = submit_message(
        mailbox=draft.mailbox,
        author=by,
        to=content.to,
        cc=content.cc,
        bcc=content.bcc,
        subject=content.subject,
        text=content.text,
        # Sanitised when saved; sanitised again here: a draft sealed by an older
        # version of the sanitiser goes out under today's rules.
        html=clean_compose_html(content.html) if content.html else None,
        attachments=files,
        in_reply_to=parent,
        extra_headers=headers or None,
        request=request,
        # A compose page is sent once: a second sending (a lost answer) fails on this key.
        resend_key=compose_sent_key(draft.author_id, draft.compose_key),
    )
    record_access(draft.mailbox, AccessEvent.Action.SEND, actor=by, messages=[message])
    delete_draft(draft, by=by)
    return message


# Abandoned drafts: a draft with nothing typed and no file, untouched this long, is removed.
EMPTY_DRAFT_AGE = timedelta(days=1)
# Drafts examined per run (each is decrypted to see whether it is empty).
EMPTY_DRAFT_BATCH = 2000


def purge_empty_drafts(*, now: datetime | None = None) -> int:
    """Delete the drafts with no content and no file untouched for a day; return how many.

    Drafts are created only once something is typed (views/compose.py), but older
    versions created one per click on "Écrire un message", and a user may empty a draft
    and leave it: those are removed here (a scheduled task), never a draft with content.
    """
    limit = (now or timezone.now()) - EMPTY_DRAFT_AGE
    candidates = (
        Draft.objects.filter(updated_at__lt=limit, files__isnull=True)
        .order_by("pk")
        .only("pk", "subject", "key_id", "wrapped_key", "sealed")[:EMPTY_DRAFT_BATCH]
    )
    # The subject is sealed at rest: looked at here, in Python, with the rest.
    empty = [d.pk for d in candidates if not d.subject and open_draft(d).is_empty()]
    if not empty:
        return 0
    with transaction.atomic():
        # Re-checked under the lock: a draft written meanwhile is kept.
        deleted = 0
        for draft in Draft.objects.select_for_update().filter(pk__in=empty, updated_at__lt=limit):
            if draft.subject or draft.files.exists() or not open_draft(draft).is_empty():
                continue
            draft.delete()
            deleted += 1
    if deleted:
        log.info("%d empty drafts removed", deleted)
    return deleted
