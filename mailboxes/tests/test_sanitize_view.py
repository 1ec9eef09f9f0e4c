"""The reading view shows mail HTML only as sanitised, inert markup."""

from __future__ import annotations

from html.parser import HTMLParser

import pytest
from django.urls import reverse

from mailboxes.models import Entry
from tests.personas import login, send

pytestmark = pytest.mark.django_db


XSS_VECTORS = {
    "script": "<script>alert('script')</script>",
    "script-mixed-case": "<ScRiPt>alert('script')</ScRiPt>",
    "onerror": "<img src=x onerror=\"alert('onerror')\">",
    "onload-body": "<body onload=\"alert('body')\">",
    "javascript-link": "<a href=\"javascript:alert('js')\">clic</a>",
    "javascript-link-obfuscated": "<a href=\"jav&#x09;ascript:alert('js')\">clic</a>",
    "javascript-entity": "<a href=\"&#106;avascript:alert('js')\">clic</a>",
    "svg-onload": "<svg onload=\"alert('svg')\"><circle r=1></circle></svg>",
    "svg-script": "<svg><script>alert('svg')</script></svg>",
    "css-expression": "<div style=\"width: expression(alert('css'))\">x</div>",
    "css-url": "<p style=\"background:url(javascript:alert('css'))\">x</p>",
    "style-tag": "<style>body{background:url('https://evil.example/t.png')}</style>",
    "meta-refresh": '<meta http-equiv="refresh" content="0;url=https://evil.example/">',
    "form": '<form action="https://evil.example/"><input name=p type=password><button>Go</button></form>',
    "iframe": '<iframe src="https://evil.example/"></iframe>',
    "object": '<object data="https://evil.example/x.swf"></object>',
    "base": '<base href="https://evil.example/">',
    "data-html-link": '<a href="data:text/html;base64,PHNjcmlwdD5hbGVydCgxKTwvc2NyaXB0Pg==">x</a>',
    "onmouseover": "<p onmouseover=\"alert('over')\">survol</p>",
    "math": "<math><mtext><table><mglyph><style><img src=x onerror=alert(1)>",
}

FORBIDDEN_TAGS = {
    "script",
    "style",
    "svg",
    "math",
    "form",
    "input",
    "button",
    "meta",
    "iframe",
    "object",
    "embed",
    "base",
    "link",
    "textarea",
    "select",
    "body",
    "html",
    "frame",
    "frameset",
}


class _BodyScanner(HTMLParser):
    """Collects the tags and attributes inside the reading view's HTML body element."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.depth = 0
        self.found_body = False
        self.tags: list[tuple[str, list[tuple[str, str | None]]]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if self.depth:
            self.tags.append((tag, attrs))
            if tag not in {"img", "br", "hr"}:
                self.depth += 1
        elif tag == "div" and "webmail-body--html" in (dict(attrs).get("class") or ""):
            self.depth = 1
            self.found_body = True

    def handle_endtag(self, tag: str) -> None:
        if self.depth and tag not in {"img", "br", "hr"}:
            self.depth -= 1


def body_markup(html: str) -> list[tuple[str, list[tuple[str, str | None]]]]:
    scanner = _BodyScanner()
    scanner.feed(html)
    assert scanner.found_body, "the HTML body is not shown"
    return scanner.tags


def read(client, entry: Entry, query: str = "") -> str:
    return client.get(reverse("webmail_read", args=[entry.pk]) + query).content.decode()


@pytest.mark.parametrize("vector", list(XSS_VECTORS.values()), ids=list(XSS_VECTORS))
def test_the_reading_view_shows_no_executable_markup(claire, julien, vector) -> None:
    (user, box), (_, nurse) = claire, julien
    message = send(nurse, [box.address], text="texte", html=f"<p>Bonjour</p>{vector}<p>Fin</p>")
    html = read(login(user), Entry.objects.get(mailbox=box, message=message))
    for tag, attrs in body_markup(html):
        assert tag not in FORBIDDEN_TAGS, tag
        for name, value in attrs:
            assert not name.startswith("on"), name
            assert name not in {"style", "srcdoc", "formaction", "class", "id"}, name
            lowered = (value or "").replace("\t", "").replace("\n", "").strip().lower()
            assert not lowered.startswith(("javascript:", "vbscript:", "data:text")), value
    # The page's own markup around the body is intact: the mail could not close it early.
    assert "<p>Bonjour</p>" in html and 'id="pied"' in html


def test_links_open_in_a_new_tab_without_referrer(claire, julien) -> None:
    (user, box), (_, nurse) = claire, julien
    message = send(nurse, [box.address], text="t", html='<a href="https://example.org/">lien</a>')
    tags = body_markup(read(login(user), Entry.objects.get(mailbox=box, message=message)))
    link = dict(next(attrs for tag, attrs in tags if tag == "a"))
    assert link["href"] == "https://example.org/"
    assert link["rel"] == "noopener noreferrer"


def test_remote_images_are_blocked_until_the_user_asks(claire, julien) -> None:
    (user, box), (_, nurse) = claire, julien
    message = send(
        nurse,
        [box.address],
        text="t",
        html='<p>Logo</p><img src="https://tracker.example/p.png" alt="logo">',
    )
    entry = Entry.objects.get(mailbox=box, message=message)
    client = login(user)
    html = read(client, entry)
    assert "tracker.example" not in html
    assert "Afficher les images distantes" in html
    shown = read(client, entry, "?images=distantes")
    # Through the portal's proxy (mailboxes.remote_images), never straight from the page.
    assert f'src="/messagerie/message/{entry.pk}/image/?u=' in shown
    assert "tracker.example" not in shown
    assert "Afficher les images distantes" not in shown


def test_a_text_body_is_escaped(claire, julien) -> None:
    (user, box), (_, nurse) = claire, julien
    message = send(nurse, [box.address], text="<script>alert('texte')</script>\nFin")
    html = read(login(user), Entry.objects.get(mailbox=box, message=message))
    assert "&lt;script&gt;alert(&#x27;texte&#x27;)&lt;/script&gt;\nFin" in html
    assert "<script>alert('texte')" not in html


def test_images_get_a_text_alternative_and_sourceless_ones_go(claire, julien) -> None:
    (user, box), (_, nurse) = claire, julien
    message = send(
        nurse,
        [box.address],
        text="t",
        html='<img src="data:image/png;base64,iVBORw0KGgo="><img src=x onerror=alert(1)>'
        '<img src="data:image/gif;base64,R0lGOD" alt="Schéma">',
    )
    tags = body_markup(read(login(user), Entry.objects.get(mailbox=box, message=message)))
    images = [dict(attrs) for tag, attrs in tags if tag == "img"]
    assert [i.get("alt") for i in images] == ["", "Schéma"]
    assert all(i.get("src") for i in images)


def test_mail_headings_sit_below_the_pages_own(claire, julien) -> None:
    (user, box), (_, nurse) = claire, julien
    message = send(
        nurse,
        [box.address],
        text="t",
        html="<h3>Début</h3><h1>Titre</h1><h5>Petit</h5><h1>Deux</h1>",
    )
    tags = body_markup(read(login(user), Entry.objects.get(mailbox=box, message=message)))
    # Below the subject's h1, in order, never skipping a level.
    assert [tag for tag, _attrs in tags] == ["h2", "h2", "h3", "h2"]
