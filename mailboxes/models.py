"""Hosted domains, mailboxes, messages, entries (one per mailbox and message) and deliveries."""

from __future__ import annotations

import time
import uuid
from typing import Any

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import models
from django.utils import timezone, translation
from django.utils.translation import gettext_lazy as _

from mailboxes import reasons
from mailboxes.fields import NameKeyField, SealedJSONField, SealedTextField, TokenSetField


class HostedDomain(models.Model):
    """A mail domain this operator serves (e.g. ``medecin.mssante.fr``)."""

    class Kind(models.TextChoices):
        PROFESSIONAL = "professional", _("Professionnels")
        PATIENT = "patient", _("Patients")

    name = models.CharField(_("domaine"), max_length=253, unique=True)
    description = models.CharField(_("description"), max_length=200, blank=True)
    kind = models.CharField(
        _("usage"), max_length=16, choices=Kind.choices, default=Kind.PROFESSIONAL
    )
    active = models.BooleanField(_("actif"), default=True)
    created_at = models.DateTimeField(_("créé le"), auto_now_add=True)

    class Meta:
        verbose_name = _("domaine hébergé")
        verbose_name_plural = _("domaines hébergés")
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name

    def save(self, *args: Any, **kwargs: Any) -> None:
        self.name = self.name.strip().lower().rstrip(".")
        super().save(*args, **kwargs)


class Mailbox(models.Model):
    """A mailbox (BAL). Its address and type never change once created."""

    class Kind(models.TextChoices):
        PERSONAL = "PER", _("Nominative")
        ORGANISATIONAL = "ORG", _("Organisationnelle")
        APPLICATIVE = "APP", _("Applicative")
        PATIENT = "PAT", _("Patient")

    class Status(models.TextChoices):
        ACTIVE = "active", _("Active")
        CLOSED = "closed", _("Fermée")

    address = models.CharField(_("adresse"), max_length=254, unique=True)
    domain = models.ForeignKey(HostedDomain, on_delete=models.PROTECT, related_name="mailboxes")
    kind = models.CharField(_("type"), max_length=3, choices=Kind.choices)
    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        verbose_name=_("titulaire"),
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="mailboxes",
        help_text=_("Le professionnel (BAL nominative) ou le patient."),
    )
    responsible = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        verbose_name=_("responsable"),
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="responsible_for",
        help_text=_("Le professionnel responsable (BAL organisationnelle ou applicative)."),
    )
    organisation = models.ForeignKey(
        "directory.Organisation",
        verbose_name=_("organisation"),
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="mailboxes",
        help_text=_("La structure titulaire (BAL organisationnelle ou applicative)."),
    )
    display_name = models.CharField(_("nom affiché"), max_length=200, blank=True)
    liste_rouge = models.BooleanField(
        _("liste rouge"), default=False, help_text=_("Non publiée dans l'annuaire.")
    )
    status = models.CharField(
        _("statut"), max_length=8, choices=Status.choices, default=Status.ACTIVE
    )
    status_changed_at = models.DateTimeField(
        _("statut modifié le"), null=True, blank=True, editable=False
    )
    quota_bytes = models.BigIntegerField(_("quota (octets)"), default=5 * 1024**3)
    created_at = models.DateTimeField(_("créée le"), default=timezone.now)

    class Meta:
        verbose_name = _("boîte aux lettres")
        verbose_name_plural = _("boîtes aux lettres")
        ordering = ["address"]

    def __str__(self) -> str:
        return self.address

    def save(self, *args: Any, **kwargs: Any) -> None:
        if self.pk is not None:
            before = Mailbox.objects.filter(pk=self.pk).values("address", "kind").first()
            if before and (before["address"] != self.address or before["kind"] != self.kind):
                raise ValidationError(
                    _("L'adresse et le type d'une boîte aux lettres ne changent jamais.")
                )
        super().save(*args, **kwargs)

    @property
    def is_active(self) -> bool:
        return self.status == self.Status.ACTIVE


def new_uid_validity() -> int:
    """A UIDVALIDITY for a new folder: the time in seconds (32 bits, never 0)."""
    return max(1, int(time.time()) & 0xFFFFFFFF)


