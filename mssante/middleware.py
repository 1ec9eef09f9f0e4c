"""Middleware of the portal: refuse unreadable input early, and the security headers.

RequestGuardMiddleware stops, before any view or database, a request whose path,
query string or form fields hold a NUL character: PostgreSQL refuses NUL in text,
so such a value would otherwise surface as a 500 wherever a view hands it to a query
(the directory autocomplete did). Form-encoded bodies are decoded by Django with
replacement characters, so a lone surrogate cannot come this way; JSON bodies are
the API's (mailboxes.api checks them with the same rules).

SecurityHeadersMiddleware adds the Content-Security-Policy (settings.CSP) and
``Cache-Control: no-store`` to every page the portal renders (static files are
served earlier by WhiteNoise and keep their caching): pages show health data, and
a shared computer's cache must not keep them.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

from django.conf import settings
from django.core.exceptions import (
    RequestDataTooBig,
    SuspiciousOperation,
    TooManyFieldsSent,
    TooManyFilesSent,
)
from django.http import HttpRequest, HttpResponse, UnreadablePostError
from django.http.multipartparser import MultiPartParserError
from django.utils.translation import gettext as _

from mssante import errors
from mssante.lib import untrusted

# Longest query string read (nginx refuses a request line over 8 kB by default): a huge
# search term would otherwise reach the database as a pattern (SQLite refuses LIKE
# patterns over 50 kB with an error, PostgreSQL spends time on it).
MAX_QUERY_STRING = 8192
# The API answers its own refusals in JSON, with the field named.
_OWN_CHECKS = ("/api/",)


def content_security_policy(**overrides: str) -> str:
    """settings.CSP as a header value, with some directives replaced (``img_src=...``)."""
    directives = dict(settings.CSP)
    for name, value in overrides.items():
        directives[name.replace("_", "-")] = value
    return "; ".join(f"{name} {value}".strip() for name, value in directives.items())


class _Refused(Exception):
    pass


class RequestGuardMiddleware:
    """A NUL character in the path, the query string or a form field: 400, in French."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        if request.path_info.startswith(_OWN_CHECKS):
            return self.get_response(request)
        if len(request.META.get("QUERY_STRING", "")) > MAX_QUERY_STRING:
            return errors.error_response(
                request,
                414,
                reason=_(
                    "Adresse trop longue : au plus %(limit)d caractères de paramètres. "
                    "Raccourcissez la recherche."
                )
                % {"limit": MAX_QUERY_STRING},
            )
        try:
            field = self._faulty_field(request)
        except _Refused as refusal:
            return self._refuse(request, str(refusal))
        if field is not None:
            return self._refuse(
                request,
                _(
                    "Saisie refusée : le champ « %(field)s » contient un caractère interdit "
                    "(caractère nul). Corrigez la saisie puis réessayez."
                )
                % {"field": field},
            )
        return self.get_response(request)

    def _faulty_field(self, request: HttpRequest) -> str | None:
        if untrusted.text_fault(request.path_info):
            return _("adresse de la page")
        sources: list[Mapping[str, list[str]]] = [dict(request.GET.lists())]
        if request.method == "POST" and request.content_type in (
            "application/x-www-form-urlencoded",
            "multipart/form-data",
        ):
            # Read here once: a body Django cannot parse is refused here with a reason,
            # rather than reaching the view as an empty form (a CSRF failure, or worse).
            try:
                sources.append(dict(request.POST.lists()))
            except (RequestDataTooBig, TooManyFieldsSent, TooManyFilesSent):
                raise _Refused(
                    _(
                        "Envoi refusé : formulaire trop volumineux ou avec trop de champs. "
                        "Pour un fichier, utilisez le bouton d'ajout de pièces jointes."
                    )
                ) from None
            except (MultiPartParserError, SuspiciousOperation, UnreadablePostError):
                raise _Refused(
                    _("Envoi refusé : le formulaire reçu est illisible. Rechargez la page.")
                ) from None
        for source in sources:
            for key, values in source.items():
                for text in (key, *values):
                    if isinstance(text, str) and untrusted.text_fault(text):
                        return key.replace("\x00", "")[:60] or "?"
        return None

    def _refuse(self, request: HttpRequest, message: str) -> HttpResponse:
        return errors.error_response(request, 400, reason=message)


class SecurityHeadersMiddleware:
    """Content-Security-Policy and Cache-Control: no-store on every dynamic response."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response
        self.policy = content_security_policy()

    def __call__(self, request: HttpRequest) -> HttpResponse:
        response = self.get_response(request)
        if (
            response.status_code == 405
            and not response.content
            and not request.path_info.startswith(_OWN_CHECKS)
        ):
            # require_POST and friends answer an empty body: a blank page for a person.
            page = errors.error_response(request, 405)
            page["Allow"] = response.get("Allow", "")
            response = page
        # A view that serves a document of its own (the sandboxed attachment preview)
        # sets its own policy: keep it.
        response.headers.setdefault("Content-Security-Policy", self.policy)
        if "Cache-Control" not in response.headers:
            response.headers["Cache-Control"] = "private, no-store"
        return response
