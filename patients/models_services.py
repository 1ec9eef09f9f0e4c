"""Connected services: the applications a patient stopped from writing to them, and the history.

An applicative box (``Mailbox`` of kind APP: a lab's software, a hospital's results
server…) may write to every patient by default; a patient revokes it from
/patient/services/ and may allow it again. ``ServiceRevocation`` is the current state
(one row while the service is refused), ``ServiceChange`` the history shown in "Mes
échanges de données" (one row per change, never updated).
"""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.utils import timezone
from django.utils.translation import gettext_lazy as _


class ServiceRevocation(models.Model):
    """The patient refuses the messages of this applicative box (no row: allowed)."""

    patient_box = models.ForeignKey(
        "mailboxes.Mailbox",
        verbose_name=_("boîte du patient"),
        on_delete=models.CASCADE,
        related_name="+",
    )
    service = models.ForeignKey(
        "mailboxes.Mailbox",
        verbose_name=_("service connecté"),
        on_delete=models.CASCADE,
        related_name="+",
    )
    revoked_at = models.DateTimeField(_("retiré le"), default=timezone.now)
    revoked_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+"
    )

    class Meta:
        verbose_name = _("service connecté refusé")
        verbose_name_plural = _("services connectés refusés")
        constraints = [
            models.UniqueConstraint(
                fields=["patient_box", "service"], name="unique_service_revocation"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.patient_box_id}:{self.service_id}"


class ServiceChange(models.Model):
    """One change of a patient's choice for a connected service (allowed or revoked)."""

    patient_box = models.ForeignKey(
        "mailboxes.Mailbox",
        verbose_name=_("boîte du patient"),
        on_delete=models.CASCADE,
        related_name="+",
    )
    service = models.ForeignKey(
        "mailboxes.Mailbox",
        verbose_name=_("service connecté"),
        on_delete=models.CASCADE,
        related_name="+",
    )
    allowed = models.BooleanField(_("autorisé"))
    at = models.DateTimeField(_("le"), default=timezone.now)
    by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+"
    )

    class Meta:
        verbose_name = _("changement de service connecté")
        verbose_name_plural = _("changements de services connectés")
        indexes = [models.Index(fields=["patient_box", "-at"], name="service_change_box_at")]

    def __str__(self) -> str:
        return f"{self.patient_box_id}:{self.service_id}:{self.allowed}"
