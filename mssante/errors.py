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
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils.translation import get_language
from django.utils.translation import gettext as _

log = logging.getLogger(__name__)


class Refused(PermissionDenied):
    """A 403 whose message (French, for the user) the error page shows."""


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