class Folder(models.Model):
    """A folder of a mailbox: the five system folders and those the user creates."""

    class Role(models.TextChoices):
        INBOX = "inbox", _("Boîte de réception")
        SENT = "sent", _("Envoyés")
        DRAFTS = "drafts", _("Brouillons")
        TRASH = "trash", _("Corbeille")
        ARCHIVE = "archive", _("Archives")
        CUSTOM = "custom", _("Dossier")

    mailbox = models.ForeignKey(Mailbox, on_delete=models.CASCADE, related_name="folders")
    role = models.CharField(max_length=8, choices=Role.choices, default=Role.CUSTOM)
    # Sealed like subjects (a folder is often named after a patient): the database holds
    # bytes, and the keyed digest of the folded name keeps it unique in its mailbox
    # ("Patients" and "patients" clash) and lets a name be looked up (fields.name_keys).
    name = SealedTextField(_("nom"))
    name_key = NameKeyField(source="name", scope="mailbox_id")
    # IMAP's UIDVALIDITY (RFC 3501 2.3.1.1): fixed when the folder is made, so the UIDs
    # of a folder deleted and made again under the same name are never taken for these.
    uid_validity = models.PositiveIntegerField(default=new_uid_validity, editable=False)

    class Meta:
        verbose_name = _("dossier")
        verbose_name_plural = _("dossiers")
        constraints = [
            models.UniqueConstraint(fields=["mailbox", "name_key"], name="unique_folder_name"),
            models.UniqueConstraint(
                fields=["mailbox", "role"],
                condition=~models.Q(role="custom"),
                name="unique_system_folder",
            ),
        ]

    def __str__(self) -> str:
        return self.name

    def save(self, *args: Any, **kwargs: Any) -> None:
        fields = kwargs.get("update_fields")
        if fields is not None and "name" in fields and "name_key" not in fields:
            kwargs["update_fields"] = [*fields, "name_key"]
        super().save(*args, **kwargs)


def interface_language() -> str:
    """The language of the interface in use now (a message's reports come back in it)."""
    return (translation.get_language() or settings.LANGUAGE_CODE)[:16]


