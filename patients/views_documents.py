"""Mes documents (/patient/documents/): list, search, preview, download, hide, add.

Every id in a URL is resolved inside the acting patient's own documents (404 otherwise);
every write is a POST (CSRF) calling one service, which journals it.
"""

from __future__ import annotations

import logging

from django.contrib import messages
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.translation import gettext as _
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from accounts.access import current_user, verified_required
from mailboxes.views.attachments import download_response, inline_response
from mailboxes.views.messages import PREVIEWABLE
from mailboxes.views.structured import CDA_TYPES
from mssante.lib import xdm
from patients import selectors
from patients import selectors_documents as documents_selectors
from patients import services_documents as documents_services
from patients.access import acting_patient
from patients.forms_documents import AddDocumentForm
from patients.models_documents import PatientDocument

log = logging.getLogger(__name__)


def _previewable(document: PatientDocument) -> bool:
    return document.content_type in PREVIEWABLE and document.content_type != "text/plain"


def _readable(document: PatientDocument) -> bool:
    return document.content_type in CDA_TYPES and document.package_number > 0


def _page(
    request: HttpRequest, template: str, context: dict[str, object], **kwargs: object
) -> HttpResponse:
    patient = acting_patient(request)
    box = selectors.patient_box(patient)
    full = {
        "box": box,
        "unread_total": selectors.unread_count(box) if box else 0,
        "nav": "documents",
        **context,
    }
    return render(request, template, full, **kwargs)  # type: ignore[arg-type]


@verified_required("patient")
@require_GET
def documents_view(request: HttpRequest) -> HttpResponse:
    """The documents, newest first, by type, searchable; the hidden ones on their own."""
    patient = acting_patient(request)
    box = selectors.patient_box(patient)
    if box is not None:
        # Whatever the delivery task has not filed yet (or what came before it existed).
        try:
            documents_services.file_received_documents(box.pk)
        except Exception:
            # The blob store unreachable, say: the list shows what is filed already, and
            # the next visit (or the next delivery's task) files the rest.
            log.exception("filing the documents of box %s failed", box.pk)
    family = request.GET.get("type", "")
    if family not in PatientDocument.Family.values:
        family = ""
    query = request.GET.get("q", "")[:200]
    hidden = request.GET.get("masques") == "1"
    listing = documents_selectors.documents(patient, family=family, query=query, hidden=hidden)
    families = [
        {"value": value, "label": label, "count": listing.counts.get(value, 0)}
        for value, label in PatientDocument.Family.choices
    ]
    rows = [
        {"doc": d, "previewable": _previewable(d), "readable": _readable(d)}
        for d in listing.documents
    ]
    return _page(
        request,
        "patients/documents.html",
        {
            "rows": rows,
            "families": families,
            "family": family,
            "query": query,
            "hidden": hidden,
            "hidden_count": listing.hidden_count,
            "total": sum(listing.counts.values()),
        },
    )


def _file(request: HttpRequest, document_id: int) -> documents_services.DocumentFile:
    document = documents_selectors.get_document(acting_patient(request), document_id)
    try:
        return documents_services.read_document(document)
    except documents_services.DocumentUnavailable:
        raise Http404 from None


@verified_required("patient")
@require_GET
def download_view(request: HttpRequest, document_id: int) -> HttpResponse:
    found = _file(request, document_id)
    return download_response(found.data, found.filename)


@verified_required("patient")
@require_GET
def preview_view(request: HttpRequest, document_id: int) -> HttpResponse:
    """PDF and images in the browser, inside the webmail's preview sandbox."""
    document = documents_selectors.get_document(acting_patient(request), document_id)
    if not _previewable(document):
        raise Http404
    found = _file(request, document_id)
    content_type = found.content_type
    if content_type == "application/pdf" and not found.data.startswith(b"%PDF-"):
        raise Http404
    if content_type != document.content_type:
        raise Http404
    return inline_response(found.data, content_type, found.filename)


@verified_required("patient")
@require_GET
def read_view(request: HttpRequest, document_id: int) -> HttpResponse:
    """A structured (CDA) document's text, shown as text in the page."""
    document = documents_selectors.get_document(acting_patient(request), document_id)
    if not _readable(document):
        raise Http404
    found = _file(request, document_id)
    return _page(
        request,
        "patients/document_read.html",
        {"doc": document, "text": xdm.cda_text(found.data)},
    )


@verified_required("patient")
@require_POST
def hide_view(request: HttpRequest, document_id: int) -> HttpResponse:
    return _set_hidden(request, document_id, hidden=True)


@verified_required("patient")
@require_POST
def show_view(request: HttpRequest, document_id: int) -> HttpResponse:
    return _set_hidden(request, document_id, hidden=False)


def _set_hidden(request: HttpRequest, document_id: int, *, hidden: bool) -> HttpResponse:
    patient = acting_patient(request)
    document = documents_selectors.get_document(patient, document_id)
    documents_services.set_hidden(document, hidden, by=current_user(request), request=request)
    if hidden:
        messages.success(
            request,
            _("Le document est masqué. Vous le retrouvez sous « Documents masqués »."),
        )
        return redirect(reverse("patients:documents"))
    messages.success(request, _("Le document est de nouveau affiché dans vos documents."))
    return redirect(reverse("patients:documents") + "?masques=1")


@verified_required("patient")
@require_http_methods(["GET", "POST"])
def add_view(request: HttpRequest) -> HttpResponse:
    """Add a document of one's own: the attachment policy and the antivirus apply."""
    patient = acting_patient(request)
    form = AddDocumentForm(request.POST or None, request.FILES or None)
    error = ""
    if request.method == "POST" and form.is_valid():
        upload = form.cleaned_data["file"]
        try:
            # Refused on its announced size before its bytes are read.
            documents_services.check_upload_size(upload.name or "", upload.size or 0)
            document = documents_services.add_document(
                patient,
                documents_services.Upload(
                    filename=upload.name or "",
                    data=upload.read(),
                    family=form.cleaned_data["family"],
                    title=form.cleaned_data["title"],
                    document_date=form.cleaned_data["document_date"],
                ),
                by=current_user(request),
                request=request,
            )
        except documents_services.DocumentError as exc:
            error = str(exc)
        else:
            messages.success(
                request,
                _("« %(title)s » est ajouté à vos documents.") % {"title": document.title},
            )
            return redirect(reverse("patients:documents"))
    return _page(
        request,
        "patients/document_add.html",
        {"form": form, "error": error},
        status=400 if request.method == "POST" else 200,
    )
