"""Application passwords: what practice software and mail clients sign in with.

A user's own password and second factor stay in the browser. A device gets a password of
its own, created from the webmail after the second factor again, shown once, stored as a
SHA-256 (it carries 120 random bits: nothing to brute-force, so no slow hash and a
lookup in one indexed query), limited to IMAP, SMTP or both and to one box or all the
user's boxes, expiring, revocable, with its last use shown to its holder.
"""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from mailboxes.models import Mailbox


class AppPassword(models.Model):
    class Scope(models.TextChoices):
        IMAP = "imap", _("Lecture (IMAP)")
        SMTP = "smtp", _("Envoi (SMTP)")
        BOTH = "both", _("Lecture et envoi (IMAP et SMTP)")

    class Protocol(models.TextChoices):
        IMAP = "imap", "IMAP"
        SMTP = "smtp", "SMTP"

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.CASCADE,
        related_name="app_passwords",
        verbose_name=_("titulaire"),
    )
    # None: every box the user may use, with the rights they have there.
    mailbox = models.ForeignKey(
        Mailbox,
        on_delete=models.CASCADE,
        null=True,
        blank=True,
        related_name="app_passwords",
        verbose_name=_("boîte"),
    )
    label = models.CharField(_("appareil ou logiciel"), max_length=100)
    scope = models.CharField(_("usage"), max_length=4, choices=Scope.choices)
    token_hash = models.CharField(max_length=64, unique=True, editable=False)
    created_at = models.DateTimeField(_("créé le"), default=timezone.now)
    expires_at = models.DateTimeField(_("expire le"))
    revoked_at = models.DateTimeField(_("révoqué le"), null=True, blank=True)
    last_used_at = models.DateTimeField(_("dernière utilisation"), null=True, blank=True)
    last_used_ip = models.GenericIPAddressField(_("dernière adresse"), null=True, blank=True)
    last_used_protocol = models.CharField(
        _("dernier protocole"), max_length=4, choices=Protocol.choices, blank=True
    )

    class Meta:
        verbose_name = _("mot de passe d'application")
        verbose_name_plural = _("mots de passe d'application")
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"{self.label} ({self.get_scope_display()})"

    def is_live(self, now: object = None) -> bool:
        moment = now or timezone.now()
        return self.revoked_at is None and self.expires_at > moment  # type: ignore[operator]

    def allows(self, protocol: str) -> bool:
        return self.scope in (self.Scope.BOTH, protocol)