class Message(models.Model):
    """One message, immutable once submitted. The raw MIME lives encrypted in the blob store.

    Listing metadata is kept in columns (see docs/decisions.md); the subject and the
    attachments' names are sealed there (``SealedTextField``: read and written as text,
    bytes in the database); bodies and attachments exist only inside the encrypted blob.
    """

    class ScanStatus(models.TextChoices):
        PENDING = "pending", _("En attente d'analyse")
        CLEAN = "clean", _("Analysé, sain")
        INFECTED = "infected", _("Infecté, en quarantaine")
        NOT_SCANNED = "not_scanned", _("Non analysé")

    class Origin(models.TextChoices):
        WEB = "web", _("Webmail")
        API = "api", _("API")
        SMTP = "smtp", _("SMTP")
        CLI = "cli", _("Ligne de commande")
        CLIENT = "client", _("Logiciel ou client de messagerie")
        SYSTEM = "system", _("Système")

    public_id = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    message_id = models.CharField(_("Message-ID"), max_length=255, db_index=True)
    thread_key = models.CharField(max_length=255, db_index=True)
    in_reply_to = models.CharField(max_length=255, blank=True)
    sender_mailbox = models.ForeignKey(
        Mailbox, null=True, blank=True, on_delete=models.SET_NULL, related_name="sent_messages"
    )
    submitted_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    from_addr = models.CharField(_("expéditeur"), max_length=254)
    from_name = models.CharField(max_length=200, blank=True)
    sender_addr = models.CharField(_("envoyé par"), max_length=254, blank=True)
    sender_name = models.CharField(max_length=200, blank=True)
    to_addrs = models.JSONField(_("destinataires"), default=list)
    cc_addrs = models.JSONField(_("copie"), default=list)
    subject = SealedTextField(_("objet"), default="", blank=True)
    # The first words of the text body, for the list's preview line: sealed like the
    # subject, written at delivery (the pipeline has the plaintext in hand).
    preview = SealedTextField(_("aperçu"), default="", blank=True, editable=False)
    # The raw header block (up to the blank line), sealed, its bytes kept as latin-1 text:
    # IMAP clients list headers and envelopes without the blob being opened. None for a
    # message stored before it existed (filled on first use, ``header_bytes``).
    header_block = SealedTextField(null=True, blank=True, editable=False)
    date = models.DateTimeField(_("date"))
    size = models.PositiveIntegerField(_("taille"))
    attachments = SealedJSONField(
        _("pièces jointes"), default=list, help_text=_("Noms, types et tailles, jamais le contenu.")
    )
    patient_ins = models.CharField(_("INS du patient"), max_length=15, blank=True, db_index=True)
    conversation_closed = models.BooleanField(_("conversation close"), default=False)
    origin = models.CharField(max_length=8, choices=Origin.choices, default=Origin.WEB)
    scan_status = models.CharField(
        max_length=12, choices=ScanStatus.choices, default=ScanStatus.PENDING
    )
    blob_name = models.CharField(max_length=200, unique=True)
    key_id = models.CharField(max_length=32)
    wrapped_key = models.BinaryField()
    created_at = models.DateTimeField(default=timezone.now, db_index=True)
    # Mail from another operator: who delivered it, as its TLS session proved, recorded at
    # reception so that nothing shown later re-derives it from what the peer wrote.
    peer_dn = models.CharField(_("certificat de l'opérateur"), max_length=500, blank=True)
    peer_domain = models.CharField(_("domaine de l'opérateur"), max_length=253, blank=True)
    # Set when the header From: is not a domain that operator may speak for: the lists and
    # the reading view show "via <this>" next to the sender.
    from_via = models.CharField(_("remis via"), max_length=253, blank=True)
    # sha256 of (peer certificate, MAIL FROM, raw bytes): a peer's resend after a lost 250
    # finds its message again; anything else is a new message (see docs/decisions.md).
    resend_key = models.CharField(max_length=64, blank=True, default="")
    # Leaves with MAIL FROM:<> (a delivery report we send): never answered by another report.
    null_return_path = models.BooleanField(default=False)
    # Written by a program (RFC 3834: Auto-Submitted other than "no", a list, bulk), as its
    # headers said at reception or submission: an out-of-office reply never answers it.
    # Only this flag is kept, never the headers themselves.
    automatic = models.BooleanField(default=False)
    # The language of the interface it was written in: the DSN and the read receipts
    # that come back to a sender of ours are written in it ("" before issue 12: French).
    language = models.CharField(max_length=16, blank=True, default=interface_language)
    # A read receipt (MDN) from another operator: the message of ours it reports on (its
    # timeline shows "Lu"; the receipt itself is filed read, out of the inbox).
    receipt_of = models.ForeignKey(
        "self", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )

    class Meta:
        verbose_name = _("message")
        verbose_name_plural = _("messages")
        constraints = [
            models.UniqueConstraint(
                fields=["resend_key"],
                condition=~models.Q(resend_key=""),
                name="unique_resend_key",
            ),
        ]
        indexes = [
            # The sweeper looks for scans stuck in "pending": a handful of rows among millions.
            models.Index(
                fields=["created_at"],
                condition=models.Q(scan_status="pending"),
                name="message_pending_scan",
            ),
        ]

    def __str__(self) -> str:
        return self.message_id

    @property
    def has_attachments(self) -> bool:
        return bool(self.attachments)


class FolderCounter(models.Model):
    """How many messages a folder holds and how many of them are unread.

    Kept by the database itself: triggers on ``mailboxes_entry`` update the row in the
    transaction of every insert, move, flag change and delete, whatever the code that
    writes (``mailboxes/dbtriggers.py``), and a trigger on ``mailboxes_folder`` creates it
    with the folder. Nothing in Python writes it but ``recount_folders``, which repairs
    a drift (docs/decisions.md, "A big mailbox that stays fast").
    """

    folder = models.OneToOneField(
        Folder, primary_key=True, on_delete=models.CASCADE, related_name="counter"
    )
    total = models.BigIntegerField(default=0)
    unread = models.BigIntegerField(default=0)
    # IMAP (migration 0017): the UID the next entry placed in the folder gets, and the
    # folder's highest modification sequence (bumped by every arrival, departure and flag
    # change). Here rather than on Folder, which Python saves whole: a stale instance
    # saved after a rename would put an old value back and reuse UIDs.
    uid_next = models.BigIntegerField(default=1, db_default=1)
    modseq = models.BigIntegerField(default=1, db_default=1)

    class Meta:
        verbose_name = _("compteur d'un dossier")
        verbose_name_plural = _("compteurs des dossiers")

    def __str__(self) -> str:
        return f"{self.folder_id}: {self.unread}/{self.total}"


