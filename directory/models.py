"""The professional directory: organisations, mailbox entries, practitioners and import runs."""

from __future__ import annotations

from typing import Any

from django.core.exceptions import ValidationError
from django.db import models
from django.utils.translation import gettext_lazy as _
from stdnum.fr import siret

from mssante.lib.identifiers import IdentifierError, parse_finess


class Organisation(models.Model):
    """A structure (legal entity or site) identified by FINESS and/or SIRET."""

    name = models.CharField(_("raison sociale"), max_length=200)
    finess = models.CharField(_("FINESS"), max_length=9, blank=True)
    siret = models.CharField(_("SIRET"), max_length=14, blank=True)
    address_line_1 = models.CharField(_("adresse (ligne 1)"), max_length=200, blank=True)
    address_line_2 = models.CharField(_("adresse (ligne 2)"), max_length=200, blank=True)
    address_line_3 = models.CharField(_("adresse (ligne 3)"), max_length=200, blank=True)
    postcode = models.CharField(_("code postal"), max_length=10, blank=True)
    city = models.CharField(_("commune"), max_length=100, blank=True)
    created_at = models.DateTimeField(_("créée le"), auto_now_add=True)
    updated_at = models.DateTimeField(_("modifiée le"), auto_now=True)

    class Meta:
        verbose_name = _("organisation")
        verbose_name_plural = _("organisations")
        ordering = ["name"]
        constraints = [
            models.UniqueConstraint(
                fields=["finess"], condition=~models.Q(finess=""), name="unique_organisation_finess"
            ),
            models.UniqueConstraint(
                fields=["siret"], condition=~models.Q(siret=""), name="unique_organisation_siret"
            ),
            models.CheckConstraint(
                condition=~models.Q(finess="", siret=""), name="organisation_has_finess_or_siret"
            ),
        ]

    def __str__(self) -> str:
        return self.name

    def clean(self) -> None:
        errors: dict[str, Any] = {}
        if self.finess:
            try:
                self.finess = parse_finess(self.finess).number
            except IdentifierError as exc:
                errors["finess"] = str(exc)
        if self.siret:
            self.siret = "".join(self.siret.split())
            if not siret.is_valid(self.siret):
                errors["siret"] = _(
                    "Numéro SIRET invalide : 14 chiffres, clé de contrôle comprise."
                )
        if not self.finess and not self.siret and "finess" not in errors:
            errors["finess"] = _("Indiquez un numéro FINESS ou SIRET.")
        if errors:
            raise ValidationError(errors)


class ImportRun(models.Model):
    """One run of an Annuaire Santé import, with its summary (shown in the admin)."""

    class Kind(models.TextChoices):
        MSS = "mss", _("Extraction Correspondance MSSanté")
        PS = "ps", _("PS_LibreAcces Personne activité")

    class Status(models.TextChoices):
        RUNNING = "running", _("En cours")
        SUCCEEDED = "succeeded", _("Terminé")
        REFUSED = "refused", _("Refusé (garde-fou)")
        FAILED = "failed", _("Échec")

    kind = models.CharField(_("fichier"), max_length=4, choices=Kind.choices)
    file_name = models.CharField(_("nom du fichier"), max_length=255)
    status = models.CharField(
        _("statut"), max_length=10, choices=Status.choices, default=Status.RUNNING
    )
    started_at = models.DateTimeField(_("début"), auto_now_add=True)
    finished_at = models.DateTimeField(_("fin"), null=True, blank=True)
    read = models.PositiveIntegerField(_("lues"), default=0)
    added = models.PositiveIntegerField(_("ajoutées"), default=0)
    updated = models.PositiveIntegerField(_("modifiées"), default=0)
    unchanged = models.PositiveIntegerField(_("inchangées"), default=0)
    deactivated = models.PositiveIntegerField(_("désactivées"), default=0)
    rejected = models.PositiveIntegerField(_("rejetées"), default=0)
    rejected_lines = models.JSONField(
        _("premières lignes rejetées"), default=list, blank=True, help_text=_("Numéro et motif.")
    )
    message = models.TextField(_("message"), blank=True)

    class Meta:
        verbose_name = _("import de l'annuaire")
        verbose_name_plural = _("imports de l'annuaire")
        ordering = ["-started_at"]

    def __str__(self) -> str:
        return f"{self.get_kind_display()} — {self.started_at:%Y-%m-%d %H:%M}"


