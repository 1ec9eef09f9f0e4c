from typing import Any

from django.conf import settings
from django.http import HttpRequest


def portal(request: HttpRequest) -> dict[str, Any]:
    """Values every page needs: the operator's name."""
    return {"OPERATOR_NAME": settings.OPERATOR_NAME}
