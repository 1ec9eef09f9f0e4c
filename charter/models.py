"""The charter's staff processes: the audit journal, abuse reports, quarantine, inactivity."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.utils.translation import gettext_lazy as _


class AuditEvent(models.Model):
    """One append-only line of the journal. Never holds message content.

    Each row carries the hash of the previous row and its own HMAC under the key
    ``key_id`` of AUDIT_KEYS (kept outside the database), so a changed, inserted or
    deleted row breaks the chain, and whoever holds only the database cannot
    recompute it (see charter.audit.verify). Rows written before the keys existed
    have an empty ``key_id`` and a plain SHA-256; a signed seal vouches for them.
    """

    at = models.DateTimeField(_("date"), db_index=True)
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        verbose_name=_("auteur"),
        null=True,
        blank=True,
        # DO_NOTHING, not SET_NULL: actor_id is part of the hashed content, so
        # deleting a user must leave the journal untouched (the label keeps the name).
        on_delete=models.DO_NOTHING,
        related_name="+",
        db_constraint=False,
    )
    actor_label = models.CharField(_("auteur (libellé)"), max_length=200, blank=True)
    action = models.CharField(_("action"), max_length=64, db_index=True)
    object_type = models.CharField(_("type d'objet"), max_length=64, blank=True)
    object_id = models.CharField(_("objet"), max_length=64, blank=True, db_index=True)
    ip = models.GenericIPAddressField(_("adresse IP"), null=True, blank=True)
    data = models.JSONField(_("détails"), default=dict, blank=True)
    prev_hash = models.CharField(max_length=64)
    hash = models.CharField(max_length=64, unique=True)
    key_id = models.CharField(_("clé"), max_length=16, blank=True)

    class Meta:
        verbose_name = _("événement du journal")
        verbose_name_plural = _("journal d'audit")
        ordering = ["-id"]

    def __str__(self) -> str:
        return f"{self.at:%Y-%m-%d %H:%M:%S} {self.action} {self.actor_label}"


class AuditCheckpoint(models.Model):
    """A signed record of a purged prefix of the journal, or the seal of its unkeyed rows.

    *Purge*: the first remaining event points at ``last_hash``; the HMAC proves the
    checkpoint itself was written by the application, so verification can start
    from it instead of from the genesis hash. *Seal*: written once when the keys
    were introduced; rows up to ``last_event_id`` may be unkeyed, and that row's
    hash must still be ``last_hash``.
    """

    class Kind(models.TextChoices):
        PURGE = "purge", _("purge")
        SEAL = "seal", _("scellement des lignes sans clé")

    kind = models.CharField(_("nature"), max_length=8, choices=Kind.choices, default=Kind.PURGE)
    created_at = models.DateTimeField(_("date"))
    last_event_id = models.BigIntegerField(_("dernier événement purgé"))
    last_hash = models.CharField(_("empreinte du dernier événement purgé"), max_length=64)
    purged_count = models.PositiveIntegerField(_("événements purgés"))
    cutoff = models.DateTimeField(_("purgé avant le"))
    key_id = models.CharField(_("clé"), max_length=16, blank=True)
    signature = models.CharField(_("signature"), max_length=64)

    class Meta:
        verbose_name = _("point de contrôle du journal")
        verbose_name_plural = _("points de contrôle du journal")
        ordering = ["-last_event_id"]
        constraints = [
            models.UniqueConstraint(
                fields=["kind", "last_event_id"], name="charter_checkpoint_kind_last_event"
            )
        ]

    def __str__(self) -> str:
        return f"{self.created_at:%Y-%m-%d %H:%M:%S} ≤ {self.last_event_id}"


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
    subject = models.CharField(_("objet"), max_length=998, blank=True)
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
