"""Every write on accounts and identities: validated, audited, in one transaction."""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import date, datetime, timedelta

from django.conf import settings
from django.core.mail import send_mail
from django.db import transaction
from django.http import HttpRequest
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django_otp.models import Device
from django_otp.oath import TOTP

from accounts import signals
from accounts.models import (
    ActivationLink,
    BackupCodeDevice,
    EmailChange,
    EmailCodeDevice,
    FormerAdeli,
    PasskeyDevice,
    PatientIdentity,
    ProfessionalIdentity,
    TOTPDevice,
    User,
    new_backup_code,
)
from audit import journal
from mssante.lib import identifiers as ids
from mssante.lib import professions


class AccountError(Exception):
    """A request a user or staff member can get wrong; the message is shown to them."""


# --- Creating accounts ----------------------------------------------------------------


def _profession(code: str, table: str) -> professions.Profession:
    found = professions.lookup(code, table)
    if found is None:
        raise AccountError(
            _("Profession inconnue : %(table)s %(code)s.") % {"table": table, "code": code}
        )
    return found


@transaction.atomic
def create_professional(
    *,
    identifier: str,
    first_name: str,
    last_name: str,
    profession_code: str,
    profession_table: str = "G15",
    specialty_code: str = "",
    specialty_label: str = "",
    email: str = "",
    by: User | None = None,
) -> User:
    """Create a professional account from an RPPS or Adeli number (no password yet)."""
    try:
        pid = ids.parse_professional_id(identifier)
    except ids.IdentifierError as exc:
        raise AccountError(str(exc)) from None
    if User.objects.filter(username=pid.national_id).exists():
        raise AccountError(
            _("Un compte existe déjà pour l'identifiant %(id)s.") % {"id": pid.number}
        )
    profession = _profession(profession_code, profession_table)
    user = User(
        username=pid.national_id,
        kind=User.Kind.PROFESSIONAL,
        first_name=first_name,
        last_name=last_name,
        email=email,
    )
    user.set_unusable_password()
    user.save()
    ProfessionalIdentity.objects.create(
        user=user,
        id_type=pid.kind,
        id_number=pid.number,
        national_id=pid.national_id,
        profession_table=profession.table,
        profession_code=profession.code,
        profession_label=profession.label,
        category=profession.category,
        specialty_code=specialty_code,
        specialty_label=specialty_label,
    )
    journal.record("account.created", actor=by, obj=user, kind=user.kind)
    return user


@transaction.atomic
def create_patient(
    *,
    ins: str,
    oid: str,
    birth_name: str,
    first_names: str,
    birth_date: date,
    sex: str,
    birth_place: str = "",
    email: str = "",
    qualified: bool = False,
    by: User | None = None,
) -> User:
    """Create a patient account from a qualified (or not yet qualified) INS."""
    try:
        matricule = ids.parse_ins(ins).matricule
    except ids.IdentifierError as exc:
        raise AccountError(str(exc)) from None
    if User.objects.filter(username=matricule).exists():
        raise AccountError(_("Un compte patient existe déjà pour ce matricule INS."))
    user = User(
        username=matricule,
        kind=User.Kind.PATIENT,
        first_name=first_names.split()[0] if first_names else "",
        last_name=birth_name,
        email=email,
    )
    user.set_unusable_password()
    user.save()
    PatientIdentity.objects.create(
        user=user,
        ins=matricule,
        oid=oid,
        birth_name=birth_name,
        first_names=first_names,
        birth_date=birth_date,
        sex=sex,
        birth_place=birth_place,
        qualified=qualified,
    )
    journal.record("account.created", actor=by, obj=user, kind=user.kind)
    return user


# --- Eligibility ----------------------------------------------------------------------


def is_eligible(identity: ProfessionalIdentity) -> bool:
    """Whether the law allows this professional to hold a mailbox (or staff decided so)."""
    return identity.eligibility_override or professions.eligible(
        identity.profession_code, identity.profession_table
    )


@transaction.atomic
def override_eligibility(identity: ProfessionalIdentity, *, reason: str, by: User) -> None:
    """Staff grant a mailbox to a professional the tables do not make eligible."""
    if not reason.strip():
        raise AccountError(_("Un motif est obligatoire pour accorder une dérogation."))
    identity.eligibility_override = True
    identity.eligibility_override_reason = reason.strip()
    identity.eligibility_override_by = by
    identity.eligibility_override_at = timezone.now()
    identity.save()
    journal.record(
        "account.eligibility_override", actor=by, obj=identity.user, reason=reason.strip()
    )


