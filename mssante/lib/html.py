"""Showing mail safely: HTML sanitised with nh3, sizes in French.

Split from ``mssante.lib.mime`` (which re-exports these names) so that parsing
and display stay two readable modules.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Final

import nh3

__all__ = ["SanitizedHtml", "human_size", "sanitize_html"]


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


def sanitize_html(html: str, *, allow_remote_images: bool) -> SanitizedHtml:
    """Reduce untrusted mail HTML to safe formatting; remote images only when allowed."""
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
            return "https:" + url if scheme == "//" else url
        if scheme == "cid":
            return url
        if scheme == "data" and _INLINE_IMAGE_RE.fullmatch(url.lower()):
            # Raster formats only: an SVG could carry script.
            return url
        return None

    cleaned = nh3.clean(
        html,
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
