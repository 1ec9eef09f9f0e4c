"""The demo trust space. Demo secrets live here and only here, never in settings.

At the project's layer: it writes through the services of every app below (accounts,
mailboxes, directory), so none of them has to know the demo.
"""

from __future__ import annotations

import base64
from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import Any

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from accounts import services
from accounts.models import PatientIdentity, ProfessionalIdentity, User
from directory.models import Organisation
from mailboxes import services as mailbox_services
from mailboxes.models import ApiToken, HostedDomain, Mailbox, Membership
from mssante.lib.identifiers import INS_OID_DEMO, make_ins, make_rpps
from patients import demo_services

DOMAINS = [
    (
        "hopital-demo.mssante.fr",
        "Centre hospitalier de démonstration",
        HostedDomain.Kind.PROFESSIONAL,
    ),
    ("cabinet-demo.mssante.fr", "Maison de santé de démonstration", HostedDomain.Kind.PROFESSIONAL),
]


@dataclass
class DemoAccount:
    key: str
    kind: str
    identifier: str
    password: str
    totp_hex: str
    first_name: str
    last_name: str
    email: str
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def totp_secret(self) -> str:
        return base64.b32encode(bytes.fromhex(self.totp_hex)).decode().rstrip("=")


ACCOUNTS = [
    DemoAccount(
        "doctor",
        "professional",
        make_rpps("1010000123"),
        "Demo-Medecin-2026!",
        "3132333435363738393031323334353637383930",
        "Claire",
        "Martin",
        "claire.martin@example.org",
        {"profession": ("G15", "10"), "specialty": ("SM54", "Médecine générale"), "domain": 0},
    ),
    DemoAccount(
        "nurse",
        "professional",
        "751234567",
        "Demo-Infirmier-2026!",
        "4a4b4c4d4e4f50515253545556575859606162ab",
        "Julien",
        "Dupont",
        "julien.dupont@example.org",
        {"profession": ("G15", "60"), "specialty": ("", ""), "domain": 1},
    ),
    DemoAccount(
        "pharmacist",
        "professional",
        make_rpps("1020000456"),
        "Demo-Pharmacien-2026!",
        "a1b2c3d4e5f60718293a4b5c6d7e8f9012345678",
        "Sophie",
        "Bernard",
        "sophie.bernard@example.org",
        {"profession": ("G15", "21"), "specialty": ("", ""), "domain": 1},
    ),
    DemoAccount(
        "patient",
        "patient",
        make_ins(2, 1985, 4, "75", "056", 123),
        "Demo-Patient-2026!",
        "0f1e2d3c4b5a69788796a5b4c3d2e1f00f1e2d3c",
        "Marie",
        "Durand",
        "marie.durand@example.org",
        {
            "birth_date": date(1985, 4, 17),
            "sex": "F",
            "first_names": "Marie Louise",
            "birth_place": "75156",
        },
    ),
    DemoAccount(
        "staff",
        "staff",
        "admin",
        "Demo-Equipe-2026!",
        "00112233445566778899aabbccddeeff00112233",
        "Alex",
        "Support",
        "support@example.org",
    ),
]

BACKUP_CODES = {a.key: [f"{a.key[:3]}{i:05d}" for i in range(1, 11)] for a in ACCOUNTS}


