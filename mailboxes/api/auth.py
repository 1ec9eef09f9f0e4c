"""Who is calling: the Bearer token, its mailbox, its scope and its rate limit."""

from __future__ import annotations

from django.conf import settings
from django.http import HttpRequest
from django.utils.translation import gettext as _
from ninja.security import HttpBearer

from mailboxes import selectors, services
from mailboxes.api.errors import ApiError
from mailboxes.models import ApiToken


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


def token_of(request: HttpRequest, need: selectors.Access = selectors.Access.READ) -> ApiToken:
    """The request's token, whose scope (what its holder agreed to) must cover ``need``.

    Checked before the body is read, as the webmail resolves a box at the level a page
    needs; the service that writes checks it again (``services.require_scope``).
    """
    token = getattr(request, "auth", None)
    assert isinstance(token, ApiToken)
    services.require_scope(token, need)
    return token
