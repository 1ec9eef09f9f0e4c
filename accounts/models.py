"""Who may log in: users, their professional or patient identity, activation links."""

from __future__ import annotations

import base64
import hmac
import logging
import secrets
import time
from datetime import timedelta
from typing import ClassVar

from django.conf import settings
from django.contrib.auth.models import AbstractUser
from django.db import models
from django.utils import timezone
from django.utils.translation import gettext_lazy as _
from django_otp.models import CooldownMixin, Device, DeviceManager, TimestampMixin
from django_otp.oath import TOTP

from accounts import sealing
from mssante.lib import crypto

log = logging.getLogger(__name__)


# django-otp is untyped: the stubs cannot type the devices' reverse managers on User.
class User(AbstractUser):  # type: ignore[django-manager-missing]
    """An account. ``username`` is the canonical login key (national id, INS matricule or staff name)."""

    class Kind(models.TextChoices):
        PROFESSIONAL = "professional", _("Professionnel")
        PATIENT = "patient", _("Patient")
        STAFF = "staff", _("Équipe de l'opérateur")

    class Status(models.TextChoices):
        ACTIVE = "active", _("Actif")
        SUSPENDED = "suspended", _("Suspendu")
        CLOSED = "closed", _("Clôturé")

    kind = models.CharField(_("type de compte"), max_length=16, choices=Kind.choices)
    status = models.CharField(
        _("statut"), max_length=16, choices=Status.choices, default=Status.ACTIVE
    )
    status_reason = models.TextField(_("motif du statut"), blank=True)
    status_changed_at = models.DateTimeField(_("statut modifié le"), null=True, blank=True)
    status_changed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        verbose_name=_("statut modifié par"),
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
    )
    # AbstractUser.email is the personal address used for notifications and links.

    class Meta:
        verbose_name = _("compte")
        verbose_name_plural = _("comptes")

    def __str__(self) -> str:
        name = self.get_full_name()
        return f"{name} ({self.username})" if name else self.username

    @property
    def is_professional(self) -> bool:
        return self.kind == self.Kind.PROFESSIONAL

    @property
    def is_patient(self) -> bool:
        return self.kind == self.Kind.PATIENT

    @property
    def is_open(self) -> bool:
        return self.status == self.Status.ACTIVE


class ProfessionalIdentity(models.Model):
    """RPPS or Adeli identity, profession and the eligibility to hold a mailbox."""

    class IdType(models.TextChoices):
        RPPS = "rpps", "RPPS"
        ADELI = "adeli", "Adeli"

    user = models.OneToOneField(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="professional"
    )
    id_type = models.CharField(_("type d'identifiant"), max_length=8, choices=IdType.choices)
    id_number = models.CharField(_("numéro"), max_length=11)
    national_id = models.CharField(_("identifiant national"), max_length=12, unique=True)
    profession_table = models.CharField(_("nomenclature"), max_length=8, default="G15")
    profession_code = models.CharField(_("code profession"), max_length=8)
    profession_label = models.CharField(_("profession"), max_length=120)
    category = models.CharField(_("catégorie"), max_length=32, blank=True)
    specialty_code = models.CharField(_("code savoir-faire"), max_length=16, blank=True)
    specialty_label = models.CharField(_("spécialité"), max_length=120, blank=True)
    eligibility_override = models.BooleanField(
        _("éligibilité accordée par l'équipe"), default=False
    )
    eligibility_override_reason = models.TextField(_("motif de la dérogation"), blank=True)
    eligibility_override_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    eligibility_override_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        verbose_name = _("identité professionnelle")
        verbose_name_plural = _("identités professionnelles")
        constraints = [
            models.UniqueConstraint(fields=["id_type", "id_number"], name="unique_professional_id"),
        ]

    def __str__(self) -> str:
        return f"{self.get_id_type_display()} {self.id_number}"


class FormerAdeli(models.Model):
    """An Adeli number a professional held before switching to RPPS, accepted at login for a while."""

    identity = models.ForeignKey(
        ProfessionalIdentity, on_delete=models.CASCADE, related_name="former_adeli"
    )
    adeli = models.CharField(_("ancien numéro Adeli"), max_length=9, unique=True)
    switched_at = models.DateTimeField(_("passage au RPPS le"), default=timezone.now)
    accepted_until = models.DateTimeField(_("accepté à la connexion jusqu'au"))

    class Meta:
        verbose_name = _("ancien numéro Adeli")
        verbose_name_plural = _("anciens numéros Adeli")

    def __str__(self) -> str:
        return f"Adeli {self.adeli}"


