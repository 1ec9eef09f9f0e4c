from typing import Any

from django.conf import settings
from django.http import HttpRequest
from django.templatetags.static import static


def portal(request: HttpRequest) -> dict[str, Any]:
    """Values every page needs: the operator's name and logo."""
    return {
        "OPERATOR_NAME": settings.OPERATOR_NAME,
        "OPERATOR_SHORT_NAME": settings.OPERATOR_SHORT_NAME,
        "OPERATOR_LOGO_URL": logo_url(),
    }


def logo_url() -> str:
    """The operator's logo as a URL ("" when there is none)."""
    logo = settings.OPERATOR_LOGO
    if not logo or logo.startswith("https://"):
        return logo
    try:
        return static(logo)
    except ValueError:  # not in the collected static files: the name alone, not a 500
        return ""
