"""What the clients' pages read."""

from __future__ import annotations

from django.db.models import QuerySet
from django.http import Http404

from accounts.models import User
from clients.models import AppPassword


def app_passwords(user: User) -> QuerySet[AppPassword]:
    """The user's application passwords, newest first, revoked ones included (history)."""
    return AppPassword.objects.filter(user=user).select_related("mailbox")


def get_app_password(user: User, password_id: int) -> AppPassword:
    """One of the user's own passwords, or 404 (another user's is not theirs to see)."""
    found = app_passwords(user).filter(pk=password_id).first()
    if found is None:
        raise Http404
    return found
