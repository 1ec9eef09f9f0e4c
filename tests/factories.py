"""Factories used across the tests (the personas are in ``tests.personas``)."""

from __future__ import annotations

import itertools
from datetime import date
from typing import Any

from django_otp.oath import totp

from accounts import services
from accounts.models import TOTPDevice, User
from mssante.lib.identifiers import make_ins, make_rpps

PASSWORD = "Un-mot-de-passe-solide-42"
_seq = itertools.count(1)


def rpps() -> str:
    return make_rpps(f"10{next(_seq):08d}")


def adeli() -> str:
    return f"75{next(_seq):07d}"


def ins() -> str:
    n = next(_seq)
    return make_ins(1 + n % 2, 1970 + n % 40, 1 + n % 12, "69", "123", n % 1000)


def professional(
    *,
    identifier: str | None = None,
    first_name: str = "Camille",
    last_name: str = "Lefèvre",
    profession: str = "10",
    password: str | None = PASSWORD,
    enrol: bool = True,
) -> User:
    user = services.create_professional(
        identifier=identifier or rpps(),
        first_name=first_name,
        last_name=last_name,
        profession_code=profession,
    )
    return _finish(user, password, enrol)


def patient(
    *, matricule: str | None = None, password: str | None = PASSWORD, enrol: bool = True
) -> User:
    user = services.create_patient(
        ins=matricule or ins(),
        oid="1.2.250.1.213.1.4.10",
        birth_name="MOREAU",
        first_names="Lucie Anne",
        birth_date=date(1990, 5, 2),
        sex="F",
        qualified=True,
        email="lucie@example.org",
    )
    return _finish(user, password, enrol)


def staff(*, username: str = "equipe", password: str | None = PASSWORD, enrol: bool = True) -> User:
    user = User.objects.create_user(
        username=username, kind=User.Kind.STAFF, is_staff=True, is_superuser=True, password=password
    )
    return _finish(user, password, enrol)


def _finish(user: User, password: str | None, enrol: bool) -> User:
    if password:
        user.set_password(password)
        user.save()
    if enrol:
        device = TOTPDevice(user=user, name="app", confirmed=True, tolerance=1)
        device.seal_secret(bytes.fromhex(f"{user.pk:040x}"))
        device.save()
    return user


def code_for(user: User) -> str:
    """The current TOTP code of a user's device."""
    device = TOTPDevice.objects.get(user=user, confirmed=True)
    return f"{totp(device.bin_key):06d}"


# --- Mailboxes (messaging core) --------------------------------------------------------

from mailboxes.models import HostedDomain, Mailbox  # noqa: E402 - appended section

_domain_seq = itertools.count(1)


def hosted_domain(name: str | None = None) -> HostedDomain:
    """A hosted professional domain (created once per name)."""
    domain, _ = HostedDomain.objects.get_or_create(
        name=name or f"domaine{next(_domain_seq)}.mssante.test"
    )
    return domain


def mailbox(
    user: User | None = None, *, domain: HostedDomain | None = None, address: str | None = None
) -> Mailbox:
    """A nominative mailbox for ``user`` (a new professional when omitted)."""
    from mailboxes import services as mailbox_services

    user = user or professional(first_name="Camille", last_name=f"Lefèvre{next(_seq)}", enrol=False)
    return mailbox_services.create_personal_mailbox(
        user, domain or hosted_domain("hopital.mssante.test"), address=address
    )


# --- Patients (patient space) ----------------------------------------------------------


def patient_mailbox(user: User | None = None) -> Mailbox:
    """A patient's box ``<INS>@<PATIENT_DOMAIN>`` (a new enrolled patient when omitted)."""
    from mailboxes import services as mailbox_services
    from patients import services as patient_services

    user = user or patient()
    return mailbox_services.create_mailbox(
        Mailbox.Kind.PATIENT,
        patient_services.patient_address(user.username),
        patient_services.patient_domain(),
        owner=user,
        display_name=f"{user.first_name} {user.last_name}",
    )


# --- Shared mailboxes and API tokens ---------------------------------------------------

_org_seq = itertools.count(1)


def organisation(name: str = "Service de cardiologie") -> Any:
    """An organisation with a FINESS number (a new one each call)."""
    from directory.models import Organisation

    return Organisation.objects.create(name=name, finess=f"75{next(_org_seq):07d}")


def shared_mailbox(
    responsible: User,
    *,
    kind: str = Mailbox.Kind.ORGANISATIONAL,
    local: str | None = None,
    domain: HostedDomain | None = None,
    display_name: str = "Secrétariat de cardiologie",
) -> Mailbox:
    """An ORG (or APP) mailbox of a new organisation under ``responsible``."""
    from mailboxes import services as mailbox_services

    domain = domain or hosted_domain("hopital.mssante.test")
    box = mailbox_services.create_mailbox(
        kind,
        f"{local or f'service{next(_org_seq)}'}@{domain.name}",
        domain,
        responsible=responsible,
        organisation=organisation(),
        display_name=display_name,
    )
    return box


def member(box: Mailbox, user: User, role: str, **kwargs: Any) -> Any:
    """Grant ``user`` a role in ``box`` (granted by its holder or responsible)."""
    from mailboxes import services as mailbox_services

    return mailbox_services.grant_membership(
        box, user, role, by=box.owner or box.responsible, **kwargs
    )


def api_agreement(box: Mailbox, scope: str = "send", **kwargs: Any) -> Any:
    """The holder's agreement that software may use ``box`` (as given from their preferences)."""
    from mailboxes import services as mailbox_services

    holder = box.owner or box.responsible
    return mailbox_services.record_api_agreement(box, by=holder, scope=scope, **kwargs)


def api_token(box: Mailbox, **kwargs: Any) -> tuple[Any, str]:
    """A token for ``box`` and its clear value (under its holder's agreement for a PER/ORG box)."""
    from mailboxes import services as mailbox_services

    if box.kind in (Mailbox.Kind.PERSONAL, Mailbox.Kind.ORGANISATIONAL):
        kwargs.setdefault("agreement", api_agreement(box, kwargs.get("scope") or "send"))
    return mailbox_services.create_api_token(box, by=None, **kwargs)
