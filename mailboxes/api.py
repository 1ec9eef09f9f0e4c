"""The REST API for software (``/api/v1/``): send, follow, list, fetch and file messages.

Each token is scoped to one mailbox. Every refusal is JSON ``{"code", "message"}``
with the message in French naming the rule; the OpenAPI document is
``/api/v1/openapi.json`` and a readable page ``/api/v1/docs``.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import io
import json
import logging
import re
from typing import Annotated, Any
from uuid import UUID

import pydantic
from django.conf import settings
from django.core.exceptions import (
    PermissionDenied,
    RequestDataTooBig,
    SuspiciousOperation,
    TooManyFieldsSent,
)
from django.db import IntegrityError, InterfaceError, OperationalError, transaction
from django.http import Http404, HttpRequest, HttpResponse
from django.http.multipartparser import MultiPartParser, MultiPartParserError
from django.utils.datastructures import MultiValueDict
from django.utils.http import parse_header_parameters
from django.utils.translation import gettext as _
from ninja import NinjaAPI, Query, Schema, Status
from ninja.errors import AuthenticationError, HttpError, ValidationError
from ninja.parser import Parser
from ninja.security import HttpBearer
from pydantic import AfterValidator, Field

from mailboxes import selectors, services
from mailboxes.blobs import BlobStoreUnavailable
from mailboxes.models import (
    AccessEvent,
    ApiToken,
    Delivery,
    Entry,
    Folder,
    IdempotencyRecord,
    Message,
)
from mailboxes.transport.timeline import read_visible, timeline
from mssante.errors import (
    RETRY_AFTER_SECONDS,
    database_unavailable_text,
    storage_unavailable_text,
)
from mssante.lib import mime, untrusted

log = logging.getLogger(__name__)

_KEY_RE = re.compile(r"^[\x21-\x7e]{1,255}$")


class ApiError(Exception):
    """A refusal: HTTP status, a stable code for programs and a French message for people."""

    def __init__(
        self, status: int, code: str, message: str, headers: dict[str, str] | None = None
    ) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.headers = headers or {}


# --------------------------------------------------------------------------- authentication


class TokenAuth(HttpBearer):
    """``Authorization: Bearer <token>``; a missing, unknown, expired or revoked token is a 401."""

    def __call__(self, request: HttpRequest) -> ApiToken:
        header = request.headers.get("Authorization", "")
        if not header:
            raise ApiError(
                401,
                "token_missing",
                _("Authentification requise : en-tête « Authorization: Bearer <jeton> » absent."),
            )
        scheme, _sep, value = header.partition(" ")
        if scheme.lower() != "bearer" or not value.strip():
            raise ApiError(
                401,
                "token_invalid",
                _("En-tête Authorization invalide : « Bearer <jeton> » attendu."),
            )
        return self.authenticate(request, value.strip())

    def authenticate(self, request: HttpRequest, token: str) -> ApiToken:
        found = services.find_token(token)
        if found is None:
            raise ApiError(401, "token_invalid", _("Jeton inconnu."))
        if found.revoked_at is not None:
            raise ApiError(401, "token_revoked", _("Ce jeton a été révoqué."))
        if not found.is_usable():
            raise ApiError(401, "token_expired", _("Ce jeton a expiré."))
        if not found.mailbox.is_active:
            raise ApiError(
                403,
                "mailbox_closed",
                _("La boîte %(address)s de ce jeton est fermée.")
                % {"address": found.mailbox.address},
            )
        retry_after = services.count_request(found)
        if retry_after is not None:
            raise ApiError(
                429,
                "rate_limited",
                _(
                    "Trop de requêtes : au plus %(limit)d par %(window)d secondes pour ce jeton. "
                    "Réessayez dans %(retry)d secondes."
                )
                % {
                    "limit": settings.API_RATE_LIMIT,
                    "window": settings.API_RATE_WINDOW_SECONDS,
                    "retry": retry_after,
                },
                {"Retry-After": str(retry_after)},
            )
        return found


class SafeParser(Parser):
    """ninja's parser with the checks of ``mssante.lib.untrusted`` (depth, NUL, surrogates)."""

    def parse_body(self, request: HttpRequest) -> dict[str, Any]:
        # ninja turns any exception here into HttpError(400) "from" it: _http_error
        # shows our French reason.
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
                    raise _field_error(_printable(key), _(fault))
        return super().parse_querydict(data, list_fields, request)