class PatientIdentity(models.Model):
    """A patient's INS identity (matricule, OID and the traits that make it qualified)."""

    class Oid(models.TextChoices):
        NIR = "1.2.250.1.213.1.4.8", _("INS-NIR")
        NIA = "1.2.250.1.213.1.4.9", _("INS-NIA")
        TEST = "1.2.250.1.213.1.4.10", _("INS de test")
        DEMO = "1.2.250.1.213.1.4.11", _("INS de démonstration")

    class Sex(models.TextChoices):
        FEMALE = "F", _("Féminin")
        MALE = "M", _("Masculin")

    user = models.OneToOneField(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="patient"
    )
    ins = models.CharField(_("matricule INS"), max_length=15, unique=True)
    oid = models.CharField(_("OID"), max_length=32, choices=Oid.choices, default=Oid.NIR)
    birth_name = models.CharField(_("nom de naissance"), max_length=100)
    first_names = models.CharField(_("prénoms"), max_length=200)
    used_name = models.CharField(_("nom utilisé"), max_length=100, blank=True)
    birth_date = models.DateField(_("date de naissance"))
    sex = models.CharField(_("sexe"), max_length=1, choices=Sex.choices)
    birth_place = models.CharField(_("lieu de naissance (code INSEE)"), max_length=5, blank=True)
    qualified = models.BooleanField(_("INS qualifiée"), default=False)

    class Meta:
        verbose_name = _("identité patient")
        verbose_name_plural = _("identités patient")

    def __str__(self) -> str:
        return f"INS {self.ins}"

    @property
    def first_first_name(self) -> str:
        return self.first_names.split()[0] if self.first_names else ""


class ActivationLink(models.Model):
    """A single-use link where a user sets a password and enrols a device.

    Only a SHA-256 of the token is stored: a leaked database row cannot be used
    to activate someone else's account.
    """

    class Purpose(models.TextChoices):
        ACTIVATION = "activation", _("Activation du compte")
        RESET = "reset", _("Réinitialisation")

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="activation_links"
    )
    token_hash = models.CharField(max_length=64, unique=True)
    purpose = models.CharField(max_length=16, choices=Purpose.choices)
    created_at = models.DateTimeField(default=timezone.now)
    expires_at = models.DateTimeField()
    used_at = models.DateTimeField(null=True, blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )

    class Meta:
        verbose_name = _("lien d'activation")
        verbose_name_plural = _("liens d'activation")

    def __str__(self) -> str:
        return f"{self.get_purpose_display()} — {self.user}"

    @property
    def is_usable(self) -> bool:
        return self.used_at is None and self.expires_at > timezone.now()


# --- Second factor --------------------------------------------------------------------
#
# django-otp stays the framework (match_token, OTPMiddleware, OTPAdminSite, persistent
# ids), but its plugin models keep TOTP keys, backup codes and e-mailed codes in clear
# and come with admin pages that show and edit them. These devices subclass its
# abstract Device instead: every secret is sealed with the master keys (accounts.sealing),
# codes are stored as HMACs under a sealed per-device key, and no admin is registered.


class SealedSecretMixin(models.Model):
    """One secret per device, sealed under the master keys and bound to the device's user."""

    seal_context: ClassVar[str]

    key_id = models.CharField(max_length=64, editable=False)
    wrapped_key = models.BinaryField(editable=False)
    sealed_secret = models.BinaryField(editable=False)

    class Meta:
        abstract = True

    def seal_secret(self, secret: bytes) -> None:
        sealed = sealing.seal(secret, purpose=self.seal_context, user_id=self._user_id())
        self.key_id, self.wrapped_key, self.sealed_secret = (
            sealed.key_id,
            sealed.wrapped_key,
            sealed.ciphertext,
        )

    def usable_secret(self) -> bytes | None:
        """The secret, or None when it cannot be opened (altered, moved, key withdrawn).

        A device that cannot be opened refuses every code rather than fail the page.
        """
        try:
            return self.open_secret()
        except crypto.BlobIntegrityError:
            log.error("second factor %s of user %s cannot be opened", self.pk, self._user_id())
            return None

    def open_secret(self) -> bytes:
        return sealing.unseal(
            self.key_id,
            self.wrapped_key,
            self.sealed_secret,
            purpose=self.seal_context,
            user_id=self._user_id(),
        )

    def _user_id(self) -> int:
        user_id = getattr(self, "user_id", None)
        assert user_id is not None, "a device secret is sealed for a given user"
        return int(user_id)


