"""Sending for software through the API: the token's scope, idempotency, the submission.

The API endpoint only parses the request; this is the whole of what sending does, through
the same ``submit_message`` (rights, charter and patient rules, building, storing) and the
same access journal as the webmail's ``send_draft``.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from django.db import IntegrityError, transaction
from django.utils.translation import gettext as _

from mailboxes.models import AccessEvent, ApiToken, IdempotencyRecord, Message
from mailboxes.selectors import Access
from mailboxes.services import queue
from mailboxes.services.errors import IdempotencyConflict, SubmissionError
from mailboxes.services.messages import submit_message
from mailboxes.services.sharing import record_access
from mailboxes.services.tokens import require_scope
from mssante.lib import mime

if TYPE_CHECKING:
    from django.http import HttpRequest


@dataclass(frozen=True, slots=True)
class ApiAnswer:
    """The answer to give: 201 and the new message, or the first answer to this key again."""

    status: int
    body: dict[str, Any]


def request_hash(
    *,
    to: list[str],
    cc: list[str],
    subject: str,
    text: str,
    html: str | None,
    attachments: Sequence[mime.Attachment],
) -> str:
    """What the request asks, whatever its encoding (JSON or multipart, key order, base64).

    Stored with the idempotency key: changing this form makes every retry of a request
    sent before the change a 409, so keep it as it is.
    """
    canonical = json.dumps(
        {
            "to": to,
            "cc": cc,
            "subject": subject,
            "text": text,
            "html": html,
            "attachments": [
                [a.filename, a.content_type, hashlib.sha256(a.data).hexdigest()]
                for a in attachments
            ],
        },
        sort_keys=True,
        ensure_ascii=False,
    )
    return hashlib.sha256(canonical.encode()).hexdigest()


def _replay(token: ApiToken, key: str, digest: str) -> ApiAnswer | None:
    record = IdempotencyRecord.objects.filter(token=token, key=key).first()
    if record is None:
        return None
    if record.request_hash != digest:
        raise IdempotencyConflict(
            _(
                "La clé d'idempotence « %(key)s » a déjà servi pour une autre requête : "
                "utilisez une nouvelle clé pour un nouveau message."
            )
            % {"key": key}
        )
    return ApiAnswer(record.status, dict(record.body))


def _created(message: Message) -> dict[str, Any]:
    return {
        "id": str(message.public_id),
        "message_id": message.message_id,
        "recipients": len(message.to_addrs) + len(message.cc_addrs),
        "url": f"/api/v1/messages/{message.public_id}",
    }


def _once(
    token: ApiToken,
    key: str | None,
    digest: str,
    send: Callable[[], tuple[int, dict[str, Any], Message | None]],
) -> ApiAnswer:
    """Run ``send`` once per idempotency key: the first answer, or that answer replayed.

    One transaction: the key, what ``send`` stores and its answer commit together, so the
    answer goes out after the commit, and a concurrent retry with the same key waits on
    the unique (token, key) row, then replays this answer.
    """
    if key is not None:
        replayed = _replay(token, key, digest)
        if replayed is not None:
            return replayed
    try:
        with transaction.atomic():
            record = (
                IdempotencyRecord.objects.create(
                    token=token, key=key, request_hash=digest, status=0
                )
                if key is not None
                else None
            )
            status, body, message = send()
            if record is not None:
                record.status, record.body, record.message = status, body, message
                record.save(update_fields=["status", "body", "message"])
    except IntegrityError:
        if key is None:
            raise
        replayed = _replay(token, key, digest)
        if replayed is None:
            raise
        return replayed
    return ApiAnswer(status, body)


def _journal_sent(token: ApiToken, messages: list[Message]) -> None:
    record_access(
        token.mailbox,
        AccessEvent.Action.SEND,
        actor=None,
        messages=messages,
        label=f"API {token.label or token.prefix}",
    )


def _submit(token: ApiToken, fields: dict[str, Any], request: HttpRequest | None) -> Message:
    # The token's box and scope are checked: the platform sends (author None).
    return submit_message(
        mailbox=token.mailbox, author=None, origin=Message.Origin.API, request=request, **fields
    )


def send_api_message(
    token: ApiToken,
    *,
    to: list[str],
    cc: list[str],
    subject: str,
    text: str,
    html: str | None,
    attachments: Sequence[mime.Attachment],
    idempotency_key: str | None = None,
    request: HttpRequest | None = None,
) -> ApiAnswer:
    """Send from the token's mailbox, once per idempotency key; the answer to give.

    ``ScopeError`` if the holder only agreed to reading, ``SubmissionError`` (the French
    reason) if a rule refuses the message, ``IdempotencyConflict`` if the key already
    served another request. The answer is given only once the message is durably stored.
    """
    require_scope(token, Access.SEND)
    fields: dict[str, Any] = {
        "to": to,
        "cc": cc,
        "subject": subject,
        "text": text,
        "html": html,
        "attachments": attachments,
    }

    def send() -> tuple[int, dict[str, Any], Message | None]:
        message = _submit(token, fields, request)
        _journal_sent(token, [message])
        return 201, _created(message), message

    return _once(token, idempotency_key, request_hash(**fields), send)


@dataclass(frozen=True, slots=True)
class BatchItem:
    """One message of a batch: the fields ``send_api_message`` takes."""

    fields: dict[str, Any]


def batch_hash(items: Sequence[BatchItem]) -> str:
    """What a batch asks, message by message, in order."""
    parts = [request_hash(**item.fields) for item in items]
    return hashlib.sha256("\n".join(parts).encode()).hexdigest()


def send_api_batch(
    token: ApiToken,
    items: Sequence[BatchItem],
    *,
    idempotency_key: str | None = None,
    request: HttpRequest | None = None,
) -> ApiAnswer:
    """Send several messages from the token's mailbox, committed together (group commit).

    Each message goes through ``submit_message`` in its own savepoint: one refused by a
    rule (``SubmissionError``) is answered 422 in its place and the others are sent.
    The answer (200, one result per item, in order) is given only once the whole group
    is durably stored; a failure of the group's commit stores none of it. The messages
    travel to the workers together (``queue.batched``). With an idempotency key the
    whole batch is replayed, never sent twice.
    """
    require_scope(token, Access.SEND)

    def send() -> tuple[int, dict[str, Any], Message | None]:
        results: list[dict[str, Any]] = []
        sent: list[Message] = []
        for item in items:
            try:
                with transaction.atomic():
                    message = _submit(token, item.fields, request)
            except SubmissionError as exc:
                results.append({"status": 422, "error": {"code": "refused", "message": str(exc)}})
                continue
            sent.append(message)
            results.append({"status": 201, **_created(message)})
        if sent:
            _journal_sent(token, sent)
        return 200, {"results": results}, None

    with queue.batched():
        return _once(token, idempotency_key, batch_hash(items), send)