def _user(account: DemoAccount) -> User:
    if account.kind == "professional":
        national = ("8" if len(account.identifier) == 11 else "0") + account.identifier
        user = User.objects.filter(username=national).first()
        if user is None:
            table, code = account.extra["profession"]
            user = services.create_professional(
                identifier=account.identifier,
                first_name=account.first_name,
                last_name=account.last_name,
                profession_code=code,
                profession_table=table,
                specialty_code=account.extra["specialty"][0],
                specialty_label=account.extra["specialty"][1],
                email=account.email,
            )
        return user
    if account.kind == "patient":
        user = User.objects.filter(username=account.identifier).first()
        if user is None:
            user = services.create_patient(
                ins=account.identifier,
                oid=INS_OID_DEMO,
                birth_name=account.last_name.upper(),
                first_names=account.extra["first_names"],
                birth_date=account.extra["birth_date"],
                sex=account.extra["sex"],
                birth_place=account.extra["birth_place"],
                email=account.email,
                qualified=True,
            )
        return user
    user, _ = User.objects.get_or_create(
        username=account.identifier,
        defaults={"kind": User.Kind.STAFF, "is_staff": True, "is_superuser": True},
    )
    user.first_name, user.last_name, user.email = (
        account.first_name,
        account.last_name,
        account.email,
    )
    user.save()
    return user


@transaction.atomic
def seed() -> list[dict[str, Any]]:
    """Create (or bring back to its initial state) the demo trust space; return the logins."""
    for name, description, kind in DOMAINS:
        HostedDomain.objects.update_or_create(
            name=name, defaults={"description": description, "kind": kind}
        )
    # The patient domain comes from settings (PATIENT_DOMAIN, patient.mssante.fr in the demo).
    HostedDomain.objects.update_or_create(
        name=settings.PATIENT_DOMAIN,
        defaults={"description": "Patients (démonstration)", "kind": HostedDomain.Kind.PATIENT},
    )
    out: list[dict[str, Any]] = []
    for account in ACCOUNTS:
        user = _user(account)
        if user.status != User.Status.ACTIVE:
            user.status, user.status_reason = User.Status.ACTIVE, ""
        user.set_password(account.password)
        user.save()
        services.set_known_totp(
            user, secret_hex=account.totp_hex, backup_codes=BACKUP_CODES[account.key]
        )
        out.append(
            {
                "key": account.key,
                "kind": account.kind,
                "identifier": account.identifier,
                "password": account.password,
                "totp_secret": account.totp_secret,
                "name": f"{account.first_name} {account.last_name}",
                "backup_codes": BACKUP_CODES[account.key],
                "mailboxes": _mailboxes(account, user),
                "personal_email": account.email,
            }
        )
        if account.kind == "patient":
            out[-1].update(_patient_space(user))
            demo_services.seed(user)
    shared = _shared_mailboxes({a["key"]: a for a in out})
    for entry in out:
        entry["shared_mailboxes"] = shared.get(entry["key"], [])
    return out


# The lab's API token is published with the demo on purpose: it exists in the demo data
# only (a real token is random, shown once and stored as a SHA-256).
DEMO_API_TOKEN = "mss_demo_laboratoire_4f2a9c1e7b3d5a8f6e0c2b4d6f8a0c1e"  # noqa: S105
SHARED: list[dict[str, Any]] = [
    {
        "key": "cardiologie",
        "kind": "ORG",
        "address": "cardiologie@hopital-demo.mssante.fr",
        "name": "Secrétariat de cardiologie",
        "organisation": ("Centre hospitalier de démonstration — Cardiologie", "750000011"),
        "responsible": "doctor",
        "members": {"nurse": "send"},
    },
    {
        "key": "laboratoire",
        "kind": "APP",
        "address": "laboratoire@hopital-demo.mssante.fr",
        "name": "Laboratoire de biologie médicale",
        "organisation": ("Laboratoire de biologie médicale de démonstration", "750000029"),
        "responsible": "pharmacist",
        "members": {},
    },
]