# --- Status ---------------------------------------------------------------------------


def _set_status(user: User, status: str, *, reason: str, by: User | None, action: str) -> None:
    user.status = status
    user.status_reason = reason
    user.status_changed_at = timezone.now()
    user.status_changed_by = by
    user.save(update_fields=["status", "status_reason", "status_changed_at", "status_changed_by"])
    journal.record(action, actor=by, obj=user, reason=reason)


@transaction.atomic
def suspend_account(user: User, *, reason: str, by: User | None) -> None:
    """Suspend an account: it can no longer log in or send."""
    if not reason.strip():
        raise AccountError(_("Un motif est obligatoire pour suspendre un compte."))
    if user.status == User.Status.CLOSED:
        raise AccountError(_("Ce compte est clôturé."))
    _set_status(
        user, User.Status.SUSPENDED, reason=reason.strip(), by=by, action="account.suspended"
    )


@transaction.atomic
def reactivate_account(user: User, *, by: User | None, reason: str = "") -> None:
    """Lift a suspension."""
    if user.status == User.Status.CLOSED:
        raise AccountError(_("Un compte clôturé ne peut pas être réactivé."))
    _set_status(
        user, User.Status.ACTIVE, reason=reason.strip(), by=by, action="account.reactivated"
    )


@transaction.atomic
@transaction.atomic
def close_account(user: User, *, reason: str, by: User | None) -> None:
    """Close an account for good (the reason is shown to its holder).

    The apps above learn it in the same transaction (``signals.account_closed``): the
    holder's own boxes close with the account and leave the directory.
    """
    if not reason.strip():
        raise AccountError(_("Un motif est obligatoire pour clôturer un compte."))
    _set_status(user, User.Status.CLOSED, reason=reason.strip(), by=by, action="account.closed")
    signals.account_closed.send(sender=User, user=user, by=by, reason=reason.strip())


# --- Adeli → RPPS ---------------------------------------------------------------------


@transaction.atomic
def switch_to_rpps(identity: ProfessionalIdentity, rpps: str, *, by: User | None) -> FormerAdeli:
    """Move a professional from Adeli to RPPS, keeping the same account and everything it holds.

    The former Adeli number stays valid at login for ADELI_TRANSITION_MONTHS.
    """
    if identity.id_type != ProfessionalIdentity.IdType.ADELI:
        raise AccountError(_("Ce professionnel est déjà identifié par son numéro RPPS."))
    try:
        pid = ids.parse_professional_id(rpps)
    except ids.IdentifierError as exc:
        raise AccountError(str(exc)) from None
    if pid.kind != "rpps":
        raise AccountError(_("Le nouveau numéro doit être un RPPS (11 chiffres)."))
    if User.objects.filter(username=pid.national_id).exists():
        raise AccountError(
            _("Le numéro RPPS %(rpps)s est déjà attribué à un autre compte.") % {"rpps": pid.number}
        )
    identity = ProfessionalIdentity.objects.select_for_update().get(pk=identity.pk)
    former_number = identity.id_number
    identity.id_type = ProfessionalIdentity.IdType.RPPS
    identity.id_number = pid.number
    identity.national_id = pid.national_id
    identity.save()
    user = identity.user
    user.username = pid.national_id
    user.save(update_fields=["username"])
    now = timezone.now()
    former = FormerAdeli.objects.create(
        identity=identity,
        adeli=former_number,
        switched_at=now,
        accepted_until=now + timedelta(days=30 * settings.ADELI_TRANSITION_MONTHS),
    )
    journal.record(
        "account.adeli_to_rpps", actor=by, obj=user, adeli=former_number, rpps=pid.number
    )
    return former


# --- Activation links -----------------------------------------------------------------


def _hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


@transaction.atomic
def issue_activation_link(user: User, *, by: User | None) -> str:
    """Create a single-use link (72 h) and return its URL path; the token is never stored."""
    if user.status != User.Status.ACTIVE:
        raise AccountError(_("Ce compte n'est pas actif : aucun lien ne peut être émis."))
    # Earlier links stop working: only the latest one given to the user counts.
    ActivationLink.objects.filter(user=user, used_at__isnull=True).update(used_at=timezone.now())
    token = secrets.token_urlsafe(32)
    purpose = (
        ActivationLink.Purpose.RESET
        if user.has_usable_password()
        else ActivationLink.Purpose.ACTIVATION
    )
    ActivationLink.objects.create(
        user=user,
        token_hash=_hash(token),
        purpose=purpose,
        expires_at=timezone.now() + timedelta(hours=settings.ACTIVATION_LINK_HOURS),
        created_by=by,
    )
    journal.record("account.activation_link_issued", actor=by, obj=user)
    return f"/activation/{token}/"