class Entry(models.Model):
    """A message as one mailbox sees it: its folder and flags (one per mailbox and message)."""

    # No index of their own: unique_entry begins with the mailbox, entry_folder_page with
    # the folder, and every index is paid by each delivery.
    mailbox = models.ForeignKey(
        Mailbox, on_delete=models.CASCADE, related_name="entries", db_index=False
    )
    message = models.ForeignKey(Message, on_delete=models.PROTECT, related_name="entries")
    folder = models.ForeignKey(
        Folder, on_delete=models.PROTECT, related_name="entries", db_index=False
    )
    seen = models.BooleanField(_("lu"), default=False)
    flagged = models.BooleanField(_("suivi"), default=False)
    answered = models.BooleanField(_("répondu"), default=False)
    received_at = models.DateTimeField(_("reçu le"), default=timezone.now)
    previous_folder = models.ForeignKey(
        Folder, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    # What the search reads: the keyed tokens of the words of the message (subject,
    # correspondents, body, readable attachments; mailboxes.search), never a word. Written
    # with the entry by the code that holds the plaintext; a GIN index on PostgreSQL.
    search_tokens = TokenSetField(default=list, db_default=[], blank=True, editable=False)
    # IMAP (migration 0017, mailboxes/dbtriggers.py): the entry's UID in its folder, given
    # by the database when the entry is placed in a folder (insert or move: a moved
    # message gets a new, higher UID), and its modification sequence. Python never writes
    # them: a stale instance saved keeps the stored values.
    uid = models.BigIntegerField(default=0, db_default=0, editable=False)
    modseq = models.BigIntegerField(default=0, db_default=0, editable=False)

    class Meta:
        verbose_name = _("message d'une boîte")
        verbose_name_plural = _("messages des boîtes")
        constraints = [
            models.UniqueConstraint(fields=["mailbox", "message"], name="unique_entry"),
        ]
        indexes = [
            # Keyset pagination, newest first, inside one folder.
            models.Index(fields=["folder", "-received_at", "-id"], name="entry_folder_page"),
            # The whole box, newest first: what a search for a common word walks.
            models.Index(fields=["mailbox", "-received_at", "-id"], name="entry_mailbox_page"),
            # A folder in UID order: what IMAP reads. Not a unique constraint: SQLite
            # checks it before its AFTER trigger numbers a moved row (the triggers alone
            # give the UIDs, one at a time under the counter's row lock).
            models.Index(fields=["folder", "uid"], name="entry_folder_uid"),
        ]

    def __str__(self) -> str:
        return f"{self.mailbox_id}:{self.message_id}"


class Delivery(models.Model):
    """One recipient of one message. This table is the outbox: Celery only triggers work on it."""

    class Status(models.TextChoices):
        QUEUED = "queued", _("En file d'attente")
        SCANNING = "scanning", _("En cours d'analyse")
        DELIVERED = "delivered", _("Distribué")
        DEFERRED = "deferred", _("Différé")
        BOUNCED = "bounced", _("Non distribué")
        REFUSED = "refused", _("Refusé")
        QUARANTINED = "quarantined", _("En quarantaine")

    DONE = (Status.DELIVERED, Status.BOUNCED, Status.REFUSED, Status.QUARANTINED)

    class Receipt(models.TextChoices):
        NONE = "", _("Aucun")
        ASKED = "asked", _("En attente de la décision du lecteur")
        SENT = "sent", _("Envoyé")
        DECLINED = "declined", _("Refusé par le lecteur")

    message = models.ForeignKey(Message, on_delete=models.CASCADE, related_name="deliveries")
    recipient = models.CharField(_("destinataire"), max_length=254)
    mailbox = models.ForeignKey(
        Mailbox, null=True, blank=True, on_delete=models.SET_NULL, related_name="deliveries"
    )
    remote = models.BooleanField(default=False)
    status = models.CharField(max_length=12, choices=Status.choices, default=Status.QUEUED)
    attempts = models.PositiveIntegerField(default=0)
    next_attempt_at = models.DateTimeField(default=timezone.now)
    # Why it is where it is (a code of mailboxes.reasons and its parameters): the
    # sentence is made in the reader's language when shown (``reason_text``).
    reason = models.CharField(max_length=32, blank=True, default="")
    reason_params = models.JSONField(default=dict, blank=True)
    delivered_at = models.DateTimeField(null=True, blank=True)
    read_at = models.DateTimeField(null=True, blank=True)
    # The read receipt (MDN) this recipient owes when the message asked for one.
    receipt = models.CharField(
        _("accusé de lecture"), max_length=8, choices=Receipt.choices, default="", blank=True
    )
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name = _("distribution")
        verbose_name_plural = _("distributions")
        constraints = [
            models.UniqueConstraint(fields=["message", "recipient"], name="unique_delivery"),
        ]
        indexes = [models.Index(fields=["status", "next_attempt_at"], name="delivery_due")]

    def __str__(self) -> str:
        return f"{self.recipient} ({self.status})"

    def set_reason(self, reason: reasons.Reason | None) -> None:
        """Record why (None: nothing to say); the caller saves ``reason`` and ``reason_params``."""
        self.reason = reason.code if reason is not None else ""
        self.reason_params = reason.as_params() if reason is not None else {}

    @property
    def reason_text(self) -> str:
        """Why it is where it is, in the active language ("" when there is nothing to say)."""
        return reasons.describe(self.reason, self.reason_params)


class Draft(models.Model):
    """A message being written. Body and attachments are sealed like messages."""

    mailbox = models.ForeignKey(Mailbox, on_delete=models.CASCADE, related_name="drafts")
    author = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    subject = SealedTextField(default="", blank=True)
    key_id = models.CharField(max_length=32, blank=True)
    wrapped_key = models.BinaryField(null=True, blank=True)
    sealed = models.BinaryField(
        null=True, blank=True, help_text=_("To, cc, body and reply headers, encrypted (JSON).")
    )
    updated_at = models.DateTimeField(auto_now=True)
    # The compose page that created it (a random key): its autosaves, its upload and its
    # Send find this draft again rather than creating one each.
    compose_key = models.CharField(max_length=32, blank=True, default="")

    class Meta:
        verbose_name = _("brouillon")
        verbose_name_plural = _("brouillons")
        constraints = [
            models.UniqueConstraint(
                fields=["author", "compose_key"],
                condition=~models.Q(compose_key=""),
                name="draft_unique_compose_key",
            )
        ]

    def __str__(self) -> str:
        return self.subject or f"#{self.pk}"


class DraftAttachment(models.Model):
    """An uploaded file waiting in a draft; its bytes are an encrypted blob."""

    draft = models.ForeignKey(Draft, on_delete=models.CASCADE, related_name="files")
    filename = models.CharField(max_length=255)
    content_type = models.CharField(max_length=127)
    size = models.PositiveIntegerField()
    blob_name = models.CharField(max_length=200, unique=True)
    key_id = models.CharField(max_length=32)
    wrapped_key = models.BinaryField()

    def __str__(self) -> str:
        return self.filename


# --------------------------------------------------------------------------- sharing


class Membership(models.Model):
    """Someone who may use a mailbox that is not theirs: an ORG member or a PER delegate.

    A row is live while it is neither revoked nor expired; access is always decided
    from live rows at each request, never from anything kept in the session.
    """

    class Role(models.TextChoices):
        READ = "read", _("Lecture")
        SEND = "send", _("Lecture et envoi")
        MANAGE = "manage", _("Gestion")

    mailbox = models.ForeignKey(Mailbox, on_delete=models.CASCADE, related_name="memberships")
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="memberships"
    )
    role = models.CharField(_("rôle"), max_length=8, choices=Role.choices, default=Role.READ)
    granted_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    granted_at = models.DateTimeField(_("accordé le"), default=timezone.now)
    expires_at = models.DateTimeField(_("jusqu'au"), null=True, blank=True)
    revoked_at = models.DateTimeField(_("révoqué le"), null=True, blank=True)
    revoked_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )

    class Meta:
        verbose_name = _("membre ou délégation")
        verbose_name_plural = _("membres et délégations")
        constraints = [
            # At most one live grant per person and mailbox; revoked rows stay as history.
            models.UniqueConstraint(
                fields=["mailbox", "user"],
                condition=models.Q(revoked_at__isnull=True),
                name="unique_live_membership",
            ),
        ]
        indexes = [models.Index(fields=["user", "revoked_at"], name="membership_user_live")]

    def __str__(self) -> str:
        return f"{self.user} → {self.mailbox} ({self.role})"

    def is_live(self, now: Any = None) -> bool:
        now = now or timezone.now()
        return self.revoked_at is None and (self.expires_at is None or self.expires_at > now)


