"""Family (issue 17): a parent or legal guardian acts in a minor child's patient space.

The child (an "ayant droit" in Mon Espace Santé terms) has their own identity and box
(``<INS>@<PATIENT_DOMAIN>``) but no login while minor; the guardian signs in with their
own patient account and switches to the child's space. Staff provision and revoke the
link with a recorded reason; it ends by itself when the child turns 18.
"""

from __future__ import annotations

from datetime import date
from typing import Any

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from accounts.models import PatientIdentity


class GuardianLink(models.Model):
    """A guardian patient may act in this minor child's space, from ``created_at`` to ``ended_at``."""

    class Role(models.TextChoices):
        PARENT = "parent", _("Parent")
        GUARDIAN = "guardian", _("Tuteur ou représentant légal")

    class EndCause(models.TextChoices):
        MAJORITY = "majority", _("Majorité de l'enfant")
        REVOKED = "revoked", _("Révoqué par l'équipe")

    class Activation(models.TextChoices):
        NONE = "", _("—")
        SENT = "sent", _("Lien d'activation envoyé à l'enfant")
        STAFF = "staff", _("À faire par l'équipe (pas d'adresse personnelle)")

    guardian = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        verbose_name=_("représentant légal"),
        on_delete=models.PROTECT,
        related_name="guardian_links",
    )
    child = models.ForeignKey(
        PatientIdentity,
        verbose_name=_("enfant"),
        on_delete=models.PROTECT,
        related_name="guardian_links",
    )
    role = models.CharField(_("qualité"), max_length=16, choices=Role.choices, default=Role.PARENT)
    reason = models.TextField(_("motif du rattachement"))
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        verbose_name=_("rattaché par"),
        null=True,
        on_delete=models.SET_NULL,
        related_name="+",
    )
    created_at = models.DateTimeField(_("rattaché le"), default=timezone.now)
    ended_at = models.DateTimeField(_("fin le"), null=True, blank=True)
    end_cause = models.CharField(
        _("cause de la fin"), max_length=16, choices=EndCause.choices, blank=True
    )
    end_reason = models.TextField(_("motif de la fin"), blank=True)
    ended_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        verbose_name=_("fin décidée par"),
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
    )
    # At majority: whether the child's own activation was sent, or left to staff.
    activation = models.CharField(
        _("activation à la majorité"),
        max_length=8,
        choices=Activation.choices,
        blank=True,
        default=Activation.NONE,
    )

    class Meta:
        verbose_name = _("rattachement familial")
        verbose_name_plural = _("rattachements familiaux")
        constraints = [
            models.UniqueConstraint(
                fields=["guardian", "child"],
                condition=Q(ended_at__isnull=True),
                name="unique_active_guardian_link",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.guardian} → {self.child}"

    @property
    def active(self) -> bool:
        return self.ended_at is None

    @classmethod
    def guardian_addresses(cls, child: Any) -> list[str]:
        """The personal addresses of the guardians who may act in ``child``'s space now.

        Told, as the child would be, that a message waits (the same content-free text).
        """
        today = timezone.localdate()
        links = cls.objects.select_related("guardian", "child").filter(
            child__user=child, ended_at__isnull=True, guardian__status="active"
        )
        return sorted(
            {
                link.guardian.email
                for link in links
                if link.guardian.email and majority_date(link.child.birth_date) > today
            }
        )


def majority_date(birth: date) -> date:
    """The 18th birthday; 29 February becomes 1 March in a common year."""
    try:
        return birth.replace(year=birth.year + 18)
    except ValueError:
        return date(birth.year + 18, 3, 1)
