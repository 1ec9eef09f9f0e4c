"""The charter's staff processes: abuse reports and sanctions, inactivity, indicators."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.utils.translation import gettext_lazy as _

from audit.models import AuditEvent
from mailboxes.fields import SealedTextField

# --- Abuse reports and sanctions ----------------------------------------------------------


class AbuseReport(models.Model):
    """A recipient's report of unsolicited mail, reviewed by staff.

    The message's identifying metadata is copied in, so the report still reads
    the same if the message is later purged.
    """

    class Status(models.TextChoices):
        OPEN = "open", _("à traiter")
        DECIDED = "decided", _("traité")

    created_at = models.DateTimeField(_("signalé le"), db_index=True)
    reporter = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        verbose_name=_("signalé par"),
        null=True,
        on_delete=models.SET_NULL,
        related_name="+",
    )
    reporter_mailbox = models.ForeignKey(
        "mailboxes.Mailbox",
        verbose_name=_("boîte du signalant"),
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
    )
    message = models.ForeignKey(
        "mailboxes.Message",
        verbose_name=_("message"),
        null=True,
        on_delete=models.SET_NULL,
        related_name="abuse_reports",
    )
    message_id_header = models.CharField(_("Message-ID"), max_length=255)
    sender_addr = models.CharField(_("expéditeur"), max_length=254, db_index=True)
    subject = SealedTextField(_("objet"), default="", blank=True)  # sealed like the message's
    message_date = models.DateTimeField(_("date du message"), null=True)
    # The local account that sent it; None for mail from another operator.
    sender = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        verbose_name=_("compte expéditeur"),
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="abuse_reports_received",
    )
    reason = models.TextField(_("motif du signalement"))
    status = models.CharField(
        _("état"), max_length=8, choices=Status.choices, default=Status.OPEN, db_index=True
    )

    class Meta:
        verbose_name = _("signalement de courrier indésirable")
        verbose_name_plural = _("signalements de courrier indésirable")
        ordering = ["-created_at"]
        constraints = [
            models.UniqueConstraint(
                fields=["message", "reporter"], name="charter_one_report_per_reporter"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.created_at:%Y-%m-%d} {self.sender_addr}"


class Sanction(models.Model):
    """A staff decision on a report: dismiss, warn, suspend or close, always with a reason."""

    class Decision(models.TextChoices):
        DISMISS = "dismiss", _("classé sans suite")
        WARN = "warn", _("avertissement")
        SUSPEND = "suspend", _("suspension")
        CLOSE = "close", _("clôture du compte")

    report = models.ForeignKey(
        AbuseReport,
        verbose_name=_("signalement"),
        on_delete=models.PROTECT,
        related_name="sanctions",
    )
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        verbose_name=_("compte sanctionné"),
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="sanctions",
    )
    decision = models.CharField(_("décision"), max_length=8, choices=Decision.choices)
    reason = models.TextField(_("motif"))
    decided_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        verbose_name=_("décidé par"),
        null=True,
        on_delete=models.SET_NULL,
        related_name="+",
    )
    decided_at = models.DateTimeField(_("décidé le"))

    class Meta:
        verbose_name = _("décision sur un signalement")
        verbose_name_plural = _("décisions sur les signalements")
        ordering = ["-decided_at"]

    def __str__(self) -> str:
        return f"{self.get_decision_display()} ({self.decided_at:%Y-%m-%d})"


# --- Inactive mailboxes (CNIL 2014-239) -----------------------------------------------------


class InactivityExemption(models.Model):
    """Staff keep a mailbox open whatever its holder's inactivity (a flag with its reason)."""

    mailbox = models.OneToOneField(
        "mailboxes.Mailbox",
        verbose_name=_("boîte"),
        on_delete=models.CASCADE,
        related_name="inactivity_exemption",
    )
    reason = models.TextField(_("motif"))
    granted_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        verbose_name=_("accordée par"),
        null=True,
        on_delete=models.SET_NULL,
        related_name="+",
    )
    granted_at = models.DateTimeField(_("accordée le"))

    class Meta:
        verbose_name = _("exemption de fermeture pour inactivité")
        verbose_name_plural = _("exemptions de fermeture pour inactivité")
        ordering = ["-granted_at"]

    def __str__(self) -> str:
        return str(self.mailbox)


class InactivityWarning(models.Model):
    """A warning mailed to the holder of an inactive mailbox, and their objection if any."""

    mailbox = models.ForeignKey(
        "mailboxes.Mailbox",
        verbose_name=_("boîte"),
        on_delete=models.CASCADE,
        related_name="inactivity_warnings",
    )
    warned_at = models.DateTimeField(_("averti le"), db_index=True)
    inactive_since = models.DateTimeField(_("inactif depuis"))
    closes_after = models.DateTimeField(_("fermeture prévue après le"))
    objected_at = models.DateTimeField(_("opposition le"), null=True, blank=True)

    class Meta:
        verbose_name = _("avertissement d'inactivité")
        verbose_name_plural = _("avertissements d'inactivité")
        ordering = ["-warned_at"]

    def __str__(self) -> str:
        return f"{self.mailbox_id} {self.warned_at:%Y-%m-%d}"


# --- Indicators (an admin page, no table of its own) ---------------------------------------


class MonthlyIndicators(AuditEvent):
    """Lets the admin index link to the indicators page; it stores nothing."""

    class Meta:
        proxy = True
        verbose_name = _("indicateurs mensuels")
        verbose_name_plural = _("indicateurs mensuels")