@transaction.atomic
def email_activation_link(user: User, *, by: User | None) -> None:
    """Issue a link and send it to the holder's personal address, never to the staff's screen."""
    if not user.email:
        raise AccountError(_("Ce compte n'a pas d'adresse e-mail personnelle."))
    path = issue_activation_link(user, by=by)
    recipient = user.email
    body = render_to_string(
        "accounts/emails/activation_link.txt",
        {
            "url": settings.SITE_URL + path,
            "hours": settings.ACTIVATION_LINK_HOURS,
            "operator": settings.OPERATOR_NAME,
            "reset": user.has_usable_password(),
        },
    )
    subject = _("Votre lien pour choisir un mot de passe")
    transaction.on_commit(lambda: send_mail(subject, body, None, [recipient], fail_silently=False))


def cancel_activation_links(user: User) -> int:
    """End the user's unused activation and reset links; how many were ended.

    A password or an address that changed ends the links issued before; so does a
    guardian's link to a minor (issue 17: the child's own login waits for majority).
    """
    return ActivationLink.objects.filter(user=user, used_at__isnull=True).update(
        used_at=timezone.now()
    )


def find_activation_link(token: str) -> ActivationLink:
    """The link a token designates, or AccountError saying why it cannot be used."""
    link = ActivationLink.objects.select_related("user").filter(token_hash=_hash(token)).first()
    if link is None:
        raise AccountError(_("Ce lien d'activation n'est pas valide."))
    if link.used_at is not None:
        raise AccountError(
            _("Ce lien d'activation a déjà été utilisé. Demandez-en un nouveau à l'équipe.")
        )
    if link.expires_at <= timezone.now():
        raise AccountError(_("Ce lien d'activation a expiré. Demandez-en un nouveau à l'équipe."))
    if link.user.status != User.Status.ACTIVE:
        raise AccountError(_("Ce compte n'est pas actif."))
    return link


# --- Second factor --------------------------------------------------------------------


def new_totp_secret() -> str:
    """A fresh TOTP key (hex), kept in the session until confirmed, then only sealed."""
    return secrets.token_hex(20)


def _totp(secret_hex: str) -> TOTP:
    return TOTP(bytes.fromhex(secret_hex), step=30, t0=0, digits=6)


def verify_pending_totp(secret_hex: str, code: str) -> bool:
    """Check a code against a secret not yet saved (enrolment)."""
    code = "".join(code.split())
    if not (code.isascii() and code.isdigit() and len(code) == 6):
        return False
    return _totp(secret_hex).verify(int(code), tolerance=1)


# A staff reset removes passkeys too: the holder enrols again from scratch.
DEVICE_MODELS: tuple[type[Device], ...] = (
    TOTPDevice,
    BackupCodeDevice,
    EmailCodeDevice,
    PasskeyDevice,
)


@dataclass
class Enrolment:
    user: User
    device: Device
    backup_codes: list[str]


def has_second_factor(user: User) -> bool:
    """Whether the account has a way to give a code at login (application or e-mail)."""
    return (
        TOTPDevice.objects.filter(user=user, confirmed=True).exists()
        or EmailCodeDevice.objects.filter(user=user, confirmed=True).exists()
    )


def email_device(user: User) -> EmailCodeDevice | None:
    return EmailCodeDevice.objects.filter(user=user, confirmed=True).first()


def _remove_second_factor(user: User) -> int:
    removed = 0
    for model in DEVICE_MODELS:
        count, _rows = model.objects.filter(user=user).delete()
        removed += count
    return removed


def _new_backup_codes(user: User) -> list[str]:
    device = BackupCodeDevice(user=user, name=_("Codes de secours"), confirmed=True)
    device.seal_secret(secrets.token_bytes(32))
    device.save()
    codes = [new_backup_code() for _ in range(settings.OTP_BACKUP_CODES)]
    device.set_codes(codes)
    return codes


