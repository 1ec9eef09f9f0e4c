"""The Pro Santé Connect block of the login page: ``{% load psc %}{% psc_login %}``."""

from __future__ import annotations

from typing import Any

from django import template

from accounts.views.psc import psc_context

register = template.Library()


@register.inclusion_tag("accounts/_psc_login.html", takes_context=True)
def psc_login(context: template.Context) -> dict[str, Any]:
    """The PSC button (when PSC is on) and the error of a failed PSC sign-in, if any."""
    request = context.get("request")
    data: dict[str, Any] = {"psc_error": context.get("psc_error", "")}
    if request is not None:
        data.update(psc_context(request))
    return data