def _digits(token: object, digits: int) -> int | None:
    text = "".join(str(token).split())
    if len(text) != digits or not (text.isascii() and text.isdigit()):
        return None
    return int(text)


class TOTPDevice(TimestampMixin, SealedSecretMixin, Device):
    """An authenticator application (RFC 6238), its key sealed at rest."""

    seal_context = "totp"

    step = models.PositiveSmallIntegerField(default=30)
    t0 = models.BigIntegerField(default=0)
    digits = models.PositiveSmallIntegerField(default=6)
    tolerance = models.PositiveSmallIntegerField(default=1)
    drift = models.SmallIntegerField(default=0)
    # The time step of the last code accepted: a code is never accepted twice.
    last_t = models.BigIntegerField(default=-1)

    objects: ClassVar[models.Manager[TOTPDevice]] = DeviceManager()

    class Meta(Device.Meta):
        verbose_name = _("application d'authentification")
        verbose_name_plural = _("applications d'authentification")

    def __str__(self) -> str:
        return f"{self._meta.verbose_name} — {self.user_id}"

    @property
    def bin_key(self) -> bytes:
        return self.open_secret()

    def verify_token(self, token: object) -> bool:
        value = _digits(token, self.digits)
        key = self.usable_secret() if value is not None else None
        if value is None or key is None:
            return False
        checker = TOTP(key, self.step, self.t0, self.digits, self.drift)
        checker.time = time.time()
        if not checker.verify(value, self.tolerance, self.last_t + 1):
            return False
        accepted_t = checker.t()
        # Conditional update: of two requests racing with the same code, one wins.
        won = TOTPDevice.objects.filter(pk=self.pk, last_t__lt=accepted_t).update(
            last_t=accepted_t, drift=checker.drift, last_used_at=timezone.now()
        )
        if not won:
            return False
        self.refresh_from_db(fields=["last_t", "drift", "last_used_at"])
        return True


def new_backup_code() -> str:
    """8 characters of base32 (40 bits), lower case: easy to copy by hand."""
    return base64.b32encode(secrets.token_bytes(5)).decode().lower()


def normalise_backup_code(token: object) -> str:
    return "".join(ch for ch in str(token).lower() if ch.isalnum())


class BackupCodeDevice(TimestampMixin, SealedSecretMixin, Device):
    """The 10 backup codes, each usable once, kept only as HMACs under a sealed key."""

    seal_context = "backup"

    objects: ClassVar[models.Manager[BackupCodeDevice]] = DeviceManager()

    class Meta(Device.Meta):
        verbose_name = _("codes de secours")
        verbose_name_plural = _("codes de secours")

    def __str__(self) -> str:
        return f"{self._meta.verbose_name} — {self.user_id}"

    def set_codes(self, codes: list[str]) -> None:
        """Store the HMACs of these codes (the device is saved and its key sealed)."""
        key = self.open_secret()
        BackupCode.objects.filter(device=self).delete()
        BackupCode.objects.bulk_create(
            [
                BackupCode(device=self, code_hash=sealing.mac(key, normalise_backup_code(c)))
                for c in codes
            ]
        )

    def verify_token(self, token: object) -> bool:
        candidate = normalise_backup_code(token)
        if not (8 <= len(candidate) <= 16):
            return False
        key = self.usable_secret()
        if key is None:
            return False
        digest = sealing.mac(key, candidate)
        found = None
        # Compare with every stored code, in constant time each, without stopping early.
        for pk, stored in BackupCode.objects.filter(device=self).values_list("pk", "code_hash"):
            if hmac.compare_digest(stored, digest):
                found = pk
        if found is None:
            return False
        # Deleting is the single use: of two requests racing with one code, one wins.
        deleted, _rows = BackupCode.objects.filter(pk=found).delete()
        if not deleted:
            return False
        self.set_last_used_timestamp(commit=False)
        BackupCodeDevice.objects.filter(pk=self.pk).update(last_used_at=self.last_used_at)
        return True