_ACCESS_VERBS = {
    "open": _("ouvert"),
    "download": _("pièce jointe téléchargée"),
    "send": _("envoyé"),
    "move": _("déplacé"),
    "delete": _("supprimé"),
}


class AccessEvent(models.Model):
    """The access journal of shared and delegated boxes: who did what to which message, when.

    Never content: no subject, no body, no file name.
    """

    class Action(models.TextChoices):
        OPEN = "open", _("Ouverture")
        DOWNLOAD = "download", _("Téléchargement d'une pièce jointe")
        SEND = "send", _("Envoi")
        MOVE = "move", _("Déplacement")
        DELETE = "delete", _("Suppression")

    mailbox = models.ForeignKey(Mailbox, on_delete=models.CASCADE, related_name="access_events")
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    actor_label = models.CharField(_("par"), max_length=200, blank=True)
    action = models.CharField(_("action"), max_length=10, choices=Action.choices)
    message = models.ForeignKey(
        Message, null=True, blank=True, on_delete=models.SET_NULL, related_name="access_events"
    )
    at = models.DateTimeField(_("le"), default=timezone.now)

    class Meta:
        verbose_name = _("accès à une boîte partagée")
        verbose_name_plural = _("journal des accès")
        indexes = [
            models.Index(fields=["mailbox", "-at", "-id"], name="access_mailbox_page"),
            models.Index(fields=["message", "mailbox"], name="access_message"),
        ]

    def __str__(self) -> str:
        return f"{self.actor_label} {self.action} {self.message_id}"

    @property
    def verb(self) -> str:
        """The action as the message's page says it: "ouvert par … le … à …"."""
        return str(_ACCESS_VERBS.get(self.action, self.get_action_display()))


