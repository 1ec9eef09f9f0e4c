"""The trust space's rules that need tables: the liste blanche and the recipient exceptions.

The tables keep the names they had in ``charter`` (``db_table``), where these models
lived until issue 12: deployments keep their rows, grants and indexes as they are.
"""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.utils.translation import gettext_lazy as _

# --- Liste blanche -------------------------------------------------------------------------


class ListedDomain(models.Model):
    """A domain of the national liste blanche (one row, whatever its number of servers)."""

    name = models.CharField(_("domaine"), max_length=253, unique=True)
    description = models.CharField(_("description"), max_length=500, blank=True)
    responsible_contact = models.CharField(_("contact responsable"), max_length=500, blank=True)
    support_contact = models.CharField(_("contact support"), max_length=500, blank=True)
    updated_at = models.DateTimeField(_("mise à jour (liste blanche)"), null=True, blank=True)

    class Meta:
        db_table = "charter_listeddomain"
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
        db_table = "charter_operatorcertificate"
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
        db_table = "charter_listeblancheimport"
        verbose_name = _("import de la liste blanche")
        verbose_name_plural = _("imports de la liste blanche")
        ordering = ["-started_at"]

    def __str__(self) -> str:
        return f"{self.started_at:%Y-%m-%d %H:%M} {self.get_result_display()}"


# --- Recipient limit exceptions ---------------------------------------------------------------


class RecipientLimitException(models.Model):
    """Staff allow one mailbox (typically an APP box) to exceed MAX_RECIPIENTS until a date."""

    # Named by string: the table points at the box it exempts, the code of this app
    # imports nothing of mailboxes (which is above it).
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
        db_table = "charter_recipientlimitexception"
        verbose_name = _("dérogation au nombre de destinataires")
        verbose_name_plural = _("dérogations au nombre de destinataires")
        ordering = ["-granted_at"]
        indexes = [models.Index(fields=["mailbox", "valid_until"], name="charter_rcpt_exc_active")]

    def __str__(self) -> str:
        return f"{self.mailbox_id} → {self.valid_until:%Y-%m-%d}"
