"""A failure of ours that will pass (the blob store refusing a write, the database out of
reach) becomes a clear temporary error page in French (503, Retry-After), never a bare 500.

Failures in a view come here; those before the view (the session, the user loaded by a
middleware) reach ``handler500``, which tells them apart the same way (mssante.views).
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from django.http import HttpRequest, HttpResponse

from mailboxes.blobs import BlobStoreUnavailable
from mssante import errors

log = logging.getLogger(__name__)


class TemporaryFailureMiddleware:
    """Turns ``BlobStoreUnavailable`` and an unreachable database into a French 503 page."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        return self.get_response(request)

    def process_exception(self, request: HttpRequest, exception: Exception) -> HttpResponse | None:
        if isinstance(exception, BlobStoreUnavailable):
            log.warning("blob store unavailable on %s", request.path)
            return errors.temporarily_unavailable(request, errors.storage_unavailable_text())
        if isinstance(exception, errors.DATABASE_UNAVAILABLE):
            log.error("database unavailable on %s", request.path, exc_info=exception)
            return errors.temporarily_unavailable(request, errors.database_unavailable_text())
        return None
