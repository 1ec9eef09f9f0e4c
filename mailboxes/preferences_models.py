"""A user's preferences for a box: signature, out-of-office reply and rules (issue 14).

Kept apart from ``models.py`` (imported at its end so Django registers them); the writes
are in ``mailboxes/services/preferences.py`` and ``automation.py``, the reads in
``mailboxes/selectors_preferences.py``.
"""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

# Bounds a browser cannot pass (the forms say so in French, the services refuse again).
SIGNATURE_MAX_CHARS = 2000
AUTO_REPLY_MAX_CHARS = 4000
RULE_VALUE_MAX_CHARS = 200
RULES_PER_MAILBOX = 50
CONTACTS_PER_USER = 500


class Signature(models.Model):
    """The plain-text signature a person puts under what they write from one box."""

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="signatures"
    )
    mailbox = models.ForeignKey(
        "mailboxes.Mailbox", on_delete=models.CASCADE, related_name="signatures"
    )
    text = models.TextField(_("signature"), max_length=SIGNATURE_MAX_CHARS, blank=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name = _("signature")
        verbose_name_plural = _("signatures")
        constraints = [
            models.UniqueConstraint(fields=["user", "mailbox"], name="unique_signature"),
        ]

    def __str__(self) -> str:
        return f"{self.user_id}@{self.mailbox_id}"


class AutoReply(models.Model):
    """The out-of-office reply of a box: answered once per correspondent and period (RFC 3834)."""

    mailbox = models.OneToOneField(
        "mailboxes.Mailbox", on_delete=models.CASCADE, related_name="auto_reply"
    )
    enabled = models.BooleanField(_("activée"), default=False)
    start = models.DateField(_("du"))
    end = models.DateField(_("au"))
    text = models.TextField(_("message"), max_length=AUTO_REPLY_MAX_CHARS)
    professionals_only = models.BooleanField(_("seulement aux professionnels"), default=False)
    interval_days = models.PositiveSmallIntegerField(_("intervalle (jours)"), default=4)
    # Bumped whenever the reply is switched on or its dates change: a new absence answers
    # each correspondent again, whatever the last one sent.
    period = models.PositiveIntegerField(default=1)
    updated_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name = _("réponse automatique")
        verbose_name_plural = _("réponses automatiques")

    def __str__(self) -> str:
        return f"{self.mailbox_id}: {self.start} - {self.end}"

    def is_active(self, day: object = None) -> bool:
        """On, and ``day`` (today by default, in the portal's time zone) within its dates."""
        today = day or timezone.localdate()
        return self.enabled and self.start <= today <= self.end  # type: ignore[operator]


class AutoReplySent(models.Model):
    """When a box's out-of-office reply last answered a correspondent (an address, no content)."""

    auto_reply = models.ForeignKey(AutoReply, on_delete=models.CASCADE, related_name="sent")
    correspondent = models.CharField(max_length=254)
    period = models.PositiveIntegerField()
    sent_at = models.DateTimeField(default=timezone.now)

    class Meta:
        verbose_name = _("réponse automatique envoyée")
        verbose_name_plural = _("réponses automatiques envoyées")
        constraints = [
            models.UniqueConstraint(
                fields=["auto_reply", "correspondent"], name="unique_auto_reply_correspondent"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.auto_reply_id} → {self.correspondent}"


class Rule(models.Model):
    """A rule of a box, applied in order to every message delivered into it (and on demand)."""

    class Condition(models.TextChoices):
        SENDER = "sender", _("L'expéditeur est (adresse ou domaine)")
        SUBJECT = "subject", _("L'objet contient")
        PATIENT = "patient", _("Le message concerne un patient (INS)")
        APPLICATIVE = "app", _("Le message vient d'une boîte applicative")

    class Action(models.TextChoices):
        MOVE = "move", _("Classer dans le dossier")
        READ = "read", _("Marquer comme lu")
        FLAG = "flag", _("Marquer comme suivi")

    mailbox = models.ForeignKey("mailboxes.Mailbox", on_delete=models.CASCADE, related_name="rules")
    position = models.PositiveIntegerField(default=0)
    condition = models.CharField(_("condition"), max_length=8, choices=Condition.choices)
    value = models.CharField(_("valeur"), max_length=RULE_VALUE_MAX_CHARS, blank=True)
    action = models.CharField(_("action"), max_length=4, choices=Action.choices)
    # A folder of the same box (checked by the service); a folder deleted leaves the rule
    # shown as "dossier supprimé", doing nothing, rather than vanishing silently.
    folder = models.ForeignKey(
        "mailboxes.Folder", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        verbose_name = _("règle")
        verbose_name_plural = _("règles")
        ordering = ["mailbox", "position", "pk"]
        indexes = [models.Index(fields=["mailbox", "position"], name="rule_mailbox_order")]

    def __str__(self) -> str:
        return f"{self.mailbox_id}#{self.position}: {self.condition} → {self.action}"


class MailAlert(models.Model):
    """A professional's opt-in: an e-mail to their personal address when new mail arrives.

    The address is ``User.email``, which changes only through the confirmed link of
    accounts (``request_email_change``). The e-mail says how many messages wait, never
    who sent them nor what about, and goes at most once per ``ALERT_INTERVAL``.
    """

    user = models.OneToOneField(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="mail_alert"
    )
    enabled = models.BooleanField(_("alerte activée"), default=False)
    # Messages received after this are "new" for the next alert (the last one, or the opt-in).
    counted_from = models.DateTimeField(default=timezone.now)
    last_sent_at = models.DateTimeField(null=True, blank=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name = _("alerte de nouveaux messages")
        verbose_name_plural = _("alertes de nouveaux messages")

    def __str__(self) -> str:
        return f"{self.user_id}: {self.enabled}"


class Contact(models.Model):
    """A correspondent a person starred (favourites): an address and the name to show."""

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="contacts"
    )
    address = models.CharField(_("adresse"), max_length=254)
    name = models.CharField(_("nom"), max_length=200, blank=True)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        verbose_name = _("contact favori")
        verbose_name_plural = _("contacts favoris")
        ordering = ["name", "address"]
        constraints = [
            models.UniqueConstraint(fields=["user", "address"], name="unique_contact"),
        ]

    def __str__(self) -> str:
        return self.address