api = NinjaAPI(
    title="API MSSanté",
    version="1",
    description=(
        "Envoi et réception de messages MSSanté par un logiciel (boîte applicative, ou boîte "
        "nominative ou organisationnelle avec l'accord de son titulaire). Un jeton porte sur "
        "une seule boîte. Voir docs/api.md."
    ),
    urls_namespace="api",
    auth=TokenAuth(),
    parser=SafeParser(),
)


def _token(request: HttpRequest, need: selectors.Access = selectors.Access.READ) -> ApiToken:
    """The request's token, whose scope (what its holder agreed to) must cover ``need``."""
    token = getattr(request, "auth", None)
    assert isinstance(token, ApiToken)
    if services.tokens.scope_level(token.scope) < need:
        raise ApiError(
            403,
            "forbidden_scope",
            _(
                "Ce jeton ne permet pas d'envoyer : le titulaire de %(address)s n'a accordé "
                "que la lecture."
            )
            % {"address": token.mailbox.address},
        )
    return token


def _error(
    request: HttpRequest, status: int, code: str, message: str, **extra: Any
) -> HttpResponse:
    return api.create_response(request, {"code": code, "message": message, **extra}, status=status)


@api.exception_handler(ApiError)
def _api_error(request: HttpRequest, exc: ApiError) -> HttpResponse:
    response = _error(request, exc.status, exc.code, exc.message)
    for name, value in exc.headers.items():
        response[name] = value
    return response


@api.exception_handler(ValidationError)
def _validation_error(request: HttpRequest, exc: ValidationError) -> HttpResponse:
    errors = exc.errors
    # ninja puts the source first ("query", "path", "body"): the field follows.
    first = errors[0] if errors else {}
    loc = [str(p) for p in first.get("loc", ())][1:] or [_("requête")]
    field = _printable(".".join(loc))
    return _error(
        request,
        400,
        "invalid_field",
        _("Champ « %(field)s » invalide : %(reason)s.")
        % {"field": field, "reason": _reason(first)},
        field=field,
    )


def _reason(error: Any) -> str:
    """pydantic's reason for refusing a value, in French for the common cases."""
    kind = error.get("type", "")
    ctx = error.get("ctx") or {}
    if kind == "value_error" and "error" in ctx:
        return str(ctx["error"])
    reasons = {
        "missing": _("champ obligatoire"),
        "extra_forbidden": _("champ inconnu"),
        "string_type": _("texte attendu"),
        "list_type": _("liste attendue"),
        "bool_type": _("booléen attendu (true ou false)"),
        "bool_parsing": _("booléen attendu (true ou false)"),
        "int_type": _("nombre entier attendu"),
        "int_parsing": _("nombre entier attendu"),
        "model_type": _("objet JSON attendu"),
        "dict_type": _("objet JSON attendu"),
        "uuid_parsing": _("identifiant (UUID) attendu"),
        "uuid_type": _("identifiant (UUID) attendu"),
        "string_too_short": _("au moins %(n)s caractère(s)") % {"n": ctx.get("min_length")},
        "string_too_long": _("au plus %(n)s caractères") % {"n": ctx.get("max_length")},
        "too_short": _("au moins %(n)s élément(s)") % {"n": ctx.get("min_length")},
        "too_long": _("au plus %(n)s éléments") % {"n": ctx.get("max_length")},
        "greater_than_equal": _("au moins %(n)s") % {"n": ctx.get("ge")},
        "less_than_equal": _("au plus %(n)s") % {"n": ctx.get("le")},
    }
    return str(reasons.get(kind, error.get("msg", _("valeur refusée"))))


def _printable(text: str) -> str:
    """A field name or value sent by the client, safe to echo in a JSON answer."""
    return text.replace("\x00", "\\0").encode("utf-8", "replace").decode("utf-8")[:100]