class ApiScope(models.TextChoices):
    """What software may do in a box through the API (the webmail's read and send roles)."""

    READ = "read", _("Lecture (lister, lire, classer les messages)")
    SEND = "send", _("Lecture et envoi depuis la boîte")


class ApiAgreement(models.Model):
    """The holder's recorded agreement that software may use their box through the API.

    A nominative box is its holder's alone (DOMAIN.md): no token is issued for it, nor for
    an organisational box, without this row, recorded by the holder (or the responsible)
    themselves from the webmail after entering their second factor again.
    """

    mailbox = models.ForeignKey(
        Mailbox, on_delete=models.CASCADE, related_name="api_agreements", verbose_name=_("boîte")
    )
    holder = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.PROTECT,
        related_name="+",
        verbose_name=_("titulaire"),
    )
    scope = models.CharField(_("droits"), max_length=4, choices=ApiScope.choices)
    software = models.CharField(_("logiciel ou usage"), max_length=200, blank=True)
    granted_at = models.DateTimeField(_("accordé le"), default=timezone.now)
    withdrawn_at = models.DateTimeField(_("retiré le"), null=True, blank=True)
    withdrawn_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
        verbose_name=_("retiré par"),
    )

    class Meta:
        verbose_name = _("accord pour l'API")
        verbose_name_plural = _("accords pour l'API")

    def __str__(self) -> str:
        return f"{self.mailbox} ({self.get_scope_display()})"

    @property
    def is_live(self) -> bool:
        return self.withdrawn_at is None