class BackupCode(models.Model):
    device = models.ForeignKey(BackupCodeDevice, on_delete=models.CASCADE, related_name="codes")
    code_hash = models.CharField(max_length=64)

    class Meta:
        verbose_name = _("code de secours")
        verbose_name_plural = _("codes de secours")

    def __str__(self) -> str:
        return f"{self._meta.verbose_name} #{self.pk}"


class EmailCodeDevice(TimestampMixin, CooldownMixin, SealedSecretMixin, Device):
    """Codes e-mailed to the account's confirmed personal address (patients' choice).

    The address is always ``user.email``, which changes only through a confirmed
    link (services.request_email_change); the code pending is kept as an HMAC.
    """

    seal_context = "email"

    token_hash = models.CharField(max_length=64, blank=True, editable=False)
    valid_until = models.DateTimeField(null=True, blank=True, editable=False)

    objects: ClassVar[models.Manager[EmailCodeDevice]] = DeviceManager()

    class Meta(Device.Meta):
        verbose_name = _("codes par e-mail")
        verbose_name_plural = _("codes par e-mail")

    def __str__(self) -> str:
        return f"{self._meta.verbose_name} — {self.user_id}"

    def get_cooldown_duration(self) -> int:
        return int(settings.OTP_EMAIL_COOLDOWN_DURATION)

    def new_token(self) -> str:
        """A fresh 6-digit code (the previous one stops working); saved as an HMAC."""
        token = f"{secrets.randbelow(10**6):06d}"
        self.token_hash = sealing.mac(self.open_secret(), token)
        self.valid_until = timezone.now() + timedelta(seconds=settings.OTP_EMAIL_TOKEN_VALIDITY)
        self.cooldown_set(commit=False)
        self.save(update_fields=["token_hash", "valid_until", "last_generated_timestamp"])
        return token

    def verify_token(self, token: object) -> bool:
        value = _digits(token, 6)
        if value is None or not self.token_hash or self.valid_until is None:
            return False
        key = self.usable_secret()
        if self.valid_until <= timezone.now() or key is None:
            return False
        digest = sealing.mac(key, f"{value:06d}")
        if not hmac.compare_digest(self.token_hash, digest):
            return False
        won = EmailCodeDevice.objects.filter(pk=self.pk, token_hash=digest).update(
            token_hash="", valid_until=None, last_used_at=timezone.now()
        )
        return bool(won)


# --- Personal address changes ---------------------------------------------------------


class EmailChange(models.Model):
    """A requested new personal address, applied only when the link sent to it is followed.

    Only a SHA-256 of the link's token is stored, as for activation links.
    """

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="email_changes"
    )
    old_email = models.EmailField(_("ancienne adresse"), blank=True)
    new_email = models.EmailField(_("nouvelle adresse"))
    token_hash = models.CharField(max_length=64, unique=True, editable=False)
    created_at = models.DateTimeField(default=timezone.now)
    expires_at = models.DateTimeField()
    used_at = models.DateTimeField(null=True, blank=True)
    cancelled_at = models.DateTimeField(null=True, blank=True)
    requested_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )

    class Meta:
        verbose_name = _("changement d'adresse personnelle")
        verbose_name_plural = _("changements d'adresse personnelle")

    def __str__(self) -> str:
        return f"{self._meta.verbose_name} — {self.user}"

    @property
    def is_usable(self) -> bool:
        return (
            self.used_at is None and self.cancelled_at is None and self.expires_at > timezone.now()
        )


# --- Guessing passwords and codes -----------------------------------------------------


class LoginThrottle(models.Model):
    """Attempts on one login key from clients it does not know, whatever their addresses.

    ``key`` is the lockout key (``accounts.lockout.lock_key``): one per account, or the
    normalised form of an identifier no account has.
    """

    key = models.CharField(max_length=160, unique=True)
    attempts = models.PositiveIntegerField(default=0)
    last_attempt_at = models.DateTimeField(null=True, blank=True)
    next_allowed_at = models.DateTimeField(null=True, blank=True)
    notified_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        verbose_name = _("ralentissement de connexion")
        verbose_name_plural = _("ralentissements de connexion")

    def __str__(self) -> str:
        return self.key


class KnownAddress(models.Model):
    """A network address an account completed a login from (kept as a keyed hash)."""

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="known_addresses"
    )
    address_hash = models.CharField(max_length=64)
    last_login_at = models.DateTimeField(default=timezone.now)

    class Meta:
        verbose_name = _("adresse réseau connue")
        verbose_name_plural = _("adresses réseau connues")
        constraints = [
            models.UniqueConstraint(fields=["user", "address_hash"], name="unique_known_address"),
        ]

    def __str__(self) -> str:
        return f"{self._meta.verbose_name} — {self.user}"


