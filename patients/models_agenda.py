"""Mon agenda: the appointments professionals sent a patient as calendar invitations.

One row per appointment, keyed by the patient's box, the event's UID and the address
that sent it (an invitation from another sender with the same UID is another
appointment, never an update of this one). What it is about (summary, place, who) is
sealed like a message's subject; only the times are in clear, for ordering and reminders.
"""

from __future__ import annotations

from django.db import models
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from mailboxes.fields import SealedTextField

__all__ = ["Appointment"]


class Appointment(models.Model):
    """An appointment in a patient's agenda, from an iTIP REQUEST (updated, cancelled)."""

    class Answer(models.TextChoices):
        PENDING = "NEEDS-ACTION", _("En attente de votre réponse")
        ACCEPTED = "ACCEPTED", _("Accepté")
        DECLINED = "DECLINED", _("Refusé")

    mailbox = models.ForeignKey(
        "mailboxes.Mailbox",
        verbose_name=_("boîte du patient"),
        on_delete=models.CASCADE,
        related_name="appointments",
    )
    uid = models.CharField(max_length=255)
    # The address the invitation came from (the message's From, checked by the trust
    # space); replies go there, and only a message from it updates or cancels.
    organizer_address = models.CharField(_("envoyé par"), max_length=254)
    sequence = models.PositiveIntegerField(default=0)
    # The latest REQUEST (or CANCEL) applied: the patient's answer replies to it.
    message = models.ForeignKey(
        "mailboxes.Message", on_delete=models.CASCADE, related_name="+", verbose_name=_("message")
    )
    summary = SealedTextField(_("objet"), default="", blank=True)
    location = SealedTextField(_("lieu"), default="", blank=True)
    organizer_name = SealedTextField(_("organisateur"), default="", blank=True)
    start = models.DateTimeField(_("début"))
    end = models.DateTimeField(_("fin"), null=True, blank=True)
    all_day = models.BooleanField(_("journée entière"), default=False)
    answer = models.CharField(
        _("réponse"), max_length=16, choices=Answer.choices, default=Answer.PENDING
    )
    answered_at = models.DateTimeField(_("répondu le"), null=True, blank=True)
    cancelled = models.BooleanField(_("annulé"), default=False)
    reminded_at = models.DateTimeField(_("rappel envoyé le"), null=True, blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name = _("rendez-vous")
        verbose_name_plural = _("rendez-vous")
        constraints = [
            models.UniqueConstraint(
                fields=["mailbox", "uid", "organizer_address"], name="unique_appointment"
            ),
        ]
        indexes = [models.Index(fields=["start", "reminded_at"], name="appointment_reminder")]

    def __str__(self) -> str:
        return f"{self.mailbox_id}:{self.uid}"

    @property
    def active(self) -> bool:
        return not self.cancelled and self.answer != self.Answer.DECLINED
