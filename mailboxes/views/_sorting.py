"""What the message list needs for sorting, selecting and hearing of new mail."""

from __future__ import annotations

from typing import Any

from django.http import HttpRequest
from django.urls import reverse
from django.utils.http import urlencode
from django.utils.translation import gettext as _

from mailboxes import listing
from mailboxes.models import Entry, Folder


def _columns() -> list[tuple[str, str]]:
    return [
        # No "Objet": subjects are sealed at rest (mailboxes.listing.SORTS).
        ("correspondant", _("Correspondant")),
        ("date", _("Date")),
        ("taille", _("Taille")),
    ]


def triage_context(
    request: HttpRequest,
    folder: Folder,
    sort: listing.Sort,
    entries: list[Entry],
    page: int,
    more: bool,
) -> dict[str, Any]:
    """Sort links (with ``aria-sort``), numbered pages, the new-mail probe, "tout sélectionner"."""
    base = reverse("webmail_folder", args=[folder.pk])
    columns = {}
    for key, label in _columns():
        current = sort.column == key
        # A click on the current column turns its order round; on another, its own order.
        order = ("asc" if sort.order == "desc" else "desc") if current else listing.SORTS[key]
        target = listing.Sort.of(key, order)
        query: dict[str, str] = {} if target.is_default else {"tri": key, "ordre": order}
        columns[key] = {
            "label": label,
            "href": f"{base}?{urlencode(query)}" if query else base,
            "aria_sort": (
                ("ascending" if sort.order == "asc" else "descending") if current else ""
            ),
        }
    sorted_query: dict[str, str | int] = (
        {} if sort.is_default else {"tri": sort.column, "ordre": sort.order}
    )
    # The newest row shown (an empty folder: from the beginning of time).
    probe = sort.is_default and not request.GET.get("avant")
    since = listing.cursor_of(entries[0]) if entries else "0-0"
    return {
        "sort": sort,
        "sort_columns": columns,
        "sortable": True,
        "selectable": True,
        "select_all": request.GET.get("tout") == "1",
        "select_all_url": f"{base}?{urlencode({**sorted_query, 'tout': '1'})}",
        "page_number": page,
        "prev_page_url": (
            f"{base}?{urlencode({**sorted_query, 'page': page - 1})}"
            if not sort.is_default and page > 1
            else ""
        ),
        "next_page_url": (
            f"{base}?{urlencode({**sorted_query, 'page': page + 1})}"
            if not sort.is_default and more
            else ""
        ),
        "new_mail_url": (
            f"{reverse('webmail_new_mail', args=[folder.pk])}?{urlencode({'depuis': since})}"
            if probe
            else ""
        ),
        "back": list_url(request),
    }


def list_url(request: HttpRequest) -> str:
    """This list's URL to come back to after an action, without "tout sélectionner"."""
    query = request.GET.copy()
    query.pop("tout", None)
    return f"{request.path}?{query.urlencode()}" if query else request.path
