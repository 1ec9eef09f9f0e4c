"""Writes of a sign-in through Pro Santé Connect: the device of the session, the journal."""

from __future__ import annotations

from django.db import transaction
from django.http import HttpRequest
from django.utils import timezone

from accounts.models import ProfessionalIdentity, ProSanteConnectDevice, User
from accounts.psc import PscIdentity
from audit import journal


def professional_for(identity: PscIdentity) -> User | None:
    """The professional whose national id is the one PSC returned (never by name or e-mail)."""
    found = (
        ProfessionalIdentity.objects.select_related("user")
        .filter(national_id=identity.national_id, user__kind=User.Kind.PROFESSIONAL)
        .first()
    )
    return found.user if found is not None else None


@transaction.atomic(durable=True)
def record_strong_sign_in(
    user: User, identity: PscIdentity, request: HttpRequest
) -> ProSanteConnectDevice:
    """The device standing for PSC as both factors, with the level, and the journal's line."""
    device = ProSanteConnectDevice.objects.filter(user=user).first()
    if device is None:
        device = ProSanteConnectDevice.objects.create(
            user=user, name="Pro Santé Connect", confirmed=True
        )
    device.last_level = identity.level
    device.last_used_at = timezone.now()
    device.save(update_fields=["last_level", "last_used_at"])
    journal.record(
        "login.succeeded",
        actor=user,
        obj=user,
        request=request,
        method="psc",
        level=identity.level,
        acr=identity.acr,
    )
    return device


def record_code_asked(user: User, identity: PscIdentity, request: HttpRequest) -> None:
    """PSC said who, at a level not strong enough alone: the one-time code is asked as well."""
    journal.record(
        "login.psc_code_asked",
        actor=user,
        obj=user,
        request=request,
        level=identity.level,
        acr=identity.acr,
    )


def record_unknown(identity: PscIdentity, request: HttpRequest) -> None:
    """PSC identified someone no account here belongs to: nothing is created."""
    journal.record(
        "login.psc_unknown",
        request=request,
        identifier=identity.national_id,
        level=identity.level,
    )


def record_failure(reason: str, request: HttpRequest) -> None:
    journal.record("login.psc_failed", request=request, reason=reason)
