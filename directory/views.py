"""Directory pages for professionals: the search page and the compose autocomplete."""

from __future__ import annotations

from django.conf import settings
from django.core.paginator import Paginator
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import render
from django.utils.translation import gettext as _
from django.views.decorators.http import require_GET

from directory import selectors
from directory.forms import SearchForm
from mssante.access import is_verified, verified_required


@require_GET
@verified_required("professional")
def search(request: HttpRequest) -> HttpResponse:
    """Search the directory by name or address, with filters."""
    form = SearchForm(request.GET or None)
    page = None
    if form.is_bound and form.is_valid() and not form.is_empty():
        entries = selectors.search(form.filters())
        page = Paginator(entries, settings.DIRECTORY_PAGE_SIZE).get_page(request.GET.get("page"))
    query = request.GET.copy()
    query.pop("page", None)
    return render(
        request,
        "directory/search.html",
        {"form": form, "page": page, "query": query.urlencode()},
    )


@require_GET
def autocomplete(request: HttpRequest) -> JsonResponse:
    """Suggestions for a recipient field: a JSON list of {address, name, profession, city, type}."""
    # Answered in JSON rather than with the login redirect of verified_required:
    # the caller is a script that cannot follow a redirect to an HTML page.
    if not is_verified(request.user):
        return JsonResponse({"error": _("Connexion requise.")}, status=401)
    if getattr(request.user, "kind", None) != "professional":
        return JsonResponse({"error": _("Accès réservé aux professionnels.")}, status=403)
    query = request.GET.get("q", "")[:100]
    response = JsonResponse(selectors.autocomplete(query), safe=False)
    response["Cache-Control"] = "private, max-age=60"
    return response
