"""Showing mail safely: HTML sanitised with nh3, sizes in French.

Split from ``mssante.lib.mime`` (which re-exports these names) so that parsing
and display stay two readable modules.

Sanitising is bounded: the HTML5 tree builder (html5ever, under nh3) checks
its stack of open elements on most tags, so deeply nested markup costs the
square of its depth (100,000 nested ``<div>`` took 23 s). Start tags nested
deeper than ``MAX_NESTING`` are dropped before nh3 sees them, and callers show
no HTML past ``MAX_HTML_CHARS`` (``html_too_large``).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Final

import nh3

__all__ = [
    "MAX_HTML_CHARS",
    "MAX_NESTING",
    "SanitizedHtml",
    "html_too_large",
    "human_size",
    "sanitize_html",
]

# Past this, a message's HTML is not shown (its text alternative is, or a notice):
# about a second of sanitising on a loaded 2-core machine.
MAX_HTML_CHARS: Final = 2_000_000
# Deeper start tags are dropped; real mail (nested layout tables) stays under 50.
MAX_NESTING: Final = 200


@dataclass(frozen=True, slots=True)
class SanitizedHtml:
    """Sanitised HTML and whether remote images were removed from it."""

    html: str
    blocked_remote_images: bool


_ALLOWED_TAGS: Final = frozenset(
    {
        "a",
        "abbr",
        "b",
        "blockquote",
        "br",
        "caption",
        "center",
        "code",
        "div",
        "em",
        "font",
        "h1",
        "h2",
        "h3",
        "h4",
        "h5",
        "h6",
        "hr",
        "i",
        "img",
        "li",
        "ol",
        "p",
        "pre",
        "s",
        "small",
        "span",
        "strong",
        "sub",
        "sup",
        "table",
        "tbody",
        "td",
        "tfoot",
        "th",
        "thead",
        "tr",
        "u",
        "ul",
    }
)
# Removed with their content: what they hold is code or page metadata, never text
# meant for the reader.
_DROPPED_WITH_CONTENT: Final = frozenset(
    {"script", "style", "title", "template", "iframe", "object", "embed", "svg", "math"}
)
# No style (CSS can fetch URLs and overlay the page), no class/id (page CSS and
# DOM clobbering), no background (a remote image the blocker would miss).
_CELL_ATTRIBUTES: Final = frozenset(
    {"colspan", "rowspan", "align", "valign", "width", "height", "bgcolor"}
)
_ALLOWED_ATTRIBUTES: Final = {
    "*": {"title", "dir", "lang"},
    "a": {"href"},
    "img": {"src", "alt", "width", "height"},
    "td": set(_CELL_ATTRIBUTES),
    "th": set(_CELL_ATTRIBUTES),
    "tr": {"align", "valign", "bgcolor"},
    "table": {"width", "border", "cellpadding", "cellspacing", "align", "bgcolor"},
    "p": {"align"},
    "div": {"align"},
    "font": {"color", "face", "size"},
    "ol": {"start", "type"},
}
_LINK_SCHEMES: Final = frozenset({"http", "https", "mailto"})
_REMOTE_SCHEMES: Final = frozenset({"http", "https"})
_INLINE_IMAGE_RE: Final = re.compile(
    r"data:image/(png|gif|jpeg|jpg|webp|bmp);base64,[a-z0-9+/=\s]*"
)
_SCHEME_RE: Final = re.compile(r"([a-z][a-z0-9+.-]*):")
_URL_NOISE_RE: Final = re.compile(r"[\t\n\r]")
_URL_EDGE_RE: Final = re.compile(r"^[\x00-\x20]+|[\x00-\x20]+$")


def _normalised_url(value: str) -> tuple[str, str | None]:
    """(URL as a browser reads it, its lower-case scheme or None when relative)."""
    # Browsers drop tabs and newlines anywhere in a URL and control characters
    # or spaces around it: "java\tscript:" is javascript:.
    url = _URL_EDGE_RE.sub("", _URL_NOISE_RE.sub("", value))
    if url.startswith("//"):
        return url, "//"
    match = _SCHEME_RE.match(url.lower())
    return url, match.group(1) if match else None


# Every start tag html5ever could see (and some it would not: inside comments,
# attribute values or scripts), so the depth below is never underestimated.
_TAG_RE: Final = re.compile(r"<(/?)([a-zA-Z][^\s/>]*+)[^>]*+>?")
_VOID_TAGS: Final = frozenset(
    {
        "area",
        "base",
        "br",
        "col",
        "embed",
        "hr",
        "img",
        "input",
        "keygen",
        "link",
        "meta",
        "param",
        "source",
        "track",
        "wbr",
    }
)
# Elements whose end tag HTML lets authors omit (tables and lists written the
# old way): a new sibling or the parent's end closes them, as the tree builder does.
_OPTIONAL_END: Final = frozenset(
    {"p", "li", "dt", "dd", "td", "th", "tr", "thead", "tbody", "tfoot", "option", "colgroup"}
)
_CLOSED_BY: Final = {
    "li": frozenset({"li", "p"}),
    "dt": frozenset({"dt", "dd", "p"}),
    "dd": frozenset({"dt", "dd", "p"}),
    "td": frozenset({"td", "th"}),
    "th": frozenset({"td", "th"}),
    "tr": frozenset({"td", "th", "tr"}),
    "thead": frozenset({"td", "th", "tr", "thead", "tbody", "tfoot"}),
    "tbody": frozenset({"td", "th", "tr", "thead", "tbody", "tfoot"}),
    "tfoot": frozenset({"td", "th", "tr", "thead", "tbody", "tfoot"}),
    "option": frozenset({"option"}),
    # A new link closes the open one (the adoption agency, in HTML's terms).
    "a": frozenset({"a"}),
}
_P_CLOSERS: Final = frozenset(
    {"p", "div", "table", "ul", "ol", "dl", "blockquote", "pre", "h1", "h2", "h3", "h4"}
    | {"h5", "h6", "hr", "center", "address", "section", "article", "header", "footer"}
)
# Below this many "<", the nesting cannot cost anything worth a pass.
_NESTING_CHECK_FROM: Final = 2 * MAX_NESTING


def html_too_large(html: str) -> bool:
    """True when ``html`` is too big to be sanitised and shown within the time bound."""
    return len(html) > MAX_HTML_CHARS


def _bounded_nesting(html: str, max_depth: int = MAX_NESTING) -> str:
    """``html`` without the start tags nested deeper than ``max_depth`` (linear time).

    An end tag closes the innermost open element of its name only when nothing
    but elements with optional end tags lies above it, and a start tag closes
    only the open element on top that it implicitly ends: the tree builder
    closes at least as much, so the depth counted here is never below its own.
    """
    if html.count("<") < _NESTING_CHECK_FROM:
        return html
    out: list[str] = []
    stack: list[str] = []
    start = 0
    for match in _TAG_RE.finditer(html):
        name = match.group(2).lower()
        if match.group(1):
            i = len(stack) - 1
            while i >= 0 and stack[i] != name and stack[i] in _OPTIONAL_END:
                i -= 1
            if i >= 0 and stack[i] == name:
                del stack[i:]
            continue
        closed = _CLOSED_BY.get(name, frozenset({"p"}) if name in _P_CLOSERS else frozenset())
        while stack and stack[-1] in closed:
            stack.pop()
        if name in _VOID_TAGS:
            continue
        if len(stack) >= max_depth:
            out.append(html[start : match.start()])
            start = match.end()
            continue
        stack.append(name)
    if not out:
        return html
    out.append(html[start:])
    return "".join(out)


def sanitize_html(
    html: str,
    *,
    allow_remote_images: bool,
    remote_image_url: Callable[[str], str | None] | None = None,
) -> SanitizedHtml:
    """Reduce untrusted mail HTML to safe formatting; remote images only when allowed.

    ``remote_image_url`` maps an allowed remote image's URL to the one the page
    uses (the portal's image proxy), or to None to drop it.
    """
    blocked = False

    def keep(tag: str, attribute: str, value: str) -> str | None:
        nonlocal blocked
        if attribute not in {"href", "src"}:
            return value
        url, scheme = _normalised_url(value)
        if tag == "a":
            # Relative links would point into the webmail itself.
            return url if scheme in _LINK_SCHEMES else None
        if tag != "img":
            return None
        if scheme in _REMOTE_SCHEMES or scheme == "//":
            if not allow_remote_images:
                # A remote image tells the sender when and where the mail is read.
                blocked = True
                return None
            absolute = "https:" + url if scheme == "//" else url
            return remote_image_url(absolute) if remote_image_url is not None else absolute
        if scheme == "cid":
            return url
        if scheme == "data" and _INLINE_IMAGE_RE.fullmatch(url.lower()):
            # Raster formats only: an SVG could carry script.
            return url
        return None

    cleaned = nh3.clean(
        _bounded_nesting(html),
        tags=set(_ALLOWED_TAGS),
        clean_content_tags=set(_DROPPED_WITH_CONTENT),
        attributes={tag: set(names) for tag, names in _ALLOWED_ATTRIBUTES.items()},
        attribute_filter=keep,
        strip_comments=True,
        link_rel="noopener noreferrer",
        set_tag_attribute_values={"a": {"target": "_blank"}},
        url_schemes={"http", "https", "mailto", "cid", "data"},
    )
    return SanitizedHtml(html=cleaned, blocked_remote_images=blocked)


_SIZE_UNITS: Final = ("ko", "Mo", "Go", "To")


def human_size(n: int) -> str:
    """Size in French units, decimal as in "12,3 ko" or "1,2 Mo" (1 ko = 1000 octets)."""
    # Decimal units: "ko" is the SI kilo-octet, as macOS and the ANS documents count.
    if n < 0:
        raise ValueError("a size cannot be negative")
    if n < 1000:
        return f"{n} o"
    value = float(n)
    for unit in _SIZE_UNITS:
        value /= 1000
        rounded = round(value, 1) if value < 100 else round(value)
        if rounded < 1000 or unit == _SIZE_UNITS[-1]:
            text = f"{rounded:.1f}" if value < 100 else f"{rounded:.0f}"
            return text.removesuffix(".0").replace(".", ",") + f" {unit}"
    raise AssertionError("unreachable")