# --- Pro Santé Connect (issue 16) -------------------------------------------------------


class ProSanteConnectDevice(TimestampMixin, Device):
    """Pro Santé Connect as the session's second factor: no secret, no code.

    A sign-in through PSC at a level listed in PSC_STRONG_LEVELS (CPS card, e-CPS) is
    both factors: the view logs the session in with this device so that django-otp sees
    it verified. It never accepts a typed code (``verify_token`` is always false).
    """

    last_level: models.CharField[str, str] = models.CharField(
        _("dernier niveau"), max_length=16, blank=True
    )

    objects: ClassVar[models.Manager[ProSanteConnectDevice]] = DeviceManager()

    class Meta(Device.Meta):
        verbose_name = _("connexion Pro Santé Connect")
        verbose_name_plural = _("connexions Pro Santé Connect")

    def __str__(self) -> str:
        return f"{self._meta.verbose_name} — {self.user_id}"

    def verify_token(self, token: object) -> bool:
        return False


# --- Passkeys and sessions (issue 16) ----------------------------------------------------


class PasskeyDevice(TimestampMixin, Device):
    """A WebAuthn credential (passkey) registered by its holder (accounts.passkeys).

    Nothing here is secret: the authenticator keeps the private key, the portal its
    public half, the credential's id and the signature counter last seen (a counter
    that does not grow betrays a cloned authenticator or a replay). A passkey never
    takes a typed code: ``verify_token`` refuses every one, so django-otp's
    ``match_token`` skips it; it is used through the WebAuthn ceremony alone.
    """

    # base64url of the credential id the authenticator chose (at most 1,023 bytes).
    credential_id: models.CharField[str, str] = models.CharField(
        max_length=1400, unique=True, editable=False
    )
    public_key: models.BinaryField[bytes, bytes] = models.BinaryField(editable=False)
    sign_count: models.BigIntegerField[int, int] = models.BigIntegerField(default=0, editable=False)
    aaguid: models.CharField[str, str] = models.CharField(max_length=36, blank=True, editable=False)
    transports = models.JSONField(default=list, blank=True, editable=False)
    backed_up: models.BooleanField[bool, bool] = models.BooleanField(default=False, editable=False)

    objects: ClassVar[models.Manager[PasskeyDevice]] = DeviceManager()

    class Meta(Device.Meta):
        verbose_name = _("clé d'accès")
        verbose_name_plural = _("clés d'accès")

    def __str__(self) -> str:
        return f"{self._meta.verbose_name} — {self.user_id}"

    def verify_token(self, token: object) -> bool:
        return False


class AccountSession(models.Model):
    """One signed-in session of an account, for the holder to see and end (accounts.account_sessions).

    The session's key is never stored: only its SHA-256, enough to find the record of the
    session a request carries and impossible to turn back into a cookie. Ending a
    session marks it here; the middleware logs out any request whose session is marked.
    """

    class Method(models.TextChoices):
        PASSWORD_CODE = "password_code", _("Mot de passe et code à usage unique")
        PASSWORD_PASSKEY = "password_passkey", _("Mot de passe et clé d'accès")
        PASSKEY = "passkey", _("Clé d'accès")
        PSC = "psc", _("Pro Santé Connect")

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="account_sessions"
    )
    key_hash = models.CharField(max_length=64, unique=True, editable=False)
    method = models.CharField(_("méthode"), max_length=24, choices=Method.choices)
    # "Firefox sur Windows": a summary, never the whole User-Agent string.
    device = models.CharField(_("appareil"), max_length=80, blank=True)
    ip = models.GenericIPAddressField(_("adresse IP"), null=True, blank=True)
    created_at = models.DateTimeField(_("ouverte le"), default=timezone.now)
    last_seen_at = models.DateTimeField(_("dernière activité"), default=timezone.now)
    ended_at = models.DateTimeField(_("fermée le"), null=True, blank=True)

    class Meta:
        verbose_name = _("session ouverte")
        verbose_name_plural = _("sessions ouvertes")
        indexes = [models.Index(fields=["user", "ended_at"], name="account_session_open")]

    def __str__(self) -> str:
        return f"{self._meta.verbose_name} — {self.user_id}"
