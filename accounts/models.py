"""Who may log in: users, their professional or patient identity, activation links."""

from __future__ import annotations

from django.conf import settings
from django.contrib.auth.models import AbstractUser
from django.db import models
from django.utils import timezone
from django.utils.translation import gettext_lazy as _


class User(AbstractUser):
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
