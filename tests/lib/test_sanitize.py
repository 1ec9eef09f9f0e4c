import re
from html.parser import HTMLParser

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mssante.lib.mime import SanitizedHtml, sanitize_html

ALLOWED_TAGS = {
    "a", "abbr", "b", "blockquote", "br", "caption", "center", "code", "div", "em", "font",
    "h1", "h2", "h3", "h4", "h5", "h6", "hr", "i", "img", "li", "ol", "p", "pre", "s", "small",
    "span", "strong", "sub", "sup", "table", "tbody", "td", "tfoot", "th", "thead", "tr", "u", "ul",
}  # fmt: skip
SAFE_URL = re.compile(
    r"(https?:|mailto:|cid:|data:image/(png|gif|jpeg|jpg|webp|bmp);base64,)", re.IGNORECASE
)


class Inspector(HTMLParser):
    """Reads the sanitiser's output as a browser would and lists what could run."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.problems: list[str] = []

    def handle_starttag(self, tag, attrs):
        if tag not in ALLOWED_TAGS:
            self.problems.append(f"tag {tag}")
        for name, value in attrs:
            if name.startswith("on") or name in {"style", "srcset", "background", "action"}:
                self.problems.append(f"attribute {name}")
            if name in {"href", "src"} and not SAFE_URL.match(value or ""):
                self.problems.append(f"url {value!r}")

    handle_startendtag = handle_starttag


def problems(html: str) -> list[str]:
    inspector = Inspector()
    inspector.feed(html)
    inspector.close()
    return inspector.problems


XSS_VECTORS = {
    "script": "<script>alert(1)</script>",
    "img onerror": '<img src="x" onerror="alert(1)">',
    "javascript link": '<a href="javascript:alert(1)">clic</a>',
    "mixed-case javascript link": '<a href="jAvAsCrIpT:alert(1)">clic</a>',
    "javascript link with a tab": '<a href=" java\tscript:alert(1)">clic</a>',
    "entity-encoded javascript link": '<a href="&#106;avascript:alert(1)">clic</a>',
    "svg onload": "<svg onload=alert(1)><circle r=1></circle></svg>",
    "css expression": '<div style="width: expression(alert(1))">texte</div>',
    "css remote background": '<p style="background:url(http://pisteur/p.gif)">texte</p>',
    "meta refresh": '<meta http-equiv="refresh" content="0;url=http://ailleurs">',
    "form and inputs": (
        '<form action="http://ailleurs"><input type="password" name="p">'
        "<textarea>x</textarea><button>OK</button></form>"
    ),
    "iframe": '<iframe src="http://ailleurs"></iframe>',
    "data url link": '<a href="data:text/html;base64,PHNjcmlwdD5hbGVydCgxKTwvc2NyaXB0Pg==">clic</a>',
    "base href": '<base href="http://ailleurs/">',
    "object": '<object data="http://ailleurs/x.swf"></object>',
    "embed": '<embed src="http://ailleurs/x.swf">',
    "vbscript link": '<a href="vbscript:msgbox(1)">clic</a>',
    "body onload": "<body onload=alert(1)>texte</body>",
    "link stylesheet": '<link rel="stylesheet" href="http://ailleurs/x.css">',
    "noscript breakout": '<noscript><p title="</noscript><img src=x onerror=alert(1)>"></noscript>',
    "math xlink": '<math><mi xlink:href="javascript:alert(1)">x</mi></math>',
    "svg data image": '<img src="data:image/svg+xml;base64,PHN2ZyBvbmxvYWQ9YWxlcnQoMSk+">',
}


@pytest.mark.parametrize("vector", XSS_VECTORS.values(), ids=XSS_VECTORS.keys())
def test_it_neutralises_each_xss_vector(vector):
    result = sanitize_html(vector, allow_remote_images=True)
    assert problems(result.html) == [], result.html
    assert "alert" not in result.html
    assert "ailleurs" not in result.html


def test_it_drops_script_and_style_content_not_just_the_tags():
    result = sanitize_html(
        "<style>p{color:red}</style><script>vol()</script>Bonjour", allow_remote_images=False
    )
    assert result.html == "Bonjour"


def test_it_keeps_ordinary_formatting():
    html = (
        "<h2>Compte rendu</h2><p>Patient <b>stable</b>, <i>à revoir</i>.</p>"
        "<ul><li>un</li></ul><blockquote>cité</blockquote>"
        '<table><tbody><tr><td colspan="2">cellule</td></tr></tbody></table>'
    )
    assert sanitize_html(html, allow_remote_images=False).html == html


def test_it_opens_links_in_a_new_tab_without_opener_or_referrer():
    result = sanitize_html('<a href="https://esante.gouv.fr/">ANS</a>', allow_remote_images=False)
    assert 'href="https://esante.gouv.fr/"' in result.html
    assert 'target="_blank"' in result.html
    assert 'rel="noopener noreferrer"' in result.html


def test_it_overrides_a_target_given_by_the_sender():
    result = sanitize_html('<a href="https://x.fr" target="_self">x</a>', allow_remote_images=False)
    assert 'target="_blank"' in result.html and "_self" not in result.html


def test_it_keeps_mailto_links_and_drops_relative_ones():
    result = sanitize_html(
        '<a href="mailto:a@ch.mssante.fr">écrire</a><a href="/logout">x</a>',
        allow_remote_images=False,
    )
    assert 'href="mailto:a@ch.mssante.fr"' in result.html
    assert "/logout" not in result.html


def test_it_blocks_remote_images_unless_allowed():
    html = '<p><img src="https://pisteur.example/p.gif" alt="logo"></p>'
    blocked = sanitize_html(html, allow_remote_images=False)
    assert blocked == SanitizedHtml(html='<p><img alt="logo"></p>', blocked_remote_images=True)
    allowed = sanitize_html(html, allow_remote_images=True)
    assert 'src="https://pisteur.example/p.gif"' in allowed.html
    assert allowed.blocked_remote_images is False


def test_it_blocks_protocol_relative_images_too():
    result = sanitize_html('<img src="//pisteur.example/p.gif">', allow_remote_images=False)
    assert "pisteur" not in result.html
    assert result.blocked_remote_images


def test_it_reports_no_blocking_when_there_is_no_remote_image():
    result = sanitize_html("<p>texte</p>", allow_remote_images=False)
    assert result.blocked_remote_images is False


def test_it_keeps_inline_images_by_content_id_or_raster_data():
    html = '<img src="cid:logo@ch.mssante.fr"><img src="data:image/png;base64,iVBORw0KGgo=">'
    result = sanitize_html(html, allow_remote_images=False)
    assert result.html == html
    assert result.blocked_remote_images is False


def test_it_drops_remote_image_carriers_other_than_src():
    html = '<table background="http://pisteur/p.gif"><tr><td>x</td></tr></table><img srcset="http://pisteur/p.gif 2x">'
    result = sanitize_html(html, allow_remote_images=False)
    assert "pisteur" not in result.html


def test_it_drops_ids_and_classes_that_could_clash_with_the_page():
    result = sanitize_html('<p id="csrf" class="fr-btn" name="x">t</p>', allow_remote_images=False)
    assert result.html == "<p>t</p>"


@settings(max_examples=200, deadline=None)
@given(
    st.lists(
        st.sampled_from(
            [
                "<a href=",
                "<img src=",
                "<svg",
                "<script>",
                "</script>",
                "javascript:",
                "java\tscript:",
                "&#106;",
                '"',
                "'",
                ">",
                "<",
                " onerror=",
                " style=",
                "<!--",
                "-->",
                "<noscript>",
                "<style>",
                "</style>",
                "alert(1)",
                "<iframe",
                "<math>",
                "<![CDATA[",
                "]]>",
            ]
        ),
        max_size=30,
    )
)
def test_fragments_of_attacks_never_come_out_executable(parts):
    result = sanitize_html("".join(parts), allow_remote_images=True)
    assert problems(result.html) == [], result.html
