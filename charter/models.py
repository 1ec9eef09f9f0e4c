"""The charter of the trust space: the liste blanche."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.utils.translation import gettext_lazy as _

from audit.models import AuditEvent

# --- Liste blanche -------------------------------------------------------------------------


class ListedDomain(models.Model):
    """A domain of the national liste blanche (one row, whatever its number of servers)."""

    name = models.CharField(_("domaine"), max_length=253, unique=True)
    description = models.CharField(_("description"), max_length=500, blank=True)
    responsible_contact = models.CharField(_("contact responsable"), max_length=500, blank=True)
    support_contact = models.CharField(_("contact support"), max_length=500, blank=True)
    updated_at = models.DateTimeField(_("mise à jour (liste blanche)"), null=True, blank=True)

    class Meta:
        verbose_name = _("domaine de la liste blanche")
        verbose_name_plural = _("liste blanche")
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


class OperatorCertificate(models.Model):
    """The subject DN of one mail server's certificate allowed to speak for a domain."""

    domain = models.ForeignKey(
        ListedDomain,
        verbose_name=_("domaine"),
        on_delete=models.CASCADE,
        related_name="certificates",
    )
    dn = models.CharField(_("DN du certificat de l'opérateur"), max_length=1000)
    updated_at = models.DateTimeField(_("mise à jour (liste blanche)"), null=True, blank=True)

    class Meta:
        verbose_name = _("certificat d'opérateur")
        verbose_name_plural = _("certificats d'opérateur")
        constraints = [
            models.UniqueConstraint(fields=["domain", "dn"], name="charter_unique_domain_dn"),
        ]
        indexes = [models.Index(fields=["dn"], name="charter_certificate_dn")]

    def __str__(self) -> str:
        return self.dn


class ListeBlancheImport(models.Model):
    """One attempt to import the liste blanche, kept whether it succeeded or not."""

    class Result(models.TextChoices):
        IMPORTED = "imported", _("importée")
        IMPORTED_WITH_WARNINGS = "warnings", _("importée avec avertissements")
        REFUSED = "refused", _("refusée (liste actuelle conservée)")

    started_at = models.DateTimeField(_("début"))
    finished_at = models.DateTimeField(_("fin"), null=True, blank=True)
    source = models.CharField(_("source"), max_length=1000)
    generated_at = models.DateTimeField(_("date de génération du fichier"), null=True, blank=True)
    result = models.CharField(_("résultat"), max_length=16, choices=Result.choices)
    forced = models.BooleanField(_("forcée"), default=False)
    entries = models.PositiveIntegerField(_("entrées lues"), default=0)
    domains = models.PositiveIntegerField(_("domaines"), default=0)
    certificates = models.PositiveIntegerField(_("certificats"), default=0)
    added = models.PositiveIntegerField(_("domaines ajoutés"), default=0)
    removed = models.PositiveIntegerField(_("domaines retirés"), default=0)
    messages = models.TextField(_("avertissements ou motif du refus"), blank=True)
    by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        verbose_name=_("lancée par"),
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
    )

    class Meta:
        verbose_name = _("import de la liste blanche")
        verbose_name_plural = _("imports de la liste blanche")
        ordering = ["-started_at"]

    def __str__(self) -> str:
        return f"{self.started_at:%Y-%m-%d %H:%M} {self.get_result_display()}"


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


# --- Recipient limit exceptions ---------------------------------------------------------------


class RecipientLimitException(models.Model):
    """Staff allow one mailbox (typically an APP box) to exceed MAX_RECIPIENTS until a date."""

    mailbox = models.ForeignKey(
        "mailboxes.Mailbox",
        verbose_name=_("boîte"),
        on_delete=models.CASCADE,
        related_name="recipient_limit_exceptions",
    )
    reason = models.TextField(_("motif"))
    valid_until = models.DateTimeField(_("valable jusqu'au"))
    granted_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        verbose_name=_("accordée par"),
        null=True,
        on_delete=models.SET_NULL,
        related_name="+",
    )
    granted_at = models.DateTimeField(_("accordée le"))
    revoked_at = models.DateTimeField(_("révoquée le"), null=True, blank=True)
    revoked_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        verbose_name=_("révoquée par"),
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
    )

    class Meta:
        verbose_name = _("dérogation au nombre de destinataires")
        verbose_name_plural = _("dérogations au nombre de destinataires")
        ordering = ["-granted_at"]
        indexes = [models.Index(fields=["mailbox", "valid_until"], name="charter_rcpt_exc_active")]

    def __str__(self) -> str:
        return f"{self.mailbox_id} → {self.valid_until:%Y-%m-%d}"


# --- Quarantine ---------------------------------------------------------------------------


class Quarantine(models.Model):
    """A message the antivirus held back: never delivered unless staff release it.

    The message's envelope is copied in (never its content), so the record and the
    indicators survive the deletion of the message itself.
    """

    class Verdict(models.TextChoices):
        INFECTED = "infected", _("virus détecté")
        UNSCANNABLE = "unscannable", _("impossible à analyser")

    class Status(models.TextChoices):
        HELD = "held", _("en quarantaine")
        RELEASED = "released", _("libéré")
        DELETED = "deleted", _("supprimé")

    message = models.OneToOneField(
        "mailboxes.Message",
        verbose_name=_("message"),
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="quarantine",
    )
    message_id_header = models.CharField(_("Message-ID"), max_length=255)
    from_addr = models.CharField(_("expéditeur"), max_length=254, db_index=True)
    recipients = models.JSONField(_("destinataires"), default=list)
    subject = models.CharField(_("objet"), max_length=998, blank=True)
    size = models.PositiveIntegerField(_("taille"), default=0)
    message_date = models.DateTimeField(_("date du message"), null=True)
    verdict = models.CharField(_("verdict"), max_length=12, choices=Verdict.choices)
    signatures = models.JSONField(_("signatures"), default=list, blank=True)
    detail = models.CharField(_("détail"), max_length=500, blank=True)
    quarantined_at = models.DateTimeField(_("mis en quarantaine le"), db_index=True)
    status = models.CharField(
        _("état"), max_length=8, choices=Status.choices, default=Status.HELD, db_index=True
    )
    decided_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        verbose_name=_("décidé par"),
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
    )
    decided_at = models.DateTimeField(_("décidé le"), null=True, blank=True)
    decision_reason = models.TextField(_("motif de la décision"), blank=True)

    class Meta:
        verbose_name = _("message en quarantaine")
        verbose_name_plural = _("quarantaine antivirus")
        ordering = ["-quarantined_at"]

    def __str__(self) -> str:
        return f"{self.quarantined_at:%Y-%m-%d %H:%M} {self.from_addr}"


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
