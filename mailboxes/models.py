"""Hosted domains, mailboxes and messages."""

from __future__ import annotations

from django.db import models
from django.utils.translation import gettext_lazy as _


class HostedDomain(models.Model):
    """A mail domain this operator serves (e.g. ``medecin.mssante.fr``)."""

    class Kind(models.TextChoices):
        PROFESSIONAL = "professional", _("Professionnels")
        PATIENT = "patient", _("Patients")

    name = models.CharField(_("domaine"), max_length=253, unique=True)
    description = models.CharField(_("description"), max_length=200, blank=True)
    kind = models.CharField(
        _("usage"), max_length=16, choices=Kind.choices, default=Kind.PROFESSIONAL
    )
    active = models.BooleanField(_("actif"), default=True)
    created_at = models.DateTimeField(_("créé le"), auto_now_add=True)

    class Meta:
        verbose_name = _("domaine hébergé")
        verbose_name_plural = _("domaines hébergés")
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name

    def save(self, *args: object, **kwargs: object) -> None:
        self.name = self.name.strip().lower().rstrip(".")
        super().save(*args, **kwargs)  # type: ignore[arg-type]
