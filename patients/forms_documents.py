"""The form a patient fills to add a document of their own."""

from __future__ import annotations

from django import forms
from django.utils.translation import gettext_lazy as _

from patients.models_documents import PatientDocument


class AddDocumentForm(forms.Form):
    file = forms.FileField(
        label=_("Fichier"),
        help_text=_("PDF ou photo (JPEG, PNG) de préférence, par exemple une ordonnance scannée."),
        error_messages={"required": _("Choisissez le fichier à ajouter.")},
    )
    family = forms.ChoiceField(
        label=_("Type de document"),
        choices=PatientDocument.Family.choices,
        initial=PatientDocument.Family.PRESCRIPTION,
    )
    title = forms.CharField(label=_("Titre (facultatif)"), required=False, max_length=200)
    document_date = forms.DateField(
        label=_("Date du document (facultatif)"),
        required=False,
        widget=forms.DateInput(attrs={"type": "date"}),
    )
