"""``/messages``: send a message, read one (metadata, deliveries, raw form), file it."""

from __future__ import annotations

from typing import Any
from uuid import UUID

from django.db import transaction
from django.http import Http404, HttpRequest, HttpResponse
from ninja import Router, Status

from mailboxes import selectors, services
from mailboxes.api.auth import token_of
from mailboxes.api.folders import folder_of
from mailboxes.api.payload import idempotency_key, read_batch, read_payload
from mailboxes.api.schemas import (
    GET_MESSAGE,
    GET_RAW,
    MESSAGE_SCHEMA,
    MULTIPART_SCHEMA,
    REFUSALS,
    SEND_BATCH,
    SEND_MESSAGE,
    SET_FLAGS,
    BatchOut,
    EntryState,
    ErrorOut,
    FlagsIn,
    MessageCreatedOut,
    MessageOut,
    entry_state,
    iso,
    links,
)
from mailboxes.models import AccessEvent
from mailboxes.transport.timeline import read_visible, timeline

router = Router()

# The header of the two sending operations, as OpenAPI describes it.
IDEMPOTENCY_KEY = {
    "name": "Idempotency-Key",
    "in": "header",
    "required": False,
    "schema": {"type": "string", "minLength": 1, "maxLength": 255, "pattern": "^[!-~]{1,255}$"},
    "description": (
        "Même clé et même corps : la première réponse est rejouée, rien n'est "
        "envoyé deux fois. Même clé, autre corps : 409."
    ),
}


@router.post(
    "/messages",
    response={
        201: MessageCreatedOut,
        409: ErrorOut,
        413: ErrorOut,
        415: ErrorOut,
        422: ErrorOut,
        **REFUSALS,
    },
    summary="Envoyer un message",
    operation_id=SEND_MESSAGE,
    openapi_extra={
        # What a client (and schemathesis's stateful run) can do next with the new id.
        "responses": {201: {"links": links("$response.body#/id")}},
        "parameters": [IDEMPOTENCY_KEY],
        "requestBody": {
            "required": True,
            "content": {
                "application/json": {"schema": MESSAGE_SCHEMA},
                "multipart/form-data": {"schema": MULTIPART_SCHEMA},
            },
        },
    },
)
def send_message(request: HttpRequest) -> Status[dict[str, Any]]:
    """Send from the token's mailbox; 201 once the message is durably stored."""
    token = token_of(request, selectors.Access.SEND)
    key = idempotency_key(request)
    payload, attachments = read_payload(request)
    # A rule's refusal is a 422, a key already used for another body a 409 (errors.install).
    answer = services.send_api_message(
        token,
        to=payload.to,
        cc=payload.cc,
        subject=payload.subject,
        text=payload.text,
        html=payload.html,
        attachments=attachments,
        idempotency_key=key,
        request=request,
    )
    return Status(answer.status, answer.body)


@router.post(
    "/messages/batch",
    response={200: BatchOut, 409: ErrorOut, 413: ErrorOut, 415: ErrorOut, **REFUSALS},
    summary="Envoyer plusieurs messages",
    operation_id=SEND_BATCH,
    openapi_extra={
        "parameters": [IDEMPOTENCY_KEY],
        "requestBody": {
            "required": True,
            "content": {
                "application/json": {
                    "schema": {
                        "type": "object",
                        "required": ["messages"],
                        "additionalProperties": False,
                        "properties": {
                            "messages": {
                                "type": "array",
                                "minItems": 1,
                                "maxItems": 100,
                                "items": MESSAGE_SCHEMA,
                            }
                        },
                    }
                }
            },
        },
    },
)
def send_batch(request: HttpRequest) -> Status[dict[str, Any]]:
    """Send up to API_BATCH_MAX messages committed together; 200 once they are durably stored.

    Each item is answered in its place (201, or 422 and the rule that refused it): one
    refused message does not hold the others back.
    """
    token = token_of(request, selectors.Access.SEND)
    key = idempotency_key(request)
    items = [
        services.BatchItem(
            fields={
                "to": payload.to,
                "cc": payload.cc,
                "subject": payload.subject,
                "text": payload.text,
                "html": payload.html,
                "attachments": attachments,
            }
        )
        for payload, attachments in read_batch(request)
    ]
    answer = services.send_api_batch(token, items, idempotency_key=key, request=request)
    return Status(answer.status, answer.body)


