"""The forms of the preferences page for a box: signature, out-of-office reply, rules."""

from __future__ import annotations

from typing import Any

from django import forms
from django.utils.translation import gettext_lazy as _

from mailboxes import selectors
from mailboxes.models import Folder, Rule
from mailboxes.preferences_models import (
    AUTO_REPLY_MAX_CHARS,
    RULE_VALUE_MAX_CHARS,
    SIGNATURE_MAX_CHARS,
)
from mailboxes.services.preferences import INTERVAL_MAX_DAYS, INTERVAL_MIN_DAYS


class SignatureForm(forms.Form):
    text = forms.CharField(
        label=_("Signature"),
        help_text=_(
            "Texte simple, ajouté à la fin d'un nouveau message et au-dessus du message cité "
            "d'une réponse. Au plus %(limit)d caractères."
        )
        % {"limit": SIGNATURE_MAX_CHARS},
        required=False,
        max_length=SIGNATURE_MAX_CHARS,
        widget=forms.Textarea(attrs={"rows": 4, "class": "fr-input"}),
    )


class _DateInput(forms.DateInput):
    input_type = "date"

    def __init__(self, attrs: dict[str, Any] | None = None) -> None:
        super().__init__(attrs={"class": "fr-input", **(attrs or {})}, format="%Y-%m-%d")


class AutoReplyForm(forms.Form):
    enabled = forms.BooleanField(label=_("Activer la réponse automatique"), required=False)
    start = forms.DateField(label=_("Du"), widget=_DateInput())
    end = forms.DateField(label=_("Au (inclus)"), widget=_DateInput())
    text = forms.CharField(
        label=_("Message"),
        help_text=_("Envoyé une fois à chaque correspondant, jamais à un message automatique."),
        required=False,
        max_length=AUTO_REPLY_MAX_CHARS,
        widget=forms.Textarea(attrs={"rows": 5, "class": "fr-input"}),
    )
    professionals_only = forms.BooleanField(
        label=_("Ne répondre qu'aux professionnels (pas aux patients)"), required=False
    )
    interval_days = forms.IntegerField(
        label=_("Répondre de nouveau au même correspondant après (jours)"),
        help_text=_("De %(low)d à %(high)d jours.")
        % {"low": INTERVAL_MIN_DAYS, "high": INTERVAL_MAX_DAYS},
        min_value=INTERVAL_MIN_DAYS,
        max_value=INTERVAL_MAX_DAYS,
        initial=4,
        widget=forms.NumberInput(attrs={"class": "fr-input"}),
    )

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("auto_id", "absence-%s")
        super().__init__(*args, **kwargs)

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        start, end = data.get("start"), data.get("end")
        if start and end and end < start:
            self.add_error("end", _("La date de fin doit suivre la date de début."))
        return data


class RuleForm(forms.Form):
    condition = forms.ChoiceField(
        label=_("Si"),
        choices=Rule.Condition.choices,
        widget=forms.Select(attrs={"class": "fr-select"}),
    )
    value = forms.CharField(
        label=_("Valeur"),
        help_text=_("L'adresse ou le domaine de l'expéditeur, ou le texte de l'objet."),
        required=False,
        max_length=RULE_VALUE_MAX_CHARS,
        widget=forms.TextInput(attrs={"class": "fr-input"}),
    )
    action = forms.ChoiceField(
        label=_("Alors"),
        choices=Rule.Action.choices,
        widget=forms.Select(attrs={"class": "fr-select"}),
    )
    folder = forms.TypedChoiceField(
        label=_("Dossier"),
        help_text=_("Pour « Classer dans le dossier »."),
        coerce=int,
        required=False,
        empty_value=None,
        widget=forms.Select(attrs={"class": "fr-select"}),
    )

    def __init__(self, *args: Any, folders: list[Folder], **kwargs: Any) -> None:
        kwargs.setdefault("auto_id", "regle-%s")
        super().__init__(*args, **kwargs)
        self.fields["folder"].choices = [("", "—")] + [  # type: ignore[attr-defined]
            (f.pk, selectors.folder_label(f)) for f in folders
        ]