class DirectoryEntry(models.Model):
    """One mailbox in the directory: ours (source local) or from the national extraction."""

    class Kind(models.TextChoices):
        PERSONAL = "PER", _("Nominative")
        ORGANISATIONAL = "ORG", _("Organisationnelle")
        APPLICATIVE = "APP", _("Applicative")

    class Source(models.TextChoices):
        LOCAL = "local", _("Nos boîtes")
        NATIONAL = "national", _("Annuaire national")

    address = models.CharField(_("adresse"), max_length=254, unique=True)
    kind = models.CharField(_("type"), max_length=3, choices=Kind.choices)
    source = models.CharField(_("source"), max_length=8, choices=Source.choices)
    active = models.BooleanField(_("active"), default=True)
    civility = models.CharField(_("civilité"), max_length=20, blank=True)
    first_name = models.CharField(_("prénom"), max_length=100, blank=True)
    last_name = models.CharField(_("nom"), max_length=100, blank=True)
    id_type = models.CharField(_("type d'identifiant"), max_length=8, blank=True)
    national_id = models.CharField(_("identifiant national"), max_length=20, blank=True)
    profession_code = models.CharField(_("code profession"), max_length=8, blank=True)
    profession_label = models.CharField(_("profession"), max_length=120, blank=True)
    specialty_code = models.CharField(_("code savoir-faire"), max_length=16, blank=True)
    specialty_label = models.CharField(_("spécialité"), max_length=120, blank=True)
    structure_id_type = models.CharField(
        _("type d'identifiant structure"), max_length=8, blank=True
    )
    structure_id = models.CharField(_("identifiant structure"), max_length=20, blank=True)
    structure_name = models.CharField(_("structure"), max_length=200, blank=True)
    service = models.CharField(_("service"), max_length=200, blank=True)
    digitization = models.BooleanField(_("dématérialisation acceptée"), default=False)
    address_line = models.CharField(_("adresse postale"), max_length=255, blank=True)
    postcode = models.CharField(_("code postal"), max_length=10, blank=True)
    department = models.CharField(_("département"), max_length=60, blank=True)
    city = models.CharField(_("commune"), max_length=100, blank=True)
    # Normalised copies (lowercase, no accents) computed in Python at write time,
    # so searches compare like with like on SQLite and PostgreSQL without unaccent.
    last_name_norm = models.CharField(max_length=100, blank=True, editable=False)
    city_norm = models.CharField(max_length=100, blank=True, editable=False)
    search_text = models.CharField(max_length=600, blank=True, editable=False)
    content_hash = models.CharField(max_length=32, blank=True, editable=False)
    seen_in_import = models.BigIntegerField(null=True, blank=True, editable=False)
    updated_at = models.DateTimeField(_("mise à jour"), auto_now=True)

    class Meta:
        verbose_name = _("entrée de l'annuaire")
        verbose_name_plural = _("entrées de l'annuaire")
        ordering = ["last_name_norm", "first_name", "address"]
        # The prefix indexes of the autocomplete (C collation, so that LIKE 'x%'
        # and ORDER BY share one index whatever the database collation) and the
        # trigram index are PostgreSQL-only: see migration 0002.
        indexes = [
            models.Index(fields=["national_id"], name="directory_national_id"),
            models.Index(fields=["source", "active"], name="directory_source_active"),
            models.Index(fields=["postcode"], name="directory_postcode"),
        ]

    def __str__(self) -> str:
        return self.address

    @property
    def display_name(self) -> str:
        if self.kind == self.Kind.PERSONAL and (self.first_name or self.last_name):
            return " ".join(p for p in (self.first_name, self.last_name) if p)
        return self.structure_name or self.service or self.address


class WithheldAddress(models.Model):
    """One of our own addresses that must not be published: liste rouge or closed box.

    Kept by ``services.sync_mailbox`` from what the mailboxes app tells it, so the
    national import never stores a stale copy of such a box (the directory reads
    no table of the mailboxes app). Only the address: nothing else about the box.
    Patient boxes are not listed here (their address holds the INS): the import
    withholds the whole patient domain instead.
    """

    address = models.CharField(_("adresse"), max_length=254, unique=True)
    withheld_at = models.DateTimeField(_("retirée le"), auto_now=True)

    class Meta:
        verbose_name = _("adresse non publiée")
        verbose_name_plural = _("adresses non publiées")

    def __str__(self) -> str:
        return self.address


class Practitioner(models.Model):
    """A professional from PS_LibreAcces, one row per national id (first activity kept)."""

    national_id = models.CharField(_("identifiant national"), max_length=20, unique=True)
    id_type = models.CharField(_("type d'identifiant"), max_length=8, blank=True)
    civility = models.CharField(_("civilité"), max_length=40, blank=True)
    first_name = models.CharField(_("prénom"), max_length=100, blank=True)
    last_name = models.CharField(_("nom"), max_length=100, blank=True)
    profession_code = models.CharField(_("code profession"), max_length=8, blank=True)
    profession_label = models.CharField(_("profession"), max_length=120, blank=True)
    specialty_code = models.CharField(_("code savoir-faire"), max_length=16, blank=True)
    specialty_label = models.CharField(_("spécialité"), max_length=120, blank=True)
    structure_name = models.CharField(_("lieu d'exercice"), max_length=200, blank=True)
    siret = models.CharField(_("SIRET"), max_length=14, blank=True)
    finess = models.CharField(_("FINESS"), max_length=9, blank=True)
    postcode = models.CharField(_("code postal"), max_length=10, blank=True)
    city = models.CharField(_("commune"), max_length=100, blank=True)
    city_norm = models.CharField(max_length=100, blank=True, editable=False)
    department = models.CharField(_("département"), max_length=60, blank=True)
    active = models.BooleanField(_("actif"), default=True)
    content_hash = models.CharField(max_length=32, blank=True, editable=False)
    seen_in_import = models.BigIntegerField(null=True, blank=True, editable=False)
    updated_at = models.DateTimeField(_("mise à jour"), auto_now=True)

    class Meta:
        verbose_name = _("professionnel (RPPS/Adeli)")
        verbose_name_plural = _("professionnels (RPPS/Adeli)")
        ordering = ["last_name", "first_name"]

    def __str__(self) -> str:
        return f"{self.first_name} {self.last_name} ({self.national_id})"
