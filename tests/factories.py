"""Factories for the tests, built with factory-boy (the people who act are in ``tests.personas``).

Each factory creates through the application's own services (``create_professional``,
``create_personal_mailbox``, ``create_mailbox``, ``create_api_token``...), never by saving a
bare model, so what a test gets is what a user would: folders, directory entry, audit events.

Call a factory with the attributes that matter to the test, the rest has a sane default:
``ProfessionalFactory(first_name="Claire", last_name="Martin", enrol=False)``. The lower-case
names below (``professional``, ``mailbox``...) are the same factories, positional-friendly.
"""

from __future__ import annotations

import itertools
from datetime import date
from typing import Any

import factory
from django_otp.oath import totp
from factory.django import DjangoModelFactory

from accounts import services
from accounts.models import TOTPDevice, User
from directory.models import Organisation
from mailboxes import services as mailbox_services
from mailboxes.models import ApiAgreement, ApiToken, HostedDomain, Mailbox, Membership
from mssante.lib.identifiers import make_ins, make_rpps
from patients import services as patient_services

PASSWORD = "Un-mot-de-passe-solide-42"
HOSPITAL = "hopital.mssante.test"
_seq = itertools.count(1)


def rpps() -> str:
    return make_rpps(f"10{next(_seq):08d}")


def adeli() -> str:
    return f"75{next(_seq):07d}"


def ins() -> str:
    n = next(_seq)
    return make_ins(1 + n % 2, 1970 + n % 40, 1 + n % 12, "69", "123", n % 1000)


def _finish(user: User, password: str | None, enrol: bool) -> User:
    """A password (none when ``password`` is None) and, when ``enrol``, an authenticator app."""
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


# --- People ----------------------------------------------------------------------------


class _PersonFactory(DjangoModelFactory[User]):
    """An account with a password and, unless ``enrol=False``, an authenticator app."""

    class Meta:
        model = User
        abstract = True

    password: str | None = PASSWORD
    enrol = True

    @classmethod
    def _create(cls, model_class: type[User], *args: Any, **kwargs: Any) -> User:
        password, enrol = kwargs.pop("password"), kwargs.pop("enrol")
        return _finish(cls._account(**kwargs), password, enrol)

    @classmethod
    def _account(cls, **kwargs: Any) -> User:
        raise NotImplementedError


class ProfessionalFactory(_PersonFactory):
    """A professional (médecin by default) identified by a new RPPS number."""

    identifier = factory.LazyFunction(rpps)
    first_name = "Camille"
    last_name = "Lefèvre"
    profession = "10"

    @classmethod
    def _account(cls, **kwargs: Any) -> User:
        return services.create_professional(
            identifier=kwargs.pop("identifier"), profession_code=kwargs.pop("profession"), **kwargs
        )


class PatientFactory(_PersonFactory):
    """A patient with a qualified INS (Lucie Anne MOREAU unless told otherwise)."""

    matricule = factory.LazyFunction(ins)
    birth_name = "MOREAU"
    first_names = "Lucie Anne"
    birth_date = date(1990, 5, 2)
    sex = "F"
    email = "lucie@example.org"

    @classmethod
    def _account(cls, **kwargs: Any) -> User:
        return services.create_patient(
            ins=kwargs.pop("matricule"), oid="1.2.250.1.213.1.4.10", qualified=True, **kwargs
        )


class StaffFactory(_PersonFactory):
    """A member of the operator's team: a superuser of the admin."""

    username = "equipe"
    kind = User.Kind.STAFF
    is_staff = True
    is_superuser = True

    @classmethod
    def _account(cls, **kwargs: Any) -> User:
        return User.objects.create_user(**kwargs)


# --- Domains and mailboxes -------------------------------------------------------------


class HostedDomainFactory(DjangoModelFactory[HostedDomain]):
    """A hosted professional domain (the same row again for the same name)."""

    class Meta:
        model = HostedDomain
        django_get_or_create = ("name",)

    name = factory.Sequence(lambda n: f"domaine{n + 1}.mssante.test")


class MailboxFactory(DjangoModelFactory[Mailbox]):
    """A professional's nominative (PER) box, its address proposed from their name."""

    class Meta:
        model = Mailbox

    owner = factory.SubFactory(
        ProfessionalFactory, last_name=factory.Sequence(lambda n: f"Lefèvre{n + 1}"), enrol=False
    )
    domain = factory.SubFactory(HostedDomainFactory, name=HOSPITAL)
    address = None

    @classmethod
    def _create(cls, model_class: type[Mailbox], *args: Any, **kwargs: Any) -> Mailbox:
        return mailbox_services.create_personal_mailbox(
            kwargs["owner"], kwargs["domain"], address=kwargs["address"]
        )


