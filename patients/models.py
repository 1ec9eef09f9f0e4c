"""The patient space's own data: notification preferences and closed conversations."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from accounts.models import PatientIdentity


class NotificationPreference(models.Model):
    """How often a patient is told, at their personal address, that a message is waiting."""

    class Frequency(models.TextChoices):
        EACH = "each", _("À chaque nouveau message")
        DAILY = "daily", _("Au plus une fois par jour")
        NEVER = "never", _("Jamais")

    user = models.OneToOneField(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="patient_notifications"
    )
    frequency = models.CharField(
        _("fréquence"), max_length=8, choices=Frequency.choices, default=Frequency.EACH
    )
    last_notified_at = models.DateTimeField(_("dernière notification"), null=True, blank=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name = _("préférence de notification")
        verbose_name_plural = _("préférences de notification")

    def __str__(self) -> str:
        return f"{self.user} — {self.get_frequency_display()}"


class ConversationClosure(models.Model):
    """A professional closed a conversation with a patient after it began (no reply any more)."""

    thread_key = models.CharField(max_length=255)
    mailbox = models.ForeignKey(
        "mailboxes.Mailbox",
        verbose_name=_("boîte du patient"),
        on_delete=models.CASCADE,
        related_name="closed_conversations",
    )
    closed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+"
    )
    closed_from = models.ForeignKey(
        "mailboxes.Mailbox",
        verbose_name=_("boîte du professionnel"),
        null=True,
        on_delete=models.SET_NULL,
        related_name="+",
    )
    at = models.DateTimeField(_("close le"), default=timezone.now)

    class Meta:
        verbose_name = _("conversation close")
        verbose_name_plural = _("conversations closes")
        constraints = [
            models.UniqueConstraint(
                fields=["thread_key", "mailbox"], name="unique_conversation_closure"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.mailbox_id}:{self.thread_key}"


class Patient(PatientIdentity):
    """Staff's view of patients in the admin: provisioning creates the account and the box."""

    class Meta:
        proxy = True
        verbose_name = _("patient")
        verbose_name_plural = _("patients")


from patients.models_agenda import Appointment  # noqa: E402, F401
from patients.models_documents import FiledMessage, PatientDocument  # noqa: E402, F401
from patients.models_family import GuardianLink  # noqa: E402,F401
from patients.models_services import ServiceChange, ServiceRevocation  # noqa: E402,F401
