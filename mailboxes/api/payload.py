"""Reading a request: JSON checked like any untrusted input, and the body of ``POST /messages``.

Everything here only parses and validates what the client sent; a refusal is a 400
naming the field (413 for the size, 415 for the type) and nothing is written.
"""

from __future__ import annotations

import base64
import binascii
import io
import re
from typing import Any

import pydantic
from django.conf import settings
from django.core.exceptions import RequestDataTooBig, SuspiciousOperation, TooManyFieldsSent
from django.http import HttpRequest
from django.http.multipartparser import MultiPartParser, MultiPartParserError
from django.utils.datastructures import MultiValueDict
from django.utils.http import parse_header_parameters
from django.utils.translation import gettext as _
from ninja.parser import Parser

from mailboxes.api.errors import ApiError, field_error, printable, reason, untrusted_reason
from mailboxes.api.schemas import MessageIn
from mssante.lib import mime, untrusted

_KEY_RE = re.compile(r"^[\x21-\x7e]{1,255}$")


class SafeParser(Parser):
    """ninja's parser with the checks of ``mssante.lib.untrusted`` (depth, NUL, surrogates)."""

    def parse_body(self, request: HttpRequest) -> dict[str, Any]:
        # ninja turns any exception here into HttpError(400) "from" it: the HttpError
        # handler (errors.install) shows our French reason.
        data = untrusted.load_json(request.body)
        if not isinstance(data, dict):
            raise untrusted.UntrustedInputError(_("Le corps doit être un objet JSON."))
        return data

    def parse_querydict(
        self, data: MultiValueDict[str, Any], list_fields: list[str], request: HttpRequest
    ) -> dict[str, Any]:
        for key, values in data.lists():
            for text in (key, *values):
                if isinstance(text, str) and (fault := untrusted.text_fault(text)):
                    raise field_error(printable(key), _(fault))
        return super().parse_querydict(data, list_fields, request)


def idempotency_key(request: HttpRequest) -> str | None:
    """The ``Idempotency-Key`` header: 1 to 255 visible ASCII characters, or None."""
    key = request.headers.get("Idempotency-Key")
    if key is not None and not _KEY_RE.match(key):
        raise field_error("Idempotency-Key", _("1 à 255 caractères ASCII visibles"))
    return key


def _bounded(request: HttpRequest, limit: int) -> ApiError:
    """The 413 for a body over ``limit``, raised now when the declared length is over it."""
    too_large = ApiError(
        413,
        "too_large",
        _("Requête trop volumineuse : au plus %(limit)s.") % {"limit": mime.human_size(limit)},
    )
    try:
        declared = int(request.META.get("CONTENT_LENGTH") or 0)
    except ValueError:
        declared = 0
    if declared > limit:
        raise too_large
    return too_large


def _json_body(request: HttpRequest, limit: int, too_large: ApiError) -> Any:
    """The JSON body, read within ``limit`` and checked like any untrusted input; 400 otherwise."""
    raw = request.read(limit + 1)
    if len(raw) > limit:
        raise too_large
    try:
        return untrusted.load_json(raw or b"null")
    except untrusted.UntrustedInputError as exc:
        # A faulty string names its place: the same code as any other bad field.
        code = "invalid_field" if "where" in exc.params else "invalid_json"
        raise ApiError(
            400, code, _("Corps JSON refusé : %(error)s.") % {"error": untrusted_reason(exc)}
        ) from None


def read_payload(request: HttpRequest) -> tuple[MessageIn, list[mime.Attachment]]:
    """The message of a JSON or multipart body, validated; 400 names the field, 413 the size."""
    limit = settings.API_MAX_REQUEST_BYTES
    too_large = _bounded(request, limit)
    content_type = (request.content_type or "").lower()
    attachments: list[mime.Attachment] = []
    if content_type == "multipart/form-data":
        post, files = read_multipart(request, limit, too_large)
        data: dict[str, Any] = {
            "to": _split(post.getlist("to")),
            "cc": _split(post.getlist("cc")),
            "subject": post.get("subject", ""),
            "text": post.get("text", ""),
            "html": post.get("html") or None,
        }
        for upload in files.getlist("attachments"):
            name = (upload.name or "piece-jointe")[:255]
            kind = (upload.content_type or "application/octet-stream")[:127]
            for field, value in (("filename", name), ("content_type", kind)):
                if fault := untrusted.text_fault(value):
                    raise field_error(f"attachments.{len(attachments)}.{field}", _(fault))
            attachments.append(mime.Attachment(name, kind, upload.read()))
    else:
        if content_type not in ("application/json", ""):
            raise ApiError(
                415,
                "unsupported_media_type",
                _("Type de contenu non pris en charge : application/json ou multipart/form-data."),
            )
        data = _json_body(request, limit, too_large)
        if not isinstance(data, dict):
            raise ApiError(400, "invalid_json", _("Le corps doit être un objet JSON."))
    payload, decoded = message_of(data)
    return payload, attachments + decoded


