from django.db import connection
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import redirect
from django.views.decorators.http import require_safe

from accounts.views.login import landing_url
from mssante.access import current_user, is_verified


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