@router.get(
    "/messages/{message_id}",
    response={200: MessageOut, **REFUSALS},
    summary="Un message",
    operation_id=GET_MESSAGE,
)
def get_message(request: HttpRequest, message_id: UUID) -> dict[str, Any]:
    """A message's metadata and, for the mailbox that sent it, each recipient's delivery."""
    token = token_of(request)
    message, entry = selectors.message_by_public_id(token.mailbox, message_id)
    deliveries = selectors.sent_deliveries(token.mailbox, message)
    steps = (
        {
            line.recipient: [
                {"step": s.state, "label": s.label, "at": iso(s.at), "detail": s.detail}
                for s in line.steps
            ]
            for line in timeline(message)
        }
        if deliveries
        else {}
    )
    return {
        "id": message.public_id,
        "message_id": message.message_id,
        "from_addr": message.from_addr,
        "from_name": message.from_name,
        "from_via": message.from_via,
        "sender": message.sender_addr,
        "to": list(message.to_addrs or []),
        "cc": list(message.cc_addrs or []),
        "subject": message.subject,
        "date": iso(message.date),
        "size": message.size,
        "attachments": [
            {
                "index": a.get("index", 0),
                "filename": a.get("filename", ""),
                "content_type": a.get("content_type", ""),
                "size": a.get("size", 0),
            }
            for a in (message.attachments or [])
            if isinstance(a, dict)
        ],
        "patient_ins": message.patient_ins,
        "conversation_closed": message.conversation_closed,
        "scan_status": message.scan_status,
        "entry": entry_state(entry) if entry is not None else None,
        "deliveries": [
            {
                "recipient": d.recipient,
                "status": d.status,
                "attempts": d.attempts,
                "delivered_at": iso(d.delivered_at),
                # Hidden while a reader "sur demande" has not sent the receipt.
                "read_at": iso(d.read_at) if read_visible(d) else None,
                "error": d.reason_text,
                "timeline": steps.get(d.recipient, []),
            }
            for d in deliveries
        ],
    }


@router.get(
    "/messages/{message_id}/raw",
    response={200: None, **REFUSALS},
    summary="Le message brut (message/rfc822)",
    operation_id=GET_RAW,
    openapi_extra={
        "responses": {"200": {"description": "Le message", "content": {"message/rfc822": {}}}}
    },
)
def get_raw(request: HttpRequest, message_id: UUID) -> HttpResponse:
    """The message exactly as stored, decrypted, as ``message/rfc822``."""
    token = token_of(request)
    message = selectors.message_by_public_id(token.mailbox, message_id)[0]
    raw = services.read_raw(message)
    services.record_access(
        token.mailbox,
        AccessEvent.Action.OPEN,
        actor=None,
        messages=[message],
        label=f"API {token.label or token.prefix}",
    )
    response = HttpResponse(raw, content_type="message/rfc822")
    response["Cache-Control"] = "private, no-store"
    return response


@router.post(
    "/messages/{message_id}/flags",
    response={200: EntryState, 422: ErrorOut, **REFUSALS},
    summary="Marquer lu, suivre, déplacer",
    operation_id=SET_FLAGS,
)
def set_flags(request: HttpRequest, message_id: UUID, flags: FlagsIn) -> dict[str, Any]:
    """Mark a message of the token's mailbox seen or flagged, or move it to a folder."""
    token = token_of(request)
    entry = selectors.entry_by_public_id(token.mailbox, message_id)
    if entry is None:
        raise Http404
    target = folder_of(token, flags.folder) if flags.folder else None
    with transaction.atomic():
        if flags.seen is not None or flags.flagged is not None:
            services.set_flags([entry], by=None, seen=flags.seen, flagged=flags.flagged)
        if target is not None and target.pk != entry.folder_id:
            services.move_entries([entry], target, by=None)
    entry.refresh_from_db()
    return entry_state(entry)
