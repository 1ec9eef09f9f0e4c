"""Attachments: streamed downloads and a sandboxed preview of harmless types."""

from __future__ import annotations

import io
import re
from typing import cast
from urllib.parse import quote

from django.http import FileResponse, Http404, HttpRequest, HttpResponse
from django.views.decorators.http import require_GET

from accounts.access import verified_required
from mailboxes import selectors, services
from mailboxes.models import Entry
from mailboxes.views import structured
from mailboxes.views._common import current_user
from mailboxes.views.messages import PREVIEWABLE, is_held
from mssante.lib import mime, xdm

# The preview document may show itself and nothing else: no script (sandbox),
# no fetch, no form, no plugin; an attacker's HTML renamed .png stays inert.
PREVIEW_CSP = "sandbox; default-src 'none'; img-src data: 'self'; style-src 'unsafe-inline'"
_ASCII_FALLBACK = re.compile(r"[^A-Za-z0-9._ -]")


def content_disposition(kind: str, filename: str) -> str:
    """RFC 6266 header: an ASCII fallback name, then the real name as UTF-8 (RFC 5987)."""
    fallback = _ASCII_FALLBACK.sub("_", filename).strip() or "piece-jointe"
    return f"{kind}; filename=\"{fallback}\"; filename*=UTF-8''{quote(filename, safe='')}"


def _part(request: HttpRequest, entry_id: int, index: int) -> tuple[Entry, mime.Attachment]:
    entry = selectors.get_entry(current_user(request), entry_id)
    if is_held(entry.message):
        # The antivirus held this message back: its files are never handed out.
        raise Http404
    try:
        return entry, mime.get_part(services.read_raw(entry.message), index)
    except mime.PartNotFoundError:
        raise Http404 from None


def _handed_out(request: HttpRequest, entry: Entry, index: int) -> None:
    # Journaled once the file really leaves (a preview hands it out as a download does);
    # a refusal (not previewable, not a package) journals nothing.
    services.record_download(entry, index, by=current_user(request))


def _stream(data: bytes, content_type: str) -> HttpResponse:
    # FileResponse sends the file in blocks rather than one body string.
    response = FileResponse(io.BytesIO(data), content_type=content_type)
    response["Content-Length"] = str(len(data))
    response["X-Content-Type-Options"] = "nosniff"
    response["Cache-Control"] = "private, no-store"
    # verified_required is typed for HttpResponse; a streamed response serves the same role.
    return cast(HttpResponse, response)


def download_response(data: bytes, filename: str) -> HttpResponse:
    """A file the browser only saves, whatever type its sender declared."""
    response = _stream(data, "application/octet-stream")
    response["Content-Disposition"] = content_disposition("attachment", filename)
    return response


def inline_response(data: bytes, content_type: str, filename: str) -> HttpResponse:
    """A file shown in the browser inside the preview sandbox (see PREVIEW_CSP)."""
    response = _stream(data, content_type)
    response["Content-Disposition"] = content_disposition("inline", filename)
    response["Content-Security-Policy"] = PREVIEW_CSP
    return response


@verified_required("professional")
@require_GET
def download_view(request: HttpRequest, entry_id: int, index: int) -> HttpResponse:
    entry, part = _part(request, entry_id, index)
    _handed_out(request, entry, index)
    return download_response(part.data, part.filename)


@verified_required("professional")
@require_GET
def source_view(request: HttpRequest, entry_id: int) -> HttpResponse:
    """The message as received (.eml), for a reader whose message cannot be shown here."""
    user = current_user(request)
    entry = selectors.get_entry(user, entry_id)
    if is_held(entry.message):
        # The antivirus held it back: its content is never handed out.
        raise Http404
    raw = services.read_raw(entry.message)
    services.record_download(entry, SOURCE_PART, by=user)
    return download_response(raw, "message.eml")


# The "part" journaled when the whole source is downloaded.
SOURCE_PART = -1


@verified_required("professional")
@require_GET
def preview_view(request: HttpRequest, entry_id: int, index: int) -> HttpResponse:
    entry, part = _part(request, entry_id, index)
    content_type = part.content_type.lower()
    if content_type not in PREVIEWABLE:
        raise Http404
    _handed_out(request, entry, index)
    data = part.data
    if content_type == "text/plain":
        # Re-encoded once here so the browser never has to guess a charset.
        text = mime.guess_decode(data)
        data = text.encode("utf-8")
        content_type = "text/plain; charset=utf-8"
    return inline_response(data, content_type, part.filename)


@verified_required("professional")
@require_GET
def structured_document_view(
    request: HttpRequest, entry_id: int, index: int, number: int
) -> HttpResponse:
    """The PDF of a structured document (IHE_XDM.ZIP), shown inline like a previewed attachment."""
    entry, part = _part(request, entry_id, index)
    if not structured.is_package(part.filename):
        raise Http404
    try:
        package = xdm.read(part.data)
    except xdm.XdmError:
        # An unsafe archive is never unpacked, not even one file of it.
        raise Http404 from None
    if not 1 <= number <= len(package.documents):
        raise Http404
    document = package.documents[number - 1]
    if document.mime_type != structured.PDF or not document.data.startswith(b"%PDF-"):
        raise Http404
    _handed_out(request, entry, index)
    return inline_response(document.data, structured.PDF, document.uri or "document.pdf")
