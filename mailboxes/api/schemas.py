"""What the API reads and answers: the pydantic models behind the OpenAPI document.

Request bodies of ``POST /messages`` are read by hand (JSON or multipart, see
``mailboxes.api.payload``): their OpenAPI schemas are written out below rather than
derived, so that the document describes both encodings.
"""

from __future__ import annotations

from typing import Annotated, Any
from uuid import UUID

import pydantic
from django.utils.translation import gettext as _
from ninja import Schema
from pydantic import AfterValidator, Field

from mailboxes.models import Entry, Folder
from mssante.lib import untrusted


def _clean_text(value: str) -> str:
    fault = untrusted.text_fault(value)
    if fault:
        raise ValueError(_(fault))
    return value


# Every string of the API's schemas: what PostgreSQL, the MIME writer and the logs accept.
Text = Annotated[
    str, AfterValidator(_clean_text), Field(json_schema_extra={"pattern": "^[^\\u0000]*$"})
]


class ErrorOut(Schema):
    code: str
    message: str


class AttachmentIn(pydantic.BaseModel):
    model_config = pydantic.ConfigDict(extra="forbid")

    filename: Text = Field(min_length=1, max_length=255)
    content_type: Text = Field(default="application/octet-stream", min_length=1, max_length=127)
    content: Text = Field(description="Le fichier encodé en base64.")


class MessageIn(pydantic.BaseModel):
    model_config = pydantic.ConfigDict(extra="forbid")

    to: list[Text] = Field(min_length=1, max_length=1000)
    cc: list[Text] = Field(default_factory=list, max_length=1000)
    subject: Text = Field(default="", max_length=998)
    text: Text = ""
    html: Text | None = None
    attachments: list[AttachmentIn] = Field(default_factory=list, max_length=1000)


# Strings are refused with a NUL (and, not expressible here, a lone surrogate): see Text.
NO_NUL = "^[^\\u0000]*$"
_ATTACHMENT_SCHEMA = {
    "type": "object",
    "required": ["filename", "content"],
    "additionalProperties": False,
    "properties": {
        "filename": {"type": "string", "minLength": 1, "maxLength": 255, "pattern": NO_NUL},
        "content_type": {"type": "string", "minLength": 1, "maxLength": 127, "pattern": NO_NUL},
        "content": {"type": "string", "format": "byte", "description": "base64"},
    },
}
MESSAGE_SCHEMA = {
    "type": "object",
    "required": ["to"],
    "additionalProperties": False,
    "properties": {
        "to": {
            "type": "array",
            "items": {"type": "string", "pattern": NO_NUL},
            "minItems": 1,
            "maxItems": 1000,
        },
        "cc": {"type": "array", "items": {"type": "string", "pattern": NO_NUL}, "maxItems": 1000},
        "subject": {"type": "string", "maxLength": 998, "pattern": NO_NUL},
        "text": {"type": "string", "pattern": NO_NUL},
        "html": {"type": ["string", "null"], "pattern": NO_NUL},
        "attachments": {"type": "array", "items": _ATTACHMENT_SCHEMA, "maxItems": 1000},
    },
}
# A multipart "to" may hold several addresses separated by "," ";" or a new line.
_ADDRESSES = "^[^\\u0000]*[^\\u0000\\s,;][^\\u0000]*$"
MULTIPART_SCHEMA = {
    "type": "object",
    "required": ["to"],
    "properties": {
        "to": {
            "type": "array",
            "items": {"type": "string", "pattern": _ADDRESSES},
            "minItems": 1,
        },
        "cc": {"type": "array", "items": {"type": "string", "pattern": NO_NUL}},
        "subject": {"type": "string", "maxLength": 998, "pattern": NO_NUL},
        "text": {"type": "string", "pattern": NO_NUL},
        "html": {"type": "string", "pattern": NO_NUL},
        "attachments": {"type": "array", "items": {"type": "string", "format": "binary"}},
    },
}


class MessageCreatedOut(Schema):
    id: UUID
    message_id: str
    recipients: int
    url: str


