"""The charter of the trust space: the audit journal, the liste blanche."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.utils.translation import gettext_lazy as _


class AuditEvent(models.Model):
    """One append-only line of the journal. Never holds message content.

    Each row carries the hash of the previous row, so a changed, inserted or
    deleted row breaks the chain (see charter.audit.verify_chain).
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

    class Meta:
        verbose_name = _("événement du journal")
        verbose_name_plural = _("journal d'audit")
        ordering = ["-id"]

    def __str__(self) -> str:
        return f"{self.at:%Y-%m-%d %H:%M:%S} {self.action} {self.actor_label}"


class AuditCheckpoint(models.Model):
    """A signed record of a purged prefix of the journal.

    The first remaining event points at ``last_hash``; the HMAC proves the
    checkpoint itself was written by the application, so verification can
    start from it instead of from the genesis hash.
    """

    created_at = models.DateTimeField(_("date"))
    last_event_id = models.BigIntegerField(_("dernier événement purgé"), unique=True)
    last_hash = models.CharField(_("empreinte du dernier événement purgé"), max_length=64)
    purged_count = models.PositiveIntegerField(_("événements purgés"))
    cutoff = models.DateTimeField(_("purgé avant le"))
    signature = models.CharField(_("signature"), max_length=64)

    class Meta:
        verbose_name = _("point de contrôle du journal")
        verbose_name_plural = _("points de contrôle du journal")
        ordering = ["-last_event_id"]

    def __str__(self) -> str:
        return f"{self.created_at:%Y-%m-%d %H:%M:%S} ≤ {self.last_event_id}"
