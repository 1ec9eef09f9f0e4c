"""Search terms kept in the session, behind a short opaque id in the URL.

Search terms are often a patient's name or INS. In a GET query string they would
land in every access log between the browser and us (reverse proxy, load balancer,
gunicorn) and in the browser's history. So a search form is POSTed (with its CSRF
token), its terms are kept in the user's session under a random id, and the browser
is redirected (303) to a results URL that carries only that id: results stay
bookmarkable for the session, reloadable, pageable (``?page=2``) and the back
button works, while nothing of the terms leaves the server. The session ends at
logout, and only the most recent searches are kept.

Sessions are rows of the database: the terms are kept there sealed
(``mssante.lib.fieldseal``, a key derived from the master key for this use), so that a
dump of the database shows no word searched for (issue 14).
"""

from __future__ import annotations

import base64
import functools
import json
import secrets
import time
from typing import Any

from django.conf import settings
from django.http import HttpRequest, HttpResponseRedirect

from mssante.lib import crypto, fieldseal

_KEY = "saved_searches"
# The most recent searches a session keeps (older result URLs say "expired").
KEEP = 20


_LABEL = "session.saved_search"


@functools.lru_cache(maxsize=4)
def _ring(spec: str) -> crypto.KeyRing:
    return crypto.KeyRing.from_spec(spec)


def _seal(terms: dict[str, Any]) -> str:
    ring = _ring(settings.MSSANTE_MASTER_KEYS)
    sealed = fieldseal.seal_value(ring, _LABEL, json.dumps(terms, sort_keys=True))
    return base64.b64encode(sealed).decode("ascii")


def _open(item: dict[str, Any]) -> dict[str, Any] | None:
    try:
        ring = _ring(settings.MSSANTE_MASTER_KEYS)
        terms = json.loads(
            fieldseal.open_value(ring, _LABEL, base64.b64decode(str(item.get("sealed", ""))))
        )
    except (ValueError, crypto.BlobIntegrityError):
        # Altered, or sealed under a key since retired: the search has expired.
        return None
    return terms if isinstance(terms, dict) else None


def remember(request: HttpRequest, kind: str, terms: dict[str, Any]) -> str:
    """Keep ``terms`` in the session (sealed); the opaque id to put in the results URL."""
    saved: dict[str, Any] = dict(request.session.get(_KEY, {}))
    # The same search again (a second click, a reload of the POST) reuses its id.
    for search_id, item in saved.items():
        if item.get("kind") == kind and _open(item) == terms:
            item["at"] = time.time()
            request.session[_KEY] = saved
            return search_id
    search_id = secrets.token_urlsafe(9)
    saved[search_id] = {"kind": kind, "sealed": _seal(terms), "at": time.time()}
    newest = sorted(saved.items(), key=lambda pair: pair[1].get("at", 0), reverse=True)
    request.session[_KEY] = dict(newest[:KEEP])
    return search_id


def recall(request: HttpRequest, kind: str, search_id: str) -> dict[str, Any] | None:
    """The terms kept under ``search_id`` for this kind of search, or None (unknown, expired)."""
    item = request.session.get(_KEY, {}).get(search_id)
    if not isinstance(item, dict) or item.get("kind") != kind:
        return None
    return _open(item)


def see_results(url: str) -> HttpResponseRedirect:
    """303 See Other to the results: a reload or the back button never re-posts the form."""
    response = HttpResponseRedirect(url)
    response.status_code = 303
    return response
