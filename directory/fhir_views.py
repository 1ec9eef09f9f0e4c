"""Read-only FHIR R4 search endpoints: /fhir/Practitioner, /PractitionerRole, /Organization."""

from __future__ import annotations

import json
from typing import Any

from django.conf import settings
from django.http import HttpRequest, HttpResponse
from django.utils.http import urlencode
from django.views.decorators.http import require_GET

from accounts.access import is_verified
from directory import fhir

CONTENT_TYPE = "application/fhir+json; charset=utf-8"
SEARCH_PARAMS = ("name", "identifier", "mailbox-mss", "_count", "_offset")


def _respond(payload: dict[str, Any], status: int = 200) -> HttpResponse:
    return HttpResponse(
        json.dumps(payload, ensure_ascii=False), content_type=CONTENT_TYPE, status=status
    )


def _search(request: HttpRequest, resource_type: str) -> HttpResponse:
    # Public by default, like the national directory it mirrors (see
    # docs/decisions.md); an operator may require a logged-in user.
    if not settings.DIRECTORY_FHIR_PUBLIC and not is_verified(request.user):
        return _respond(fhir.operation_outcome("login", "Authentification requise."), 401)
    params = {k: request.GET[k] for k in SEARCH_PARAMS if request.GET.get(k)}
    total, resources = fhir.search(resource_type, params)
    base = request.build_absolute_uri("/fhir").rstrip("/")
    self_url = f"{base}/{resource_type}?{urlencode(params)}".rstrip("?")
    count = fhir.bounded(params.get("_count"), fhir.DEFAULT_COUNT, 1, fhir.MAX_COUNT)
    offset = fhir.bounded(params.get("_offset"), 0, 0, 10_000)
    next_url = None
    if offset + count < total:
        following = {**params, "_offset": str(offset + count)}
        next_url = f"{base}/{resource_type}?{urlencode(following)}"
    return _respond(fhir.bundle(total, resources, base, self_url, next_url))


@require_GET
def practitioner(request: HttpRequest) -> HttpResponse:
    """Search Practitioner (one per professional, with all their MSSanté addresses)."""
    return _search(request, "Practitioner")


@require_GET
def practitioner_role(request: HttpRequest) -> HttpResponse:
    """Search PractitionerRole (one per personal mailbox)."""
    return _search(request, "PractitionerRole")


@require_GET
def organization(request: HttpRequest) -> HttpResponse:
    """Search Organization (structures with organisational or applicative mailboxes)."""
    return _search(request, "Organization")