class PatientMailboxFactory(DjangoModelFactory[Mailbox]):
    """A patient's box ``<INS>@<PATIENT_DOMAIN>``."""

    class Meta:
        model = Mailbox

    owner = factory.SubFactory(PatientFactory)

    @classmethod
    def _create(cls, model_class: type[Mailbox], *args: Any, **kwargs: Any) -> Mailbox:
        user = kwargs["owner"]
        return mailbox_services.create_mailbox(
            Mailbox.Kind.PATIENT,
            patient_services.patient_address(user.username),
            patient_services.patient_domain(),
            owner=user,
            display_name=f"{user.first_name} {user.last_name}",
        )


class OrganisationFactory(DjangoModelFactory[Organisation]):
    """An organisation with a FINESS number of its own."""

    class Meta:
        model = Organisation

    name = "Service de cardiologie"
    finess = factory.Sequence(lambda n: f"75{n + 1:07d}")


class SharedMailboxFactory(DjangoModelFactory[Mailbox]):
    """An organisational (ORG) box, or an applicative (APP) one, of a new organisation."""

    class Meta:
        model = Mailbox

    responsible = factory.SubFactory(ProfessionalFactory)
    kind = Mailbox.Kind.ORGANISATIONAL
    local = factory.Sequence(lambda n: f"service{n + 1}")
    domain = factory.SubFactory(HostedDomainFactory, name=HOSPITAL)
    organisation = factory.SubFactory(OrganisationFactory)
    display_name = "Secrétariat de cardiologie"

    @classmethod
    def _create(cls, model_class: type[Mailbox], *args: Any, **kwargs: Any) -> Mailbox:
        domain = kwargs.pop("domain")
        return mailbox_services.create_mailbox(
            kwargs.pop("kind"), f"{kwargs.pop('local')}@{domain.name}", domain, **kwargs
        )


class MembershipFactory(DjangoModelFactory[Membership]):
    """A role in someone else's box, granted by its holder (or its responsible)."""

    class Meta:
        model = Membership

    mailbox = factory.SubFactory(SharedMailboxFactory)
    user = factory.SubFactory(ProfessionalFactory)
    role = Membership.Role.SEND

    @classmethod
    def _create(cls, model_class: type[Membership], *args: Any, **kwargs: Any) -> Membership:
        box = kwargs.pop("mailbox")
        return mailbox_services.grant_membership(
            box, kwargs.pop("user"), kwargs.pop("role"), by=box.owner or box.responsible, **kwargs
        )


class ApiAgreementFactory(DjangoModelFactory[ApiAgreement]):
    """The holder's agreement that software may use their box (as given from the preferences)."""

    class Meta:
        model = ApiAgreement

    mailbox = factory.SubFactory(MailboxFactory)
    scope = "send"

    @classmethod
    def _create(cls, model_class: type[ApiAgreement], *args: Any, **kwargs: Any) -> ApiAgreement:
        box = kwargs.pop("mailbox")
        return mailbox_services.record_api_agreement(box, by=box.owner or box.responsible, **kwargs)


def professional(**kwargs: Any) -> User:
    return ProfessionalFactory.create(**kwargs)


def patient(**kwargs: Any) -> User:
    return PatientFactory.create(**kwargs)


def staff(**kwargs: Any) -> User:
    return StaffFactory.create(**kwargs)


def hosted_domain(name: str | None = None) -> HostedDomain:
    return HostedDomainFactory.create(**({"name": name} if name else {}))


def mailbox(user: User | None = None, **kwargs: Any) -> Mailbox:
    """A nominative box for ``user`` (a new professional when omitted)."""
    return MailboxFactory.create(**({"owner": user} if user else {}), **kwargs)


def patient_mailbox(user: User | None = None) -> Mailbox:
    """A patient's box (a new enrolled patient when omitted)."""
    return PatientMailboxFactory.create(**({"owner": user} if user else {}))


def organisation(name: str = "Service de cardiologie") -> Organisation:
    return OrganisationFactory.create(name=name)


def shared_mailbox(responsible: User, **kwargs: Any) -> Mailbox:
    """An ORG (or, with ``kind``, APP) box of a new organisation under ``responsible``."""
    return SharedMailboxFactory.create(responsible=responsible, **kwargs)


def member(box: Mailbox, user: User, role: str, **kwargs: Any) -> Membership:
    """Grant ``user`` a role in ``box`` (granted by its holder or responsible)."""
    return MembershipFactory.create(mailbox=box, user=user, role=role, **kwargs)


def api_agreement(box: Mailbox, scope: str = "send", **kwargs: Any) -> ApiAgreement:
    return ApiAgreementFactory.create(mailbox=box, scope=scope, **kwargs)


def api_token(box: Mailbox, **kwargs: Any) -> tuple[ApiToken, str]:
    """A token for ``box`` and its clear value (under its holder's agreement for a PER/ORG box)."""
    if box.kind in (Mailbox.Kind.PERSONAL, Mailbox.Kind.ORGANISATIONAL):
        kwargs.setdefault("agreement", api_agreement(box, kwargs.get("scope") or "send"))
    return mailbox_services.create_api_token(box, by=None, **kwargs)