@api.exception_handler(AuthenticationError)
def _authentication_error(request: HttpRequest, exc: AuthenticationError) -> HttpResponse:
    return _error(request, 401, "token_missing", _("Authentification requise."))


@api.exception_handler(HttpError)
def _http_error(request: HttpRequest, exc: HttpError) -> HttpResponse:
    if exc.status_code == 400:
        cause = exc.__cause__
        if isinstance(cause, untrusted.UntrustedInputError):
            return _error(
                request,
                400,
                "invalid_json",
                _("Corps de la requête refusé : %(reason)s.") % {"reason": _untrusted(cause)},
            )
        return _error(
            request, 400, "invalid_json", _("Corps de la requête illisible : JSON attendu.")
        )
    return _error(request, exc.status_code, "http_error", str(exc))


@api.exception_handler(Http404)
def _not_found(request: HttpRequest, exc: Http404) -> HttpResponse:
    return _error(
        request, 404, "not_found", _("Ce message n'existe pas dans la boîte de ce jeton.")
    )


@api.exception_handler(PermissionDenied)
def _forbidden(request: HttpRequest, exc: PermissionDenied) -> HttpResponse:
    return _error(request, 403, "forbidden", _("Ce jeton ne donne pas accès à cette ressource."))


@api.exception_handler(BlobStoreUnavailable)
def _storage_unavailable(request: HttpRequest, exc: BlobStoreUnavailable) -> HttpResponse:
    # Temporary: nothing was stored, the same request (same Idempotency-Key) may be retried.
    response = _error(request, 503, "storage_unavailable", storage_unavailable_text())
    response["Retry-After"] = str(RETRY_AFTER_SECONDS)
    return response


@api.exception_handler(OperationalError)
@api.exception_handler(InterfaceError)
def _database_unavailable(request: HttpRequest, exc: Exception) -> HttpResponse:
    # Temporary: the same request (same Idempotency-Key) may be retried.
    log.error("API: database unavailable on %s", request.path, exc_info=exc)
    response = _error(request, 503, "unavailable", database_unavailable_text())
    response["Retry-After"] = str(RETRY_AFTER_SECONDS)
    return response


@api.exception_handler(Exception)
def _server_error(request: HttpRequest, exc: Exception) -> HttpResponse:
    log.exception("API error on %s", request.path)
    return _error(request, 500, "server_error", _("Erreur interne : l'équipe est prévenue."))


# --------------------------------------------------------------------------- schemas


