"""The audit journal: append-only events chained by HMAC, and the journal's checkpoints.

Every app writes here through ``audit.journal.record``; this app depends on none of them
(the actor is ``settings.AUTH_USER_MODEL``, named, never imported).
"""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.utils.translation import gettext_lazy as _


class AuditEvent(models.Model):
    """One append-only line of the journal. Never holds message content.

    Each row carries the hash of the previous row and its own HMAC under the key
    ``key_id`` of AUDIT_KEYS (kept outside the database), so a changed, inserted or
    deleted row breaks the chain, and whoever holds only the database cannot
    recompute it (see audit.chain.verify). Rows written before the keys existed
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
        # The table kept its name when the journal left charter (issue 12): the
        # append-only trigger, the purge function and the role grants name it.
        db_table = "charter_auditevent"

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
        db_table = "charter_auditcheckpoint"
        constraints = [
            models.UniqueConstraint(
                fields=["kind", "last_event_id"], name="charter_checkpoint_kind_last_event"
            )
        ]

    def __str__(self) -> str:
        return f"{self.created_at:%Y-%m-%d %H:%M:%S} ≤ {self.last_event_id}"
