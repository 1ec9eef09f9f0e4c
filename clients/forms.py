from __future__ import annotations

from typing import Any

from django import forms
from django.utils.translation import gettext_lazy as _

from clients.models import AppPassword
from mailboxes.models import Mailbox

ALL_BOXES = "all"


class AppPasswordForm(forms.Form):
    """A new application password: for what, where, and the second factor again."""

    label = forms.CharField(
        label=_("Appareil ou logiciel"),
        max_length=100,
        help_text=_("Par exemple : logiciel du cabinet, Thunderbird du secrétariat."),
        widget=forms.TextInput(attrs={"class": "fr-input", "autocomplete": "off"}),
    )
    scope = forms.ChoiceField(
        label=_("Ce que l'appareil peut faire"),
        choices=AppPassword.Scope.choices,
        initial=AppPassword.Scope.BOTH,
        widget=forms.Select(attrs={"class": "fr-select"}),
    )
    mailbox = forms.ChoiceField(
        label=_("Boîte"),
        widget=forms.Select(attrs={"class": "fr-select"}),
    )
    code = forms.CharField(
        label=_("Code de votre application d'authentification"),
        max_length=16,
        help_text=_("Votre second facteur, saisi à nouveau pour confirmer que c'est bien vous."),
        widget=forms.TextInput(
            attrs={"class": "fr-input", "autocomplete": "one-time-code", "inputmode": "numeric"}
        ),
    )

    def __init__(self, *args: Any, boxes: list[Mailbox], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.boxes = {str(box.pk): box for box in boxes}
        field = self.fields["mailbox"]
        assert isinstance(field, forms.ChoiceField)
        field.choices = [
            (ALL_BOXES, _("Toutes mes boîtes (avec mes droits dans chacune)")),
            *[(pk, box.address) for pk, box in self.boxes.items()],
        ]

    def chosen_box(self) -> Mailbox | None:
        value = self.cleaned_data["mailbox"]
        return None if value == ALL_BOXES else self.boxes[value]