def message_of(data: Any, where: str = "") -> tuple[MessageIn, list[mime.Attachment]]:
    """A message object of a JSON body, validated, its attachments decoded; 400 names the field.

    ``where``: the object's place in the body (``messages.3.``), put before field names.
    """
    try:
        payload = MessageIn.model_validate(data)
    except pydantic.ValidationError as exc:
        first = exc.errors()[0]
        place = ".".join(str(p) for p in first["loc"])
        raise field_error(printable(where + place) or "corps", reason(first)) from None
    attachments = []
    for i, att in enumerate(payload.attachments):
        try:
            content = base64.b64decode("".join(att.content.split()), validate=True)
        except (binascii.Error, ValueError):
            raise field_error(f"{where}attachments.{i}.content", _("base64 invalide")) from None
        attachments.append(mime.Attachment(att.filename, att.content_type, content))
    return payload, attachments


def read_batch(request: HttpRequest) -> list[tuple[MessageIn, list[mime.Attachment]]]:
    """The messages of ``POST /messages/batch``, each validated.

    The body is refused as a whole (400 naming the field, 413, 415) when it is not a JSON
    object whose ``messages`` is a list of 1 to API_BATCH_MAX valid messages: a malformed
    item is the client's bug, not a message to skip. Rules of the trust space are applied
    later, message by message.
    """
    # The same bound as one message: a batch is for many small messages (lab results), and
    # a request body is held in memory whole.
    limit = settings.API_MAX_REQUEST_BYTES
    too_large = _bounded(request, limit)
    if (request.content_type or "").lower() not in ("application/json", ""):
        raise ApiError(
            415,
            "unsupported_media_type",
            _("Type de contenu non pris en charge : application/json."),
        )
    data = _json_body(request, limit, too_large)
    if not isinstance(data, dict) or set(data) != {"messages"}:
        raise ApiError(
            400, "invalid_json", _('Le corps doit être un objet JSON : {"messages": [...]}.')
        )
    items = data["messages"]
    most = settings.API_BATCH_MAX
    if not isinstance(items, list) or not 1 <= len(items) <= most:
        raise field_error("messages", _("liste de 1 à %(most)s messages attendue") % {"most": most})
    return [message_of(item, f"messages.{i}.") for i, item in enumerate(items)]


def read_multipart(
    request: HttpRequest, limit: int, too_large: ApiError
) -> tuple[MultiValueDict[str, str], MultiValueDict[str, Any]]:
    """Fields and files of a multipart body whose declared boundary really delimits it.

    Django's parser is lenient: a body that never shows the boundary parses as no
    field at all, or as one field swallowing the rest, which would send a message
    other than the one meant. We read the body (bounded), check its framing, then parse.
    """
    invalid = ApiError(
        400,
        "invalid_multipart",
        _(
            "Corps multipart/form-data mal formé : la limite (boundary) déclarée dans "
            "Content-Type doit ouvrir le corps et le fermer (--limite--)."
        ),
    )
    _type, params = parse_header_parameters(request.META.get("CONTENT_TYPE", ""))
    boundary = params.get("boundary", "")
    if not boundary or len(boundary) > 70 or not boundary.isascii():
        raise invalid
    raw = request.read(limit + 1)
    if len(raw) > limit:
        raise too_large
    delimiter = b"--" + boundary.encode("ascii")
    opens = raw.startswith(delimiter) or b"\r\n" + delimiter in raw
    if not opens or delimiter + b"--" not in raw:
        raise invalid
    meta = {**request.META, "CONTENT_LENGTH": str(len(raw))}
    try:
        parser = MultiPartParser(meta, io.BytesIO(raw), request.upload_handlers, request.encoding)
        post, files = parser.parse()
    except (RequestDataTooBig, TooManyFieldsSent):
        raise too_large from None
    except (MultiPartParserError, SuspiciousOperation):
        raise invalid from None
    return post, files


def _split(values: list[str]) -> list[str]:
    out: list[str] = []
    for value in values:
        out += [part.strip() for part in re.split(r"[,;\n]", value) if part.strip()]
    return out