def _new_totp_device(user: User, secret_hex: str, *, last_t: int = -1) -> TOTPDevice:
    device = TOTPDevice(
        user=user, name=_("Application"), confirmed=True, tolerance=1, last_t=last_t
    )
    device.seal_secret(bytes.fromhex(secret_hex))
    device.save()
    return device


def _enrol(user: User, secret_hex: str) -> Enrolment:
    _remove_second_factor(user)
    # last_t: the code just used to confirm must not be accepted again at login.
    device = _new_totp_device(user, secret_hex, last_t=_totp(secret_hex).t())
    return Enrolment(user, device, _new_backup_codes(user))


@transaction.atomic
def enrol_totp(
    user: User, *, secret_hex: str, code: str, request: HttpRequest | None = None
) -> Enrolment:
    """Confirm a TOTP device with a first code and create the backup codes."""
    if not verify_pending_totp(secret_hex, code):
        raise AccountError(_("Code incorrect. Vérifiez l'heure de votre téléphone et recommencez."))
    enrolment = _enrol(user, secret_hex)
    journal.record("account.otp_enrolled", actor=user, obj=user, request=request)
    return enrolment


@transaction.atomic
def use_email_codes(user: User, *, request: HttpRequest | None = None) -> Enrolment:
    """Replace the user's second factor by codes e-mailed to the personal address."""
    if not user.email:
        raise AccountError(_("Aucune adresse e-mail personnelle n'est connue pour ce compte."))
    _remove_second_factor(user)
    device = EmailCodeDevice(user=user, name=_("E-mail"), confirmed=True)
    device.seal_secret(secrets.token_bytes(32))
    device.save()
    enrolment = Enrolment(user, device, _new_backup_codes(user))
    journal.record("account.otp_enrolled", actor=user, obj=user, request=request, method="email")
    return enrolment


@dataclass(frozen=True)
class CodeSending:
    """What happened when a code was asked for by e-mail."""

    sent: bool
    wait_seconds: int = 0


def send_login_code(device: EmailCodeDevice) -> CodeSending:
    """E-mail a fresh login code, unless one left less than the cooldown ago."""
    allowed, data = device.generate_is_allowed()
    if not allowed:
        next_at = (data or {}).get("next_generation_at")
        wait = int((next_at - timezone.now()).total_seconds()) + 1 if next_at else 1
        return CodeSending(False, max(wait, 1))
    token = device.new_token()
    body = render_to_string(settings.OTP_EMAIL_BODY_TEMPLATE_PATH, {"token": token})
    send_mail(_("Votre code de connexion"), body, None, [device.user.email])
    return CodeSending(True)


@transaction.atomic
def activate_account(
    link: ActivationLink,
    *,
    password: str,
    secret_hex: str,
    code: str,
    request: HttpRequest | None = None,
) -> Enrolment:
    """Set the password and enrol the device in one go: a failure leaves the account untouched.

    The enrolment carries the user as saved with the new password: logging in any
    older copy would store a stale session hash and end the session at once.
    """
    link = ActivationLink.objects.select_for_update().select_related("user").get(pk=link.pk)
    if not link.is_usable:
        raise AccountError(
            _("Ce lien d'activation a déjà été utilisé. Demandez-en un nouveau à l'équipe.")
        )
    user = link.user
    enrolment = enrol_totp(user, secret_hex=secret_hex, code=code, request=request)
    _finish_activation(link, user, password, request)
    return enrolment


def _finish_activation(
    link: ActivationLink, user: User, password: str, request: HttpRequest | None
) -> None:
    had_password = user.has_usable_password()
    user.set_password(password)
    user.save(update_fields=["password"])
    link.used_at = timezone.now()
    link.save(update_fields=["used_at"])
    cancel_activation_links(user)
    journal.record("account.activated", actor=user, obj=user, request=request)
    if had_password:
        _notify(user, "password_changed")


@transaction.atomic
def activate_with_email_codes(
    link: ActivationLink, *, password: str, request: HttpRequest | None = None
) -> Enrolment:
    """Set the password and choose e-mailed codes; the link itself proved the address."""
    link = ActivationLink.objects.select_for_update().select_related("user").get(pk=link.pk)
    if not link.is_usable:
        raise AccountError(
            _("Ce lien d'activation a déjà été utilisé. Demandez-en un nouveau à l'équipe.")
        )
    user = link.user
    if not user.is_patient:
        raise AccountError(_("Les codes par e-mail sont réservés aux patients."))
    enrolment = use_email_codes(user, request=request)
    _finish_activation(link, user, password, request)
    return enrolment


