"""Contacts: favourites, recent correspondents, patients exchanged with; "Écrire à"."""

from __future__ import annotations

from django.contrib import messages
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.translation import gettext as _
from django.views.decorators.http import require_GET, require_POST

from accounts.access import is_verified, verified_required
from mailboxes import preferences_selectors as prefs
from mailboxes import selectors, services
from mailboxes.models import Mailbox
from mailboxes.services.contacts import clean_address, star_contact, unstar_contact
from mailboxes.views._common import current_user, render_webmail


@verified_required("professional")
@require_GET
def contacts_view(request: HttpRequest) -> HttpResponse:
    """The contacts page: favourites, recent correspondents, patients found by name."""
    user = current_user(request)
    mailbox = selectors.default_mailbox(user)
    if mailbox is None:
        return render(request, "mailboxes/home.html")
    query = request.GET.get("patient", "")[:100]
    patients = prefs.known_patients(user, query)
    addresses = prefs.patient_addresses(patients)
    return render_webmail(
        request,
        "mailboxes/contacts.html",
        mailbox,
        {
            "favourites": prefs.favourites(user),
            "recent": prefs.recent_correspondents(user),
            "patients": [(p, addresses.get(p.pk, "")) for p in patients],
            "patient_query": query,
            "contacts_page": True,
        },
    )


def _back(request: HttpRequest) -> HttpResponse:
    return redirect(reverse("webmail_contacts"))


@verified_required("professional")
@require_POST
def contact_star_view(request: HttpRequest) -> HttpResponse:
    """Star a correspondent."""
    try:
        star_contact(
            current_user(request),
            request.POST.get("address", "")[:300],
            name=request.POST.get("name", "")[:200],
        )
    except services.PreferencesError as exc:
        messages.error(request, str(exc))
        return _back(request)
    messages.success(request, _("Ajouté aux favoris."))
    return _back(request)


@verified_required("professional")
@require_POST
def contact_unstar_view(request: HttpRequest) -> HttpResponse:
    """Remove a correspondent from the favourites."""
    unstar_contact(current_user(request), request.POST.get("address", "")[:300])
    messages.success(request, _("Retiré des favoris."))
    return _back(request)


@verified_required("professional")
@require_POST
def write_to_view(request: HttpRequest) -> HttpResponse:
    """ "Écrire à": a new message from the user's own box (or the one named) to one address."""
    user = current_user(request)
    raw_box = request.POST.get("mailbox", "")
    if raw_box.isdigit() and len(raw_box) < 12:
        box: Mailbox | None = selectors.get_mailbox(user, int(raw_box), selectors.Access.SEND)
    else:
        box = prefs.writable_box(user)
    if box is None:
        messages.error(request, _("Aucune de vos boîtes ne vous permet d'écrire."))
        return redirect(reverse("webmail_contacts"))
    try:
        address = clean_address(request.POST.get("to", "")[:300])
    except services.PreferencesError as exc:
        messages.error(request, str(exc))
        return redirect(reverse("webmail_contacts"))
    draft = services.save_draft(
        mailbox=box,
        author=user,
        draft=None,
        to=[address],
        cc=[],
        subject="",
        text=prefs.signed("", prefs.signature_for(user, box)),
    )
    return redirect(reverse("webmail_draft", args=[draft.pk]))


@require_GET
def recipient_suggestions_view(request: HttpRequest) -> JsonResponse:
    """Compose suggestions in JSON: favourites, patients exchanged with, the directory."""
    if not is_verified(request.user):
        return JsonResponse({"error": _("Connexion requise.")}, status=401)
    if getattr(request.user, "kind", None) != "professional":
        return JsonResponse({"error": _("Accès réservé aux professionnels.")}, status=403)
    found = prefs.recipient_suggestions(request.user, request.GET.get("q", ""))
    response = JsonResponse(found, safe=False)
    response["Cache-Control"] = "private, max-age=30"
    return response