class BatchResultOut(Schema):
    """One item of a batch, in its place: 201 and the message, or 400/422 and why."""

    status: int
    id: UUID | None = None
    message_id: str | None = None
    recipients: int | None = None
    url: str | None = None
    error: ErrorOut | None = None


class BatchOut(Schema):
    results: list[BatchResultOut]


class AttachmentOut(Schema):
    index: int
    filename: str
    content_type: str
    size: int


class TimelineStepOut(Schema):
    step: str
    label: str
    at: str | None
    detail: str


class DeliveryOut(Schema):
    recipient: str
    status: str
    attempts: int
    delivered_at: str | None
    read_at: str | None
    error: str
    # submitted → scanned → sending/deferred/delivered/bounced → read, oldest first.
    timeline: list[TimelineStepOut]


class EntryState(Schema):
    folder: str
    seen: bool
    flagged: bool
    answered: bool
    received_at: str


class MessageOut(Schema):
    id: UUID
    message_id: str
    from_addr: str
    from_name: str
    # Not empty: the operator that delivered it may not write for from_addr's domain.
    from_via: str
    sender: str
    to: list[str]
    cc: list[str]
    subject: str
    date: str
    size: int
    attachments: list[AttachmentOut]
    patient_ins: str
    conversation_closed: bool
    scan_status: str
    entry: EntryState | None
    deliveries: list[DeliveryOut]


class MessageSummary(Schema):
    id: UUID
    message_id: str
    from_addr: str
    from_via: str
    to: list[str]
    subject: str
    date: str
    size: int
    has_attachments: bool
    folder: str
    seen: bool
    flagged: bool
    received_at: str


class MessagePage(Schema):
    messages: list[MessageSummary]
    next_cursor: str | None


class FlagsIn(Schema):
    model_config = pydantic.ConfigDict(extra="forbid")

    seen: bool | None = None
    flagged: bool | None = None
    folder: Text | None = Field(default=None, max_length=100)


class ListQuery(Schema):
    folder: Text = Field(default="inbox", max_length=100)
    cursor: Text | None = Field(default=None, max_length=64)
    limit: int = Field(default=50, ge=1, le=1000)


REFUSALS: dict[int | str, Any] = {
    400: ErrorOut,
    401: ErrorOut,
    403: ErrorOut,
    404: ErrorOut,
    429: ErrorOut,
}


# OpenAPI links from an answer naming a message to the operations on that message: what a
# client (and schemathesis's stateful run) can do next with its id. The operation ids are
# fixed here rather than derived from the Python module, so moving code never renames them.
GET_MESSAGE = "mailboxes_api_get_message"
GET_RAW = "mailboxes_api_get_raw"
SET_FLAGS = "mailboxes_api_set_flags"
SEND_MESSAGE = "mailboxes_api_send_message"
SEND_BATCH = "mailboxes_api_send_batch"
LIST_MESSAGES = "mailboxes_api_list_messages"


def links(message_id: str) -> dict[str, Any]:
    """The links of an answer whose ``message_id`` expression names a message."""
    return {
        name: {"operationId": operation, "parameters": {"message_id": message_id}}
        for name, operation in (
            ("GetMessage", GET_MESSAGE),
            ("GetRawMessage", GET_RAW),
            ("SetFlags", SET_FLAGS),
        )
    }


# --------------------------------------------------------------------------- answers


def iso(value: Any) -> str | None:
    return value.isoformat() if value is not None else None


def folder_name(folder: Folder) -> str:
    """A folder as the API names it: its role (inbox, sent…), or a custom folder's name."""
    return folder.role if folder.role != Folder.Role.CUSTOM else folder.name


def entry_state(entry: Entry) -> dict[str, Any]:
    """``EntryState``: where a message is filed in the token's box, and its flags."""
    return {
        "folder": folder_name(entry.folder),
        "seen": entry.seen,
        "flagged": entry.flagged,
        "answered": entry.answered,
        "received_at": iso(entry.received_at),
    }
