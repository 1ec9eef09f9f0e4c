"""The audit journal: append-only events, each signed by HMAC, sealed in order by a
background task (audit.seals), and the journal's checkpoints.

Every app writes here through ``audit.journal.record``; this app depends on none of them
(the actor is ``settings.AUTH_USER_MODEL``, named, never imported).
"""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.db import models
from django.utils.translation import gettext_lazy as _


class TransactionId(models.Func):
    """The inserting transaction's id, filled in by PostgreSQL (NULL on SQLite).

    ``audit_xid()`` (audit/migrations/0002) is ``pg_current_xact_id()``, the top-level
    transaction's 64-bit id (xid8, never wrapping), as a bigint, plus an offset that
    stays 0 unless a logical restore sets the ids back (audit.positions). SQLite has
    one writer at a time: there the row id is the commit order, and this stays NULL.
    """

    template = "audit_xid()"
    output_field = models.BigIntegerField()

    def as_sqlite(
        self, compiler: Any, connection: Any, **extra_context: Any
    ) -> tuple[str, list[Any]]:
        return "NULL", []


class AuditEvent(models.Model):
    """One append-only line of the journal. Never holds message content.

    ``hash`` is the row's own HMAC under the key ``key_id`` of AUDIT_KEYS (kept outside
    the database), over its content: a changed row, or one forged without the key,
    fails it. ``xid`` (PostgreSQL) is the transaction that inserted it; the seals
    (AuditSeal) bind the rows of finished transactions in order, so a deleted,
    inserted or moved row breaks a seal (see audit.verification). Rows written before
    issue 13 are chained instead (``prev_hash`` = the previous row's hash), up to the
    signed end of that chain; rows written before the keys existed have an empty
    ``key_id`` and a plain SHA-256, vouched for by a signed checkpoint.
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
    # Empty for the rows of today; the previous row's hash in the old chain.
    prev_hash = models.CharField(max_length=64)
    hash = models.CharField(max_length=64)
    key_id = models.CharField(_("clé"), max_length=16, blank=True)
    # Filled in by the database (PostgreSQL); NULL for the rows of the old chain.
    xid = models.BigIntegerField(
        _("transaction"), null=True, blank=True, editable=False, db_default=TransactionId()
    )

    class Meta:
        verbose_name = _("événement du journal")
        verbose_name_plural = _("journal d'audit")
        ordering = ["-id"]
        # The table kept its name when the journal left charter (issue 12): the
        # append-only trigger, the purge function and the role grants name it.
        db_table = "charter_auditevent"
        indexes = [models.Index(fields=["xid", "id"], name="audit_event_xid_id")]

    def __str__(self) -> str:
        return f"{self.at:%Y-%m-%d %H:%M:%S} {self.action} {self.actor_label}"


class AuditCheckpoint(models.Model):
    """A signed record of a purged part of the journal, or of a boundary of its old chain.

    *Purge* (old chain): rows up to ``last_event_id`` were removed; the first remaining
    one points at ``last_hash``. *Sealed purge*: the seals up to ``last_event_id`` (a
    seal's id) and their rows were removed but that seal, whose MAC is ``last_hash``;
    the HMAC proves the checkpoint was written by the application, so verification
    starts from it. *Seal*: written when the keys were introduced; rows up to
    ``last_event_id`` may be unkeyed, and that row's hash must still be ``last_hash``.
    *End of the chain*: written when the seals replaced the chain (issue 13): the old
    chain ends at row ``last_event_id`` whose hash is ``last_hash``, and the first seal
    links to this checkpoint's signature.
    """

    class Kind(models.TextChoices):
        PURGE = "purge", _("purge")
        SEALED_PURGE = "seals", _("purge de scellements")
        SEAL = "seal", _("scellement des lignes sans clé")
        CHAIN_END = "end", _("fin de la chaîne")

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


class AuditSeal(models.Model):
    """A signed, append-only record binding the journal rows of finished transactions.

    Seal *k* covers exactly the rows whose position (the inserting transaction's id on
    PostgreSQL, the row id on SQLite) is in [``lo``, ``hi``): ``hi`` was the oldest
    transaction still running when it was written, so no row can appear in that range
    afterwards. It holds their ``count``, a ``digest`` over their (id, MAC) in
    (position, id) order, the newest ``at`` (for the purge), the running ``total`` of
    sealed rows, the previous seal's ``mac`` (``prev``), and its own HMAC (``mac``)
    under the key ``key_id``. Written by audit.seals only, one sealer at a time.
    """

    created_at = models.DateTimeField(_("date"))
    lo = models.BigIntegerField(_("depuis la position"))
    hi = models.BigIntegerField(_("jusqu'à la position (exclue)"), unique=True)
    count = models.BigIntegerField(_("événements"))
    total = models.BigIntegerField(_("événements scellés depuis l'origine"))
    newest_at = models.DateTimeField(_("événement le plus récent"))
    digest = models.CharField(_("empreinte des événements"), max_length=64)
    prev = models.CharField(_("scellement précédent"), max_length=64, blank=True)
    key_id = models.CharField(_("clé"), max_length=16)
    mac = models.CharField(_("signature"), max_length=64)

    class Meta:
        verbose_name = _("scellement du journal")
        verbose_name_plural = _("scellements du journal")
        ordering = ["-id"]

    def __str__(self) -> str:
        return f"{self.created_at:%Y-%m-%d %H:%M:%S} [{self.lo}, {self.hi}) {self.count}"
