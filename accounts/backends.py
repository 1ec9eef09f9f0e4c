"""Authentication by RPPS, Adeli, national id, INS or staff login name."""

from __future__ import annotations

from typing import Any

from django.contrib.auth.backends import ModelBackend
from django.http import HttpRequest

from accounts.identity import resolve
from accounts.models import User
from mssante.lib.identifiers import IdentifierError


class IdentifierBackend(ModelBackend):
    """Checks the password of the account an identifier designates.

    Suspended and closed accounts still authenticate here so that the login
    view can tell them why they cannot go further (after a correct password
    only, so that status is never disclosed to someone guessing); ``get_user``
    refuses them, so an existing session ends at the next request.
    """

    def authenticate(
        self,
        request: HttpRequest | None,
        username: str | None = None,
        password: str | None = None,
        **kwargs: Any,
    ) -> User | None:
        if not username or not password:
            return None
        try:
            found = resolve(username)
        except IdentifierError:
            return None
        if found is None:
            # Same work as a real check, so timing does not reveal which identifiers exist.
            User().set_password(password)
            return None
        user = found.user
        # An account not activated yet (unusable password) costs the same: Django's
        # check_password runs the hasher anyway (a test keeps it so).
        if user.check_password(password) and user.is_active:
            user.via_former_adeli = found.via_former_adeli  # type: ignore[attr-defined]
            return user
        return None

    def get_user(self, user_id: Any) -> User | None:
        user = super().get_user(user_id)
        if user is not None and user.status != User.Status.ACTIVE:
            return None
        return user
