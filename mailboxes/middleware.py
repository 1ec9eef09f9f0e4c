"""A blob store that refuses a write becomes a clear temporary error page, never a bare 500."""

from __future__ import annotations

from collections.abc import Callable

from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.urls import reverse
from django.utils.translation import gettext as _

from mailboxes.blobs import BlobStoreUnavailable

# How long a client is asked to wait before trying again (HTTP Retry-After).
RETRY_AFTER_SECONDS = 120


def storage_unavailable_text() -> str:
    return _(
        "Le stockage des messages est momentanément indisponible : rien n'a été enregistré "
        "ni envoyé. Réessayez dans quelques minutes."
    )


class BlobStoreMiddleware:
    """Turns ``BlobStoreUnavailable`` raised by any web view into a French 503 page."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        return self.get_response(request)

    def process_exception(self, request: HttpRequest, exception: Exception) -> HttpResponse | None:
        if not isinstance(exception, BlobStoreUnavailable):
            return None
        response = render(
            request,
            "mailboxes/storage_unavailable.html",
            {"error": storage_unavailable_text(), "back_url": reverse("home")},
            status=503,
        )
        response["Retry-After"] = str(RETRY_AFTER_SECONDS)
        return response
