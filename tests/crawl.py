"""Walk the pages a persona can reach and collect their forms (for the hostile-input tests)."""

from __future__ import annotations

from dataclasses import dataclass, field
from html.parser import HTMLParser
from typing import Any
from urllib.parse import urljoin, urlsplit

from django.test import Client

# Pages whose forms end the persona's session.
SKIPPED_ACTIONS = ("/deconnexion/", "/admin/logout/", "/compte/sessions/")
SKIPPED_LINKS = ("/static/", "/deconnexion/", "/admin/logout/", "/api/", "/fhir/")


@dataclass
class Form:
    page: str
    method: str
    action: str
    enctype: str
    fields: list[tuple[str, str, str]] = field(default_factory=list)  # (name, type, value)
    selects: dict[str, list[str]] = field(default_factory=dict)

    def key(self) -> tuple[str, str, tuple[str, ...]]:
        return (self.method, shape(self.action), tuple(sorted({f[0] for f in self.fields})))


def shape(path: str) -> str:
    """/messagerie/message/12/ → /messagerie/message/N/: one form per kind of page."""
    return "/".join("N" if part.isdigit() else part for part in path.split("?")[0].split("/"))


class _Page(HTMLParser):
    def __init__(self, url: str) -> None:
        super().__init__()
        self.url = url
        self.links: list[str] = []
        self.forms: list[Form] = []
        self._form: Form | None = None
        self._select: str | None = None
        self._textarea: str | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = {k: v or "" for k, v in attrs}
        if tag == "a" and a.get("href"):
            self.links.append(urljoin(self.url, a["href"]))
        elif tag == "form":
            self._form = Form(
                page=self.url,
                method=(a.get("method") or "get").lower(),
                action=urljoin(self.url, a.get("action") or self.url),
                enctype=a.get("enctype") or "application/x-www-form-urlencoded",
            )
            self.forms.append(self._form)
            if a.get("hx-post"):
                # htmx posts the same fields elsewhere (the draft's autosave).
                self.forms.append(
                    Form(
                        page=self.url,
                        method="post",
                        action=urljoin(self.url, a["hx-post"]),
                        enctype=self._form.enctype,
                        fields=self._form.fields,
                        selects=self._form.selects,
                    )
                )
        elif self._form is not None and a.get("name"):
            name = a["name"]
            if tag == "input":
                kind = (a.get("type") or "text").lower()
                if kind == "radio":
                    self._form.selects.setdefault(name, []).append(a.get("value", "on"))
                elif kind != "checkbox" or "checked" in a:
                    default = "on" if kind == "checkbox" else ""
                    self._form.fields.append((name, kind, a.get("value", default)))
            elif tag == "button" and a.get("value"):
                self._form.fields.append((name, "button", a["value"]))
            elif tag == "textarea":
                self._textarea = name
                self._form.fields.append((name, "textarea", ""))
            elif tag == "select":
                self._select = name
                self._form.fields.append((name, "select", ""))
                self._form.selects.setdefault(name, [])
        elif tag == "option" and self._form is not None and self._select:
            self._form.selects[self._select].append(a.get("value", ""))

    def handle_endtag(self, tag: str) -> None:
        if tag == "form":
            self._form = None
        elif tag == "select":
            self._select = None
        elif tag == "textarea":
            self._textarea = None


@dataclass
class Site:
    """What a crawl found: the forms, and the pages (path with query) visited."""

    forms: list[Form]
    pages: list[str]


def crawl(client: Client, start: list[str], limit: int) -> Site:
    """The forms of the pages reachable from ``start`` (same site, GET, at most ``limit``)."""
    seen: set[str] = set()
    queue = list(start)
    forms: dict[Any, Form] = {}
    while queue and len(seen) < limit:
        url = queue.pop(0)
        parts = urlsplit(url)
        path = parts.path + (f"?{parts.query}" if parts.query else "")
        if parts.netloc not in ("", "testserver") or path in seen:
            continue
        if path.startswith(SKIPPED_LINKS) or "/pj/" in path:
            continue
        seen.add(path)
        response = client.get(path)
        assert response.status_code < 500, (path, response.status_code)
        if response.status_code in (301, 302):
            queue.append(urljoin(path, response["Location"]))
            continue
        if not response["Content-Type"].startswith("text/html"):
            continue
        page = _Page(path)
        page.feed(response.content.decode())
        for form in page.forms:
            forms.setdefault(form.key(), form)
        # Same kind of page once (one message, one folder, one admin object of each kind).
        shapes = {shape(p) for p in seen}
        for link in page.links:
            target = urlsplit(link)
            if shape(target.path) not in shapes or target.path == urlsplit(url).path:
                queue.append(link)
    return Site(
        forms=[
            f for f in forms.values() if not urlsplit(f.action).path.startswith(SKIPPED_ACTIONS)
        ],
        pages=sorted(seen),
    )