def _untrusted(exc: untrusted.UntrustedInputError) -> str:
    return _(exc.template) % exc.params if exc.params else _(exc.template)


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
_MESSAGE_SCHEMA = {
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
_MULTIPART_SCHEMA = {
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


_REFUSALS: dict[int | str, Any] = {
    400: ErrorOut,
    401: ErrorOut,
    403: ErrorOut,
    404: ErrorOut,
    429: ErrorOut,
}


# --------------------------------------------------------------------------- helpers


def _iso(value: Any) -> str | None:
    return value.isoformat() if value is not None else None


def _folder_name(folder: Folder) -> str:
    return folder.role if folder.role != Folder.Role.CUSTOM else folder.name


def _folder(token: ApiToken, name: str) -> Folder:
    """A folder of the token's mailbox by role (inbox, sent, archive, trash) or custom name."""
    qs = Folder.objects.filter(mailbox=token.mailbox)
    folder = (
        qs.exclude(role=Folder.Role.CUSTOM).filter(role=name).first()
        or qs.filter(role=Folder.Role.CUSTOM, name=name).first()
    )
    if folder is None or folder.role == Folder.Role.DRAFTS:
        # 422: the request is well formed, the folder just does not exist in this box.
        raise ApiError(
            422,
            "unknown_folder",
            _(
                "Champ « folder » : dossier inconnu « %(name)s » (inbox, sent, archive, trash "
                "ou le nom d'un dossier de la boîte)."
            )
            % {"name": name},
        )
    return folder


def _entry(token: ApiToken, message_id: UUID) -> Entry | None:
    return (
        Entry.objects.select_related("message", "folder", "mailbox")
        .filter(mailbox=token.mailbox, message__public_id=message_id)
        .first()
    )


def _message(token: ApiToken, message_id: UUID) -> tuple[Message, Entry | None]:
    """A message of the token's mailbox (received, or sent by it), or 404 (no oracle)."""
    entry = _entry(token, message_id)
    if entry is not None:
        return entry.message, entry
    message = Message.objects.filter(public_id=message_id, sender_mailbox=token.mailbox).first()
    if message is None:
        raise Http404
    return message, None


def _field_error(field: str, reason: str) -> ApiError:
    return ApiError(
        400,
        "invalid_field",
        _("Champ « %(field)s » invalide : %(reason)s.") % {"field": field, "reason": reason},
    )


def _read_payload(request: HttpRequest) -> tuple[MessageIn, list[mime.Attachment]]:
    """The message of a JSON or multipart body, validated; 400 names the field, 413 the size."""
    limit = settings.API_MAX_REQUEST_BYTES
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
    content_type = (request.content_type or "").lower()
    attachments: list[mime.Attachment] = []
    if content_type == "multipart/form-data":
        post, files = _read_multipart(request, limit, too_large)
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
                    raise _field_error(f"attachments.{len(attachments)}.{field}", _(fault))
            attachments.append(mime.Attachment(name, kind, upload.read()))
    else:
        if content_type not in ("application/json", ""):
            raise ApiError(
                415,
                "unsupported_media_type",
                _("Type de contenu non pris en charge : application/json ou multipart/form-data."),
            )
        raw = request.read(limit + 1)
        if len(raw) > limit:
            raise too_large
        try:
            data = untrusted.load_json(raw or b"null")
        except untrusted.UntrustedInputError as exc:
            # A faulty string names its place: the same code as any other bad field.
            code = "invalid_field" if "where" in exc.params else "invalid_json"
            raise ApiError(
                400, code, _("Corps JSON refusé : %(error)s.") % {"error": _untrusted(exc)}
            ) from None
        if not isinstance(data, dict):
            raise ApiError(400, "invalid_json", _("Le corps doit être un objet JSON."))
    try:
        payload = MessageIn.model_validate(data)
    except pydantic.ValidationError as exc:
        first = exc.errors()[0]
        raise _field_error(
            _printable(".".join(str(p) for p in first["loc"])) or "corps", _reason(first)
        ) from None
    for i, att in enumerate(payload.attachments):
        try:
            content = base64.b64decode("".join(att.content.split()), validate=True)
        except (binascii.Error, ValueError):
            raise _field_error(f"attachments.{i}.content", _("base64 invalide")) from None
        attachments.append(mime.Attachment(att.filename, att.content_type, content))
    return payload, attachments


def _read_multipart(
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


def _request_hash(payload: MessageIn, attachments: list[mime.Attachment]) -> str:
    """What the request asks, whatever its encoding (JSON or multipart, key order, base64)."""
    canonical = json.dumps(
        {
            "to": payload.to,
            "cc": payload.cc,
            "subject": payload.subject,
            "text": payload.text,
            "html": payload.html,
            "attachments": [
                [a.filename, a.content_type, hashlib.sha256(a.data).hexdigest()]
                for a in attachments
            ],
        },
        sort_keys=True,
        ensure_ascii=False,
    )
    return hashlib.sha256(canonical.encode()).hexdigest()


def _replay(token: ApiToken, key: str, request_hash: str) -> Status[dict[str, Any]] | None:
    record = IdempotencyRecord.objects.filter(token=token, key=key).first()
    if record is None:
        return None
    if record.request_hash != request_hash:
        raise ApiError(
            409,
            "idempotency_conflict",
            _(
                "La clé d'idempotence « %(key)s » a déjà servi pour une autre requête : "
                "utilisez une nouvelle clé pour un nouveau message."
            )
            % {"key": key},
        )
    return Status(record.status, dict(record.body))


# --------------------------------------------------------------------------- endpoints


def _links(message_id: str) -> dict[str, Any]:
    """OpenAPI links from an answer naming a message to the operations on that message."""
    return {
        name: {"operationId": operation, "parameters": {"message_id": message_id}}
        for name, operation in (
            ("GetMessage", "mailboxes_api_get_message"),
            ("GetRawMessage", "mailboxes_api_get_raw"),
            ("SetFlags", "mailboxes_api_set_flags"),
        )
    }


@api.post(
    "/messages",
    response={
        201: MessageCreatedOut,
        409: ErrorOut,
        413: ErrorOut,
        415: ErrorOut,
        422: ErrorOut,
        **_REFUSALS,
    },
    summary="Envoyer un message",
    openapi_extra={
        # What a client (and schemathesis's stateful run) can do next with the new id.
        "responses": {201: {"links": _links("$response.body#/id")}},
        "parameters": [
            {
                "name": "Idempotency-Key",
                "in": "header",
                "required": False,
                "schema": {
                    "type": "string",
                    "minLength": 1,
                    "maxLength": 255,
                    "pattern": "^[!-~]{1,255}$",
                },
                "description": (
                    "Même clé et même corps : la première réponse est rejouée, rien n'est "
                    "envoyé deux fois. Même clé, autre corps : 409."
                ),
            }
        ],
        "requestBody": {
            "required": True,
            "content": {
                "application/json": {"schema": _MESSAGE_SCHEMA},
                "multipart/form-data": {"schema": _MULTIPART_SCHEMA},
            },
        },
    },
)
def send_message(request: HttpRequest) -> Status[dict[str, Any]]:
    """Send from the token's mailbox; 201 once the message is durably stored."""
    token = _token(request, selectors.Access.SEND)
    key = request.headers.get("Idempotency-Key")
    if key is not None and not _KEY_RE.match(key):
        raise _field_error("Idempotency-Key", _("1 à 255 caractères ASCII visibles"))
    payload, attachments = _read_payload(request)
    request_hash = _request_hash(payload, attachments)
    if key is not None:
        replayed = _replay(token, key, request_hash)
        if replayed is not None:
            return replayed
    try:
        # One transaction: the key, the message and its answer commit together, so the
        # 201 goes out after the commit, and a concurrent retry with the same key waits
        # on the unique (token, key) row, then replays this answer.
        with transaction.atomic():
            record = (
                IdempotencyRecord.objects.create(
                    token=token, key=key, request_hash=request_hash, status=0
                )
                if key is not None
                else None
            )
            message = services.submit_message(
                mailbox=token.mailbox,
                author=None,
                to=payload.to,
                cc=payload.cc,
                subject=payload.subject,
                text=payload.text,
                html=payload.html,
                attachments=attachments,
                origin=Message.Origin.API,
                request=request,
            )
            services.record_access(
                token.mailbox,
                AccessEvent.Action.SEND,
                actor=None,
                messages=[message],
                label=f"API {token.label or token.prefix}",
            )
            body = {
                "id": str(message.public_id),
                "message_id": message.message_id,
                "recipients": len(message.to_addrs) + len(message.cc_addrs),
                "url": f"/api/v1/messages/{message.public_id}",
            }
            if record is not None:
                record.status, record.body, record.message = 201, body, message
                record.save(update_fields=["status", "body", "message"])
    except IntegrityError:
        if key is None:
            raise
        replayed = _replay(token, key, request_hash)
        if replayed is None:
            raise
        return replayed
    except services.SubmissionError as exc:
        raise ApiError(422, "refused", str(exc)) from None
    return Status(201, body)


@api.get("/messages/{message_id}", response={200: MessageOut, **_REFUSALS}, summary="Un message")
def get_message(request: HttpRequest, message_id: UUID) -> dict[str, Any]:
    """A message's metadata and, for the mailbox that sent it, each recipient's delivery."""
    token = _token(request)
    message, entry = _message(token, message_id)
    deliveries = (
        list(Delivery.objects.filter(message=message).order_by("recipient"))
        if message.sender_mailbox_id == token.mailbox_id
        else []
    )
    steps = (
        {
            line.recipient: [
                {"step": s.state, "label": s.label, "at": _iso(s.at), "detail": s.detail}
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
        "date": _iso(message.date),
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
        "entry": (
            {
                "folder": _folder_name(entry.folder),
                "seen": entry.seen,
                "flagged": entry.flagged,
                "answered": entry.answered,
                "received_at": _iso(entry.received_at),
            }
            if entry is not None
            else None
        ),
        "deliveries": [
            {
                "recipient": d.recipient,
                "status": d.status,
                "attempts": d.attempts,
                "delivered_at": _iso(d.delivered_at),
                # Hidden while a reader "sur demande" has not sent the receipt.
                "read_at": _iso(d.read_at) if read_visible(d) else None,
                "error": d.reason_text,
                "timeline": steps.get(d.recipient, []),
            }
            for d in deliveries
        ],
    }


@api.get(
    "/messages/{message_id}/raw",
    response={200: None, **_REFUSALS},
    summary="Le message brut (message/rfc822)",
    openapi_extra={
        "responses": {"200": {"description": "Le message", "content": {"message/rfc822": {}}}}
    },
)
def get_raw(request: HttpRequest, message_id: UUID) -> HttpResponse:
    """The message exactly as stored, decrypted, as ``message/rfc822``."""
    token = _token(request)
    message = _message(token, message_id)[0]
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


@api.post(
    "/messages/{message_id}/flags",
    response={200: EntryState, 422: ErrorOut, **_REFUSALS},
    summary="Marquer lu, suivre, déplacer",
)
def set_flags(request: HttpRequest, message_id: UUID, flags: FlagsIn) -> dict[str, Any]:
    """Mark a message of the token's mailbox seen or flagged, or move it to a folder."""
    token = _token(request)
    entry = _entry(token, message_id)
    if entry is None:
        raise Http404
    target = _folder(token, flags.folder) if flags.folder else None
    with transaction.atomic():
        if flags.seen is not None or flags.flagged is not None:
            services.set_flags([entry], by=None, seen=flags.seen, flagged=flags.flagged)
        if target is not None and target.pk != entry.folder_id:
            services.move_entries([entry], target, by=None)
    entry.refresh_from_db()
    return {
        "folder": _folder_name(entry.folder),
        "seen": entry.seen,
        "flagged": entry.flagged,
        "answered": entry.answered,
        "received_at": _iso(entry.received_at),
    }


@api.get(
    "/mailboxes/{address}/messages",
    response={200: MessagePage, 422: ErrorOut, **_REFUSALS},
    summary="Les messages d'un dossier, du plus récent au plus ancien",
    openapi_extra={"responses": {200: {"links": _links("$response.body#/messages/0/id")}}},
)
def list_messages(request: HttpRequest, address: str, params: Query[ListQuery]) -> dict[str, Any]:
    """One page of a folder; pass ``next_cursor`` back as ``cursor`` for the next one."""
    token = _token(request)
    if address.strip().lower() != token.mailbox.address.lower():
        raise ApiError(
            403,
            "wrong_mailbox",
            _("Ce jeton ne donne accès qu'à la boîte %(address)s.")
            % {"address": token.mailbox.address},
        )
    folder = _folder(token, params.folder)
    if params.cursor and selectors.parse_cursor(params.cursor) is None:
        raise _field_error("cursor", _("curseur illisible : reprenez le « next_cursor » reçu"))
    page = selectors.folder_page(
        folder, before=params.cursor, limit=min(params.limit, settings.API_PAGE_MAX)
    )
    return {
        "messages": [
            {
                "id": e.message.public_id,
                "message_id": e.message.message_id,
                "from_addr": e.message.from_addr,
                "from_via": e.message.from_via,
                "to": list(e.message.to_addrs or []),
                "subject": e.message.subject,
                "date": _iso(e.message.date),
                "size": e.message.size,
                "has_attachments": bool(e.message.attachments),
                "folder": _folder_name(e.folder),
                "seen": e.seen,
                "flagged": e.flagged,
                "received_at": _iso(e.received_at),
            }
            for e in page.entries
        ],
        "next_cursor": page.next_cursor,
    }
