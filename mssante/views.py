import sys
from urllib.parse import urlsplit

from django.db import connection
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import redirect
from django.utils.http import url_has_allowed_host_and_scheme
from django.utils.translation import gettext as _
from django.views.decorators.http import require_safe

from accounts.access import current_user, is_verified
from accounts.views.login import landing_url
from mssante import errors


@require_safe
def home(request: HttpRequest) -> HttpResponse:
    """Send each user to their space, or to the login page."""
    if is_verified(request.user):
        return redirect(landing_url(current_user(request)))
    return redirect("accounts:login")


@require_safe
def health(request: HttpRequest) -> JsonResponse:
    """Liveness for load balancers: the database answers."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")
    return JsonResponse({"status": "ok"})


# --------------------------------------------------------------------------- error pages
# Named in mssante/urls.py (handler400…) and settings.CSRF_FAILURE_VIEW.


def bad_request(request: HttpRequest, exception: Exception | None = None) -> HttpResponse:
    return errors.error_response(request, 400)


def permission_denied(request: HttpRequest, exception: Exception | None = None) -> HttpResponse:
    reason = str(exception) if isinstance(exception, errors.Refused) else ""
    return errors.error_response(request, 403, reason=reason)


def page_not_found(request: HttpRequest, exception: Exception | None = None) -> HttpResponse:
    return errors.error_response(request, 404)


def server_error(request: HttpRequest) -> HttpResponse:
    # Django calls this while handling the exception: a database out of reach before the
    # view (loading the session or the user) is a temporary failure, not a bug.
    if isinstance(sys.exc_info()[1], errors.DATABASE_UNAVAILABLE):
        return errors.temporarily_unavailable(request, errors.database_unavailable_text())
    return errors.error_response(request, 500)


def csrf_failure(request: HttpRequest, reason: str = "") -> HttpResponse:
    """A form sent without a valid CSRF token: most often a page left open too long."""
    return errors.error_response(
        request,
        403,
        title=_("Formulaire expiré"),
        reason=_(
            "Ce formulaire n'a pas pu être vérifié : la page était ouverte depuis longtemps, "
            "ou vous vous êtes déconnecté entre-temps. Rien n'a été enregistré."
        ),
        advice=_("Revenez à la page, rechargez-la, puis envoyez le formulaire à nouveau."),
        retry_url=_same_site_referer(request),
    )


def _same_site_referer(request: HttpRequest) -> str:
    """The page the form was on, when it is one of ours (a POST-only URL would be a 405)."""
    referer = request.headers.get("Referer", "")
    if referer and url_has_allowed_host_and_scheme(
        referer, allowed_hosts={request.get_host()}, require_https=request.is_secure()
    ):
        return urlsplit(referer).path
    return ""