@transaction.atomic
def change_password(user: User, *, new_password: str, request: HttpRequest | None = None) -> None:
    """Change the password of a logged-in user (old password checked by the form)."""
    user.set_password(new_password)
    user.save(update_fields=["password"])
    cancel_activation_links(user)
    journal.record("account.password_changed", actor=user, obj=user, request=request)
    _notify(user, "password_changed")


@transaction.atomic
def reset_second_factor(
    user: User, *, reason: str, by: User | None, request: HttpRequest | None = None
) -> None:
    """Staff remove every device of an account; its holder enrols again at the next login.

    Nothing secret is shown to staff or sent to the holder: the notice only says that
    it happened. Sessions verified with a removed device stop being verified.
    """
    if not reason.strip():
        raise AccountError(_("Un motif est obligatoire pour réinitialiser le second facteur."))
    removed = _remove_second_factor(user)
    journal.record(
        "account.second_factor_reset",
        actor=by,
        obj=user,
        request=request,
        reason=reason.strip(),
        devices=removed,
    )
    _notify(user, "second_factor_reset")


@transaction.atomic
def regenerate_backup_codes(user: User, *, request: HttpRequest | None = None) -> list[str]:
    """New backup codes for a holder past the second factor; the former ones stop working."""
    if not has_second_factor(user):
        raise AccountError(_("Enregistrez d'abord un second facteur."))
    BackupCodeDevice.objects.filter(user=user).delete()
    codes = _new_backup_codes(user)
    journal.record("account.backup_codes_regenerated", actor=user, obj=user, request=request)
    notify(user, "backup_codes_regenerated")
    return codes


def set_known_totp(user: User, *, secret_hex: str, backup_codes: list[str]) -> None:
    """Enrol a device with a given secret (demo data only: secrets the README can print)."""
    _remove_second_factor(user)
    _new_totp_device(user, secret_hex)
    device = BackupCodeDevice(user=user, name=_("Codes de secours"), confirmed=True)
    device.seal_secret(secrets.token_bytes(32))
    device.save()
    device.set_codes(backup_codes)


def add_email_codes(user: User) -> EmailCodeDevice:
    """Also accept codes e-mailed to the personal address (demo patient: both factors)."""
    EmailCodeDevice.objects.filter(user=user).delete()
    device = EmailCodeDevice(user=user, name=_("E-mail"), confirmed=True)
    device.seal_secret(secrets.token_bytes(32))
    device.save()
    return device


def login_expired(started: datetime) -> bool:
    return timezone.now() - started > timedelta(minutes=settings.LOGIN_STEP_MINUTES)


# --- Notices to the holder ------------------------------------------------------------------

_NOTICES = {
    "password_changed": (
        gettext_lazy("Votre mot de passe a été modifié"),
        "accounts/emails/password_changed.txt",
    ),
    "second_factor_reset": (
        gettext_lazy("Votre second facteur de connexion a été réinitialisé"),
        "accounts/emails/second_factor_reset.txt",
    ),
    "email_change_requested": (
        gettext_lazy("Demande de changement de votre adresse e-mail"),
        "accounts/emails/email_change_requested.txt",
    ),
    "email_changed": (
        gettext_lazy("Votre adresse e-mail a été remplacée"),
        "accounts/emails/email_changed.txt",
    ),
    # Passkeys and the account page (issue 16): one template says what changed.
    "passkey_added": (
        gettext_lazy("Une clé d'accès a été ajoutée à votre compte"),
        "accounts/emails/account_changed.txt",
    ),
    "passkey_renamed": (
        gettext_lazy("Une clé d'accès de votre compte a été renommée"),
        "accounts/emails/account_changed.txt",
    ),
    "passkey_removed": (
        gettext_lazy("Une clé d'accès a été retirée de votre compte"),
        "accounts/emails/account_changed.txt",
    ),
    "backup_codes_regenerated": (
        gettext_lazy("Vos codes de secours ont été renouvelés"),
        "accounts/emails/account_changed.txt",
    ),
    "sessions_ended": (
        gettext_lazy("Des sessions de votre compte ont été fermées"),
        "accounts/emails/account_changed.txt",
    ),
}


