"""Directory pages for professionals: the search page and the compose autocomplete."""

from __future__ import annotations

from django.conf import settings
from django.contrib import messages
from django.core.paginator import Paginator
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import render
from django.urls import reverse
from django.utils.translation import gettext as _
from django.views.decorators.http import require_GET, require_http_methods

from accounts.access import is_verified, verified_required
from directory import selectors
from directory.forms import SearchForm
from mssante import saved_search


@require_http_methods(["GET", "POST"])
@verified_required("professional")
def search(request: HttpRequest) -> HttpResponse:
    """The search form; a POSTed search is kept in the session and redirected to its results.

    The terms never go in a URL (access logs, history): see mssante.saved_search.
    """
    if request.method == "POST":
        form = SearchForm(request.POST)
        if form.is_valid() and not form.is_empty():
            terms = {name: value for name, value in form.cleaned_data.items() if value}
            search_id = saved_search.remember(request, "directory", terms)
            return saved_search.see_results(reverse("directory:results", args=[search_id]))
        status = 200 if form.is_valid() else 400
        return render(request, "directory/search.html", {"form": form, "page": None}, status=status)
    return render(request, "directory/search.html", {"form": SearchForm(), "page": None})


@require_GET
@verified_required("professional")
def results(request: HttpRequest, search_id: str) -> HttpResponse:
    """One page of a kept search (``?page=N``: only the page number is in the URL)."""
    terms = saved_search.recall(request, "directory", search_id)
    if terms is None:
        messages.info(
            request, _("Cette recherche a expiré (ou vient d'une autre session) : relancez-la.")
        )
        return render(
            request, "directory/search.html", {"form": SearchForm(), "page": None}, status=404
        )
    form = SearchForm(terms)
    if not form.is_valid():
        return render(request, "directory/search.html", {"form": form, "page": None}, status=400)
    entries = selectors.search(form.filters())
    page = Paginator(entries, settings.DIRECTORY_PAGE_SIZE).get_page(request.GET.get("page"))
    return render(request, "directory/search.html", {"form": form, "page": page})


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
