from __future__ import annotations

from typing import Any

from django import forms
from django.contrib.auth import password_validation
from django.utils.translation import gettext_lazy as _

from patients.models import NotificationPreference


class ReplyForm(forms.Form):
    text = forms.CharField(
        label=_("Votre réponse"),
        required=False,
        max_length=100_000,
        widget=forms.Textarea(attrs={"rows": 6}),
    )


class PreferencesForm(forms.Form):
    # The personal address is changed by its own form (accounts.views.email): a fresh
    # code, then a link to the new address. It receives login codes.
    frequency = forms.ChoiceField(
        label=_("Me prévenir"),
        choices=NotificationPreference.Frequency.choices,
        widget=forms.RadioSelect,
    )


class EmailActivationForm(forms.Form):
    password1 = forms.CharField(
        label=_("Nouveau mot de passe"),
        strip=False,
        help_text=_("Au moins 12 caractères, ni trop courant ni uniquement des chiffres."),
        widget=forms.PasswordInput(attrs={"autocomplete": "new-password"}),
    )
    password2 = forms.CharField(
        label=_("Confirmez le mot de passe"),
        strip=False,
        widget=forms.PasswordInput(attrs={"autocomplete": "new-password"}),
    )

    def __init__(self, *args: Any, user: Any = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.user = user

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        p1, p2 = data.get("password1"), data.get("password2")
        if p1 and p2 and p1 != p2:
            self.add_error("password2", _("Les deux mots de passe ne sont pas identiques."))
        elif p1:
            try:
                password_validation.validate_password(p1, self.user)
            except forms.ValidationError as exc:
                self.add_error("password1", exc)
        return data