def _notify(user: User, notice: str, *, to: str = "", **context: object) -> None:
    """A content-free notice to the holder's personal address, sent after commit."""
    recipient = to or user.email
    if not recipient:
        return
    subject, template = _NOTICES[notice]
    body = render_to_string(
        template,
        {
            "operator": settings.OPERATOR_NAME,
            "login_url": settings.SITE_URL + "/connexion/",
            "account_url": settings.SITE_URL + "/compte/",
            **context,
        },
    )
    subject_text = str(subject)
    transaction.on_commit(
        lambda: send_mail(subject_text, body, None, [recipient], fail_silently=False)
    )


def notify(user: User, notice: str) -> None:
    """A content-free notice (one of ``_NOTICES``) to the holder, sent after commit."""
    _notify(user, notice, kind=notice)


# --- Personal address --------------------------------------------------------------------------


def _normalise_email(address: str) -> str:
    return User.objects.normalize_email(address.strip())


@transaction.atomic
def request_email_change(
    user: User, new_email: str, *, by: User, request: HttpRequest | None = None
) -> str:
    """Send a confirmation link to a new personal address; nothing changes until it is followed.

    ``by`` is the holder (who has just given a fresh code: checked by the caller with
    lockout.verify_code) or a staff member. The old address is told, without content.
    Returns the link's path (for tests and commands; never shown to staff).
    """
    new_email = _normalise_email(new_email)
    if not new_email:
        raise AccountError(_("Indiquez la nouvelle adresse e-mail."))
    if new_email.lower() == (user.email or "").lower():
        raise AccountError(_("C'est déjà l'adresse enregistrée."))
    now = timezone.now()
    EmailChange.objects.filter(user=user, used_at=None, cancelled_at=None).update(cancelled_at=now)
    token = secrets.token_urlsafe(32)
    EmailChange.objects.create(
        user=user,
        old_email=user.email or "",
        new_email=new_email,
        token_hash=_hash(token),
        created_at=now,
        expires_at=now + timedelta(hours=settings.EMAIL_CHANGE_LINK_HOURS),
        requested_by=by,
    )
    journal.record("account.email_change_requested", actor=by, obj=user, request=request)
    path = reverse("accounts:email_confirm", args=[token])
    url = settings.SITE_URL + path
    body = render_to_string(
        "accounts/emails/email_change_link.txt",
        {"url": url, "hours": settings.EMAIL_CHANGE_LINK_HOURS, "operator": settings.OPERATOR_NAME},
    )
    subject = _("Confirmez votre nouvelle adresse e-mail")
    transaction.on_commit(lambda: send_mail(subject, body, None, [new_email], fail_silently=False))
    _notify(user, "email_change_requested", hours=settings.EMAIL_CHANGE_LINK_HOURS)
    return path


def find_email_change(token: str) -> EmailChange:
    """The pending change a link designates, or AccountError saying why it cannot be used."""
    change = EmailChange.objects.select_related("user").filter(token_hash=_hash(token)).first()
    _check_email_change(change)
    assert change is not None
    return change


def _check_email_change(change: EmailChange | None) -> None:
    if change is None:
        raise AccountError(_("Ce lien de confirmation n'est pas valide."))
    if change.used_at is not None:
        raise AccountError(_("Ce lien de confirmation a déjà été utilisé."))
    if change.cancelled_at is not None:
        raise AccountError(_("Ce lien a été remplacé par une demande plus récente."))
    if change.expires_at <= timezone.now():
        raise AccountError(
            _("Ce lien de confirmation a expiré. Refaites la demande depuis votre compte.")
        )
    if change.user.status != User.Status.ACTIVE:
        raise AccountError(_("Ce compte n'est pas actif."))
    if (change.user.email or "") != change.old_email:
        raise AccountError(_("L'adresse du compte a changé depuis cette demande."))


@transaction.atomic
def confirm_email_change(token: str, *, request: HttpRequest | None = None) -> User:
    """Follow the link: the new address replaces the old one, once."""
    found = EmailChange.objects.filter(token_hash=_hash(token)).values_list("pk", flat=True).first()
    change = (
        EmailChange.objects.select_for_update().select_related("user").filter(pk=found).first()
        if found is not None
        else None
    )
    _check_email_change(change)
    assert change is not None
    user = change.user
    old = user.email
    user.email = change.new_email
    user.save(update_fields=["email"])
    change.used_at = timezone.now()
    change.save(update_fields=["used_at"])
    # A reset link e-mailed to the old address must not outlive it.
    cancel_activation_links(user)
    journal.record("account.email_changed", actor=user, obj=user, request=request)
    if old:
        _notify(user, "email_changed", to=old)
    return user
