"""A failure of ours that will pass (the blob store refusing a write, the database out of
reach) becomes a clear temporary error page in French, never a bare 500."""

from __future__ import annotations

import logging
from collections.abc import Callable

from django.db import InterfaceError, OperationalError
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.urls import reverse
from django.utils.html import escape
from django.utils.translation import gettext as _

from mailboxes.blobs import BlobStoreUnavailable

log = logging.getLogger(__name__)

# How long a client is asked to wait before trying again (HTTP Retry-After).
RETRY_AFTER_SECONDS = 120
# Database errors that say "not now" (connection lost, server restarting, deadlock).
DATABASE_UNAVAILABLE = (OperationalError, InterfaceError)


def storage_unavailable_text() -> str:
    return _(
        "Le stockage des messages est momentanément indisponible : rien n'a été enregistré "
        "ni envoyé. Réessayez dans quelques minutes."
    )


def database_unavailable_text() -> str:
    return _(
        "Le service est momentanément indisponible : votre dernière action n'a peut-être pas "
        "été enregistrée. Vérifiez-la dans quelques instants avant de la refaire."
    )


class TemporaryFailureMiddleware:
    """Turns ``BlobStoreUnavailable`` and an unreachable database into a French 503 page."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        return self.get_response(request)

    def process_exception(self, request: HttpRequest, exception: Exception) -> HttpResponse | None:
        if isinstance(exception, BlobStoreUnavailable):
            text = storage_unavailable_text()
        elif isinstance(exception, DATABASE_UNAVAILABLE):
            log.error("database unavailable on %s", request.path, exc_info=exception)
            text = database_unavailable_text()
        else:
            return None
        try:
            response = render(
                request,
                "mailboxes/storage_unavailable.html",
                {"error": text, "back_url": reverse("home")},
                status=503,
            )
        except Exception:
            # The page needs the database too (the user's name): a bare page still says it.
            title = _("Service momentanément indisponible")
            response = HttpResponse(
                f'<!doctype html><html lang="fr"><title>{escape(title)}</title>'
                f"<h1>{escape(title)}</h1><p>{escape(text)}</p></html>",
                status=503,
            )
        response["Retry-After"] = str(RETRY_AFTER_SECONDS)
        return response
