"""Mes documents: the documents filed in a patient's space, received or added by them.

A received document points at its message and part (and, inside an IHE_XDM.ZIP, at its
place in the package): its bytes stay in the message's encrypted blob, never copied. A
document the patient adds is a blob of its own, sealed like a draft's file. Titles,
file names and authors are sealed columns: they are never filtered or ordered in SQL
(the search runs in Python over the patient's own bounded list).
"""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from mailboxes.fields import SealedTextField


class PatientDocument(models.Model):
    """One document of "Mes documents"."""

    class Family(models.TextChoices):
        REPORT = "compte_rendu", _("Compte rendu")
        RESULTS = "resultats", _("Résultats")
        PRESCRIPTION = "ordonnance", _("Ordonnance")
        IMAGING = "imagerie", _("Imagerie")
        LETTER = "courrier", _("Courrier")
        OTHER = "autre", _("Autre document")

    class Source(models.TextChoices):
        RECEIVED = "received", _("Reçu d'un professionnel")
        ADDED = "added", _("Ajouté par vous")

    patient = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        verbose_name=_("patient"),
        on_delete=models.CASCADE,
        related_name="health_documents",
    )
    source = models.CharField(_("origine"), max_length=8, choices=Source.choices)
    family = models.CharField(_("type"), max_length=12, choices=Family.choices)
    # The LOINC document type when the sender gave one (XDM metadata, X-MSS-CODECDA).
    type_code = models.CharField(_("code du type (LOINC)"), max_length=32, blank=True)
    title = SealedTextField(_("titre"), default="", blank=True)
    filename = SealedTextField(_("nom du fichier"), default="", blank=True)
    author = SealedTextField(_("auteur"), default="", blank=True)
    content_type = models.CharField(_("format"), max_length=127)
    size = models.PositiveIntegerField(_("taille"), default=0)
    document_date = models.DateTimeField(_("date du document"))
    filed_at = models.DateTimeField(_("classé le"), default=timezone.now)
    hidden_at = models.DateTimeField(_("masqué le"), null=True, blank=True)
    # Received: the message, its part, and the document's place in an XDM package
    # (0: the attachment itself).
    message = models.ForeignKey(
        "mailboxes.Message", null=True, blank=True, on_delete=models.CASCADE, related_name="+"
    )
    part_index = models.IntegerField(null=True, blank=True)
    package_number = models.PositiveSmallIntegerField(default=0)
    # Added by the patient: their file, sealed in the blob store.
    blob_name = models.CharField(max_length=200, blank=True)
    key_id = models.CharField(max_length=32, blank=True)
    wrapped_key = models.BinaryField(null=True, blank=True)

    class Meta:
        verbose_name = _("document du patient")
        verbose_name_plural = _("documents du patient")
        constraints = [
            models.UniqueConstraint(
                fields=["patient", "message", "part_index", "package_number"],
                condition=models.Q(message__isnull=False),
                name="unique_patient_document_part",
            ),
        ]
        indexes = [models.Index(fields=["patient", "-document_date"], name="patient_doc_date")]

    def __str__(self) -> str:
        return f"{self.patient_id}:{self.pk}"

    @property
    def hidden(self) -> bool:
        return self.hidden_at is not None


class FiledMessage(models.Model):
    """A message received in a patient's box whose documents were filed (even none)."""

    patient = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+"
    )
    message = models.ForeignKey("mailboxes.Message", on_delete=models.CASCADE, related_name="+")
    filed_at = models.DateTimeField(default=timezone.now)

    class Meta:
        verbose_name = _("message classé")
        verbose_name_plural = _("messages classés")
        constraints = [
            models.UniqueConstraint(fields=["patient", "message"], name="unique_filed_message"),
        ]

    def __str__(self) -> str:
        return f"{self.patient_id}:{self.message_id}"
