"""Refusals: every answer other than a success is JSON ``{"code", "message"}``.

``code`` is stable, for programs; ``message`` is in the user's language (French by
default) and names the rule or the field, for people. Endpoints raise ``ApiError``;
``install`` turns it and every other exception into such an answer.
"""

from __future__ import annotations

import logging
from typing import Any

from django.core.exceptions import PermissionDenied
from django.db import InterfaceError, OperationalError
from django.http import Http404, HttpRequest, HttpResponse
from django.utils.translation import gettext as _
from ninja import NinjaAPI
from ninja.errors import AuthenticationError, HttpError, ValidationError

from mailboxes import services
from mailboxes.blobs import BlobStoreUnavailable
from mssante.errors import (
    RETRY_AFTER_SECONDS,
    database_unavailable_text,
    storage_unavailable_text,
)
from mssante.lib import untrusted

log = logging.getLogger("mailboxes.api")


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


def field_error(field: str, reason: str) -> ApiError:
    """400 ``invalid_field`` naming the field and why its value is refused."""
    return ApiError(
        400,
        "invalid_field",
        _("Champ « %(field)s » invalide : %(reason)s.") % {"field": field, "reason": reason},
    )


def printable(text: str) -> str:
    """A field name or value sent by the client, safe to echo in a JSON answer."""
    return text.replace("\x00", "\\0").encode("utf-8", "replace").decode("utf-8")[:100]


def untrusted_reason(exc: untrusted.UntrustedInputError) -> str:
    """Why ``mssante.lib.untrusted`` refused an input, translated."""
    return _(exc.template) % exc.params if exc.params else _(exc.template)


def reason(error: Any) -> str:
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


def install(api: NinjaAPI) -> None:
    """Answer every refusal and failure of ``api`` as ``{"code", "message"}``."""

    def error(
        request: HttpRequest, status: int, code: str, message: str, **extra: Any
    ) -> HttpResponse:
        return api.create_response(
            request, {"code": code, "message": message, **extra}, status=status
        )

    @api.exception_handler(ApiError)
    def _api_error(request: HttpRequest, exc: ApiError) -> HttpResponse:
        response = error(request, exc.status, exc.code, exc.message)
        for name, value in exc.headers.items():
            response[name] = value
        return response

    @api.exception_handler(services.ScopeError)
    def _scope_error(request: HttpRequest, exc: services.ScopeError) -> HttpResponse:
        # The token's holder agreed to less than the request needs (read, not send).
        return error(request, 403, "forbidden_scope", str(exc))

    @api.exception_handler(services.SubmissionError)
    def _refused(request: HttpRequest, exc: services.SubmissionError) -> HttpResponse:
        # A rule refused the message (trust space, limits, a closed box…): nothing was stored.
        return error(request, 422, "refused", str(exc))

    @api.exception_handler(services.IdempotencyConflict)
    def _idempotency_conflict(
        request: HttpRequest, exc: services.IdempotencyConflict
    ) -> HttpResponse:
        return error(request, 409, "idempotency_conflict", str(exc))

    @api.exception_handler(ValidationError)
    def _validation_error(request: HttpRequest, exc: ValidationError) -> HttpResponse:
        errors = exc.errors
        # ninja puts the source first ("query", "path", "body"): the field follows.
        first = errors[0] if errors else {}
        loc = [str(p) for p in first.get("loc", ())][1:] or [_("requête")]
        field = printable(".".join(loc))
        return error(
            request,
            400,
            "invalid_field",
            _("Champ « %(field)s » invalide : %(reason)s.")
            % {"field": field, "reason": reason(first)},
            field=field,
        )

    @api.exception_handler(AuthenticationError)
    def _authentication_error(request: HttpRequest, exc: AuthenticationError) -> HttpResponse:
        return error(request, 401, "token_missing", _("Authentification requise."))

    @api.exception_handler(HttpError)
    def _http_error(request: HttpRequest, exc: HttpError) -> HttpResponse:
        if exc.status_code == 400:
            cause = exc.__cause__
            if isinstance(cause, untrusted.UntrustedInputError):
                # ninja turns any exception of the parser into HttpError(400) "from" it.
                return error(
                    request,
                    400,
                    "invalid_json",
                    _("Corps de la requête refusé : %(reason)s.")
                    % {"reason": untrusted_reason(cause)},
                )
            return error(
                request, 400, "invalid_json", _("Corps de la requête illisible : JSON attendu.")
            )
        return error(request, exc.status_code, "http_error", str(exc))

    @api.exception_handler(Http404)
    def _not_found(request: HttpRequest, exc: Http404) -> HttpResponse:
        return error(
            request, 404, "not_found", _("Ce message n'existe pas dans la boîte de ce jeton.")
        )

    @api.exception_handler(PermissionDenied)
    def _forbidden(request: HttpRequest, exc: PermissionDenied) -> HttpResponse:
        return error(request, 403, "forbidden", _("Ce jeton ne donne pas accès à cette ressource."))

    @api.exception_handler(BlobStoreUnavailable)
    def _storage_unavailable(request: HttpRequest, exc: BlobStoreUnavailable) -> HttpResponse:
        # Temporary: nothing was stored, the same request (same Idempotency-Key) may be retried.
        response = error(request, 503, "storage_unavailable", storage_unavailable_text())
        response["Retry-After"] = str(RETRY_AFTER_SECONDS)
        return response

    @api.exception_handler(OperationalError)
    @api.exception_handler(InterfaceError)
    def _database_unavailable(request: HttpRequest, exc: Exception) -> HttpResponse:
        # Temporary: the same request (same Idempotency-Key) may be retried.
        log.error("API: database unavailable on %s", request.path, exc_info=exc)
        response = error(request, 503, "unavailable", database_unavailable_text())
        response["Retry-After"] = str(RETRY_AFTER_SECONDS)
        return response

    @api.exception_handler(Exception)
    def _server_error(request: HttpRequest, exc: Exception) -> HttpResponse:
        log.exception("API error on %s", request.path)
        return error(request, 500, "server_error", _("Erreur interne : l'équipe est prévenue."))