def _shared_mailboxes(accounts: dict[str, dict[str, Any]]) -> dict[str, list[dict[str, Any]]]:
    """The cardiology secretariat (ORG) and the lab (APP, with its API token)."""
    users = {key: User.objects.get(username=_username(key)) for key in accounts}
    listed: dict[str, list[dict[str, Any]]] = {}
    for spec in SHARED:
        name, finess = spec["organisation"]
        organisation, _ = Organisation.objects.get_or_create(finess=finess, defaults={"name": name})
        responsible = users[spec["responsible"]]
        box = Mailbox.objects.filter(address=spec["address"]).first()
        if box is None:
            domain = HostedDomain.objects.get(name=spec["address"].split("@")[1])
            box = mailbox_services.create_mailbox(
                spec["kind"],
                spec["address"],
                domain,
                responsible=responsible,
                organisation=organisation,
                display_name=spec["name"],
            )
        info: dict[str, Any] = {
            "key": spec["key"],
            "address": box.address,
            "kind": box.kind,
            "name": box.display_name,
        }
        listed.setdefault(spec["responsible"], []).append({**info, "role": "responsible"})
        # Back to the initial grants: the listed members, nobody else.
        Membership.objects.filter(mailbox=box, revoked_at__isnull=True).exclude(
            user__in=[users[k] for k in spec["members"]]
        ).update(revoked_at=timezone.now())
        for key, role in spec["members"].items():
            live = Membership.objects.filter(mailbox=box, user=users[key], revoked_at__isnull=True)
            if not live.exists():
                mailbox_services.grant_membership(box, users[key], role, by=responsible)
            live.update(role=role, expires_at=None)
            listed.setdefault(key, []).append({**info, "role": role})
        if box.kind == Mailbox.Kind.APPLICATIVE:
            token = ApiToken.objects.filter(
                token_hash=mailbox_services.tokens.hash_token(DEMO_API_TOKEN)
            ).first()
            expires = timezone.now() + timedelta(days=365)
            if token is None:
                mailbox_services.create_api_token(
                    box, by=None, label="Démonstration", expires_at=expires, raw=DEMO_API_TOKEN
                )
            else:
                ApiToken.objects.filter(pk=token.pk).update(revoked_at=None, expires_at=expires)
            listed[spec["responsible"]][-1]["api_token"] = DEMO_API_TOKEN
    return listed


def _username(key: str) -> str:
    account = next(a for a in ACCOUNTS if a.key == key)
    if account.kind == "professional":
        return ("8" if len(account.identifier) == 11 else "0") + account.identifier
    return account.identifier


def _mailboxes(account: DemoAccount, user: User) -> list[str]:
    """The demo professional's nominative mailbox, created on the first seed, kept after."""
    if account.kind != "professional" or "domain" not in account.extra:
        return []
    boxes = list(Mailbox.objects.filter(owner=user).order_by("address"))
    if not boxes:
        domain = HostedDomain.objects.get(name=DOMAINS[account.extra["domain"]][0])
        boxes = [mailbox_services.create_personal_mailbox(user, domain)]
    return [box.address for box in boxes]


def _patient_space(user: User) -> dict[str, Any]:
    """The demo patient's box in the patient domain; codes by app (TOTP) or by e-mail."""
    box = Mailbox.objects.filter(owner=user, kind=Mailbox.Kind.PATIENT).first()
    if box is None:
        box = mailbox_services.create_mailbox(
            Mailbox.Kind.PATIENT,
            f"{user.username.lower()}@{settings.PATIENT_DOMAIN}",
            HostedDomain.objects.get(name=settings.PATIENT_DOMAIN),
            owner=user,
            display_name=f"{user.first_name} {user.last_name}",
        )
    # Both factors work for the demo patient: the TOTP secret printed by the seed,
    # and a code e-mailed to the personal address (printed on the console in the demo).
    services.add_email_codes(user)
    return {"address": box.address, "mailboxes": [box.address], "second_factor": "totp+email"}


def professional_identity(key: str) -> ProfessionalIdentity:
    account = next(a for a in ACCOUNTS if a.key == key)
    return ProfessionalIdentity.objects.get(id_number=account.identifier)


def patient_identity() -> PatientIdentity:
    account = next(a for a in ACCOUNTS if a.key == "patient")
    return PatientIdentity.objects.get(ins=account.identifier)
