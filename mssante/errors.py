"""The error pages (400, 403, 404, 500, CSRF failure): DSFR, in French, with a way back.

They are rendered from a plain context, never through the request's context
processors and never with a database query: the 500 page must show when the
database, a context processor or the session is what failed. A request that does
not want HTML (a script: autocomplete, FHIR, API clients) gets ``{"error": …}``.
"""

from __future__ import annotations

import logging

from django.conf import settings
from django.core.exceptions import PermissionDenied
from django.db import InterfaceError, OperationalError
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.template.loader import render_to_string
from django.templatetags.static import static
from django.urls import reverse
from django.utils.translation import get_language
from django.utils.translation import gettext as _

log = logging.getLogger(__name__)


class Refused(PermissionDenied):
    """A 403 whose message (French, for the user) the error page shows."""


# How long a client is asked to wait before trying again (HTTP Retry-After) after a
# failure of ours that will pass: the database out of reach, the blob store refusing.
RETRY_AFTER_SECONDS = 120
# Database errors that say "not now" (connection lost, server restarting).
DATABASE_UNAVAILABLE = (OperationalError, InterfaceError)


def storage_unavailable_text() -> str:
    return _(
        "Le stockage des messages est momentanément indisponible : rien n'a été enregistré "
        "ni envoyé. Réessayez dans quelques minutes."
    )


def database_unavailable_text() -> str:
    return _(
        "Le service est momentanément indisponible : votre dernière action n'a peut-être pas "
        "été enregistrée. Vérifiez-la dans quelques instants avant de la refaire."
    )


def temporarily_unavailable(request: HttpRequest | None, reason: str) -> HttpResponse:
    """The 503 page (or JSON) of a failure of ours that will pass, with Retry-After."""
    response = error_response(request, 503, reason=reason)
    response["Retry-After"] = str(RETRY_AFTER_SECONDS)
    return response


def _texts(status: int) -> tuple[str, str, str]:
    if status == 400:
        return (
            _("Requête refusée"),
            _("La page n'a pas pu traiter ce qui lui a été envoyé."),
            _("Vérifiez votre saisie, rechargez la page puis réessayez."),
        )
    if status == 405:
        return (
            _("Action impossible depuis cette adresse"),
            _("Cette page ne s'ouvre pas ainsi : elle répond à un bouton ou à un formulaire."),
            _("Revenez à la page précédente et utilisez ses boutons."),
        )
    if status == 414:
        return (
            _("Adresse trop longue"),
            _("L'adresse de la page est trop longue pour être traitée."),
            _("Revenez à la page précédente et raccourcissez votre saisie."),
        )
    if status == 403:
        return (
            _("Accès refusé"),
            _("Vous n'avez pas les droits nécessaires pour ouvrir cette page."),
            _(
                "Si vous pensez que c'est une erreur, demandez l'accès au titulaire de la boîte "
                "ou à l'équipe de votre opérateur."
            ),
        )
    if status == 503:
        return (
            _("Service momentanément indisponible"),
            _("Une partie du service ne répond pas pour l'instant."),
            _(
                "Réessayez dans quelques minutes. Si le problème persiste, contactez l'équipe de votre opérateur."
            ),
        )
    if status == 404:
        return (
            _("Page non trouvée"),
            _("La page que vous cherchez est introuvable. Excusez-nous pour la gêne occasionnée."),
            _(
                "Si vous avez tapé l'adresse dans le navigateur, vérifiez-la. Le message ou la "
                "page a peut-être été supprimé, ou vous n'y avez pas accès."
            ),
        )
    return (
        _("Erreur inattendue"),
        _("Désolés, le service rencontre un problème. Nous y travaillons."),
        _(
            "Réessayez dans quelques instants. Rien de ce que vous étiez en train d'envoyer "
            "n'a été envoyé à moitié : si le problème persiste, contactez l'équipe de votre "
            "opérateur."
        ),
    )


def _logo_url() -> str:
    """The operator's logo (as mssante.context_processors.logo_url: the two layers are apart)."""
    logo = settings.OPERATOR_LOGO
    if not logo or logo.startswith("https://"):
        return logo
    try:
        return static(logo)
    except ValueError:
        return ""


def _home_url() -> str:
    try:
        return reverse("home")
    except Exception:  # the URL configuration itself may be what failed
        return "/"


def error_response(
    request: HttpRequest | None,
    status: int,
    *,
    reason: str = "",
    title: str = "",
    advice: str = "",
    retry_url: str = "",
) -> HttpResponse:
    """The error page for ``status``, with an optional reason given to the user."""
    default_title, lead, default_advice = _texts(status)
    if request is not None and not request.accepts("text/html"):
        return JsonResponse({"error": reason or title or default_title}, status=status)
    context = {
        "status": status,
        "title": title or default_title,
        "lead": lead,
        "reason": reason,
        "advice": advice or default_advice,
        "home_url": _home_url(),
        "retry_url": retry_url,
        "operator_name": settings.OPERATOR_NAME,
        "operator_logo": _logo_url(),
        "language": get_language() or settings.LANGUAGE_CODE,
    }
    html: str
    try:
        html = render_to_string("errors/page.html", context)
    except Exception:  # the page of last resort must not fail in turn
        log.exception("error page %s could not be rendered", status)
        html = (
            f'<!DOCTYPE html><html lang="fr"><meta charset="utf-8"><title>{status}</title>'
            f'<h1>Erreur {status}</h1><p><a href="/">Retour à l\'accueil</a></p></html>'
        )
    return HttpResponse(html, status=status)