class ApiToken(models.Model):
    """A credential for software, scoped to one mailbox. Only a SHA-256 of the token is kept."""

    mailbox = models.ForeignKey(Mailbox, on_delete=models.CASCADE, related_name="api_tokens")
    scope = models.CharField(
        _("droits"), max_length=4, choices=ApiScope.choices, default=ApiScope.SEND
    )
    # The holder's agreement it was issued under (none for an applicative box).
    agreement = models.ForeignKey(
        ApiAgreement,
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="tokens",
        verbose_name=_("accord du titulaire"),
    )
    label = models.CharField(_("libellé"), max_length=200, blank=True)
    prefix = models.CharField(_("préfixe"), max_length=16, db_index=True)
    token_hash = models.CharField(max_length=64, unique=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(_("créé le"), default=timezone.now)
    expires_at = models.DateTimeField(_("expire le"), null=True, blank=True)
    revoked_at = models.DateTimeField(_("révoqué le"), null=True, blank=True)
    last_used_at = models.DateTimeField(_("dernière utilisation"), null=True, blank=True)
    # Fixed-window rate limit kept on the row: shared by every web process, one UPDATE a call.
    rate_window = models.BigIntegerField(default=0, editable=False)
    rate_count = models.PositiveIntegerField(default=0, editable=False)

    class Meta:
        verbose_name = _("jeton d'API")
        verbose_name_plural = _("jetons d'API")

    def __str__(self) -> str:
        return f"{self.prefix}… ({self.mailbox})"

    def is_usable(self, now: Any = None) -> bool:
        now = now or timezone.now()
        return self.revoked_at is None and (self.expires_at is None or self.expires_at > now)


class IdempotencyRecord(models.Model):
    """The first answer to a POST carrying an ``Idempotency-Key``, replayed to its retries."""

    token = models.ForeignKey(ApiToken, on_delete=models.CASCADE, related_name="+")
    key = models.CharField(max_length=255)
    request_hash = models.CharField(max_length=64)
    status = models.PositiveSmallIntegerField()
    body = models.JSONField(default=dict)
    message = models.ForeignKey(
        Message, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(default=timezone.now, db_index=True)

    class Meta:
        verbose_name = _("clé d'idempotence")
        verbose_name_plural = _("clés d'idempotence")
        constraints = [
            models.UniqueConstraint(fields=["token", "key"], name="unique_idempotency_key"),
        ]

    def __str__(self) -> str:
        return self.key


class ReceiptPreference(models.Model):
    """How a professional answers read receipt requests: automatically (default) or when asked."""

    class Mode(models.TextChoices):
        AUTOMATIC = "auto", _("Automatiques")
        ON_REQUEST = "ask", _("Sur demande")

    user = models.OneToOneField(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="receipt_preference"
    )
    mode = models.CharField(
        _("accusés de lecture"), max_length=4, choices=Mode.choices, default=Mode.AUTOMATIC
    )
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name = _("préférence d'accusé de lecture")
        verbose_name_plural = _("préférences d'accusé de lecture")

    def __str__(self) -> str:
        return f"{self.user_id}: {self.mode}"


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
        Message,
        verbose_name=_("message"),
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="quarantine",
    )
    message_id_header = models.CharField(_("Message-ID"), max_length=255)
    from_addr = models.CharField(_("expéditeur"), max_length=254, db_index=True)
    recipients = models.JSONField(_("destinataires"), default=list)
    subject = SealedTextField(_("objet"), default="", blank=True)  # sealed like the message's
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
        # Created by the charter app (issue 6) and moved here with its table (issue 12).
        db_table = "charter_quarantine"
        verbose_name = _("message en quarantaine")
        verbose_name_plural = _("quarantaine antivirus")
        ordering = ["-quarantined_at"]

    def __str__(self) -> str:
        return f"{self.quarantined_at:%Y-%m-%d %H:%M} {self.from_addr}"


# The user's preferences for a box (signature, out-of-office reply, rules): see
# mailboxes/preferences_models.py. Imported here so that Django registers them.
from mailboxes.preferences_models import (  # noqa: E402, F401
    AutoReply,
    AutoReplySent,
    Contact,
    MailAlert,
    Rule,
    Signature,
)
