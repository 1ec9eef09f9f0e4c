from __future__ import annotations

from typing import Any

from django import forms
from django.contrib.auth import password_validation
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _

from accounts.identity import login_key
from mssante.lib.identifiers import IdentifierError


class LoginForm(forms.Form):
    identifier = forms.CharField(
        label=_("Identifiant"),
        help_text=_("Numéro RPPS ou Adeli pour un professionnel, matricule INS pour un patient."),
        max_length=64,
        widget=forms.TextInput(attrs={"autocomplete": "username", "autofocus": True}),
    )
    password = forms.CharField(
        label=_("Mot de passe"),
        strip=False,
        widget=forms.PasswordInput(attrs={"autocomplete": "current-password"}),
    )

    def clean_identifier(self) -> str:
        value: str = self.cleaned_data["identifier"]
        try:
            login_key(value)
        except IdentifierError as exc:
            # Only the form of the number is judged here, never whether it exists.
            raise forms.ValidationError(gettext(str(exc))) from None
        return value


class CodeForm(forms.Form):
    code = forms.CharField(
        label=_("Code à usage unique"),
        help_text=_("Les 6 chiffres de votre application, ou un code de secours."),
        max_length=16,
        widget=forms.TextInput(
            attrs={"autocomplete": "one-time-code", "inputmode": "numeric", "autofocus": True}
        ),
    )

    def clean_code(self) -> str:
        return "".join(self.cleaned_data["code"].split())


class PasswordSetForm(forms.Form):
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
    code = CodeForm.base_fields["code"]

    def __init__(self, *args: Any, user: Any = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.user = user
        self.fields["code"].help_text = _("Le code à 6 chiffres affiché par votre application.")
        self.fields["code"].widget.attrs.pop("autofocus", None)

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
        if data.get("code"):
            data["code"] = "".join(data["code"].split())
        return data


class EmailChangeForm(forms.Form):
    """A new personal address, with a fresh one-time code proving the holder is here."""

    new_email = forms.EmailField(
        label=_("Nouvelle adresse e-mail personnelle"),
        help_text=_(
            "Un lien de confirmation y sera envoyé : l'adresse ne changera qu'une fois ce lien suivi."
        ),
        max_length=254,
        widget=forms.EmailInput(attrs={"autocomplete": "email"}),
    )
    code = forms.CharField(
        label=_("Code à usage unique"),
        help_text=_("Le code de votre application, un code reçu par e-mail ou un code de secours."),
        max_length=16,
        widget=forms.TextInput(attrs={"autocomplete": "one-time-code", "inputmode": "numeric"}),
    )

    def __init__(self, *args: Any, user: Any = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.user = user

    def clean_new_email(self) -> str:
        value: str = self.cleaned_data["new_email"].strip()
        if self.user is not None and value.lower() == (self.user.email or "").lower():
            raise forms.ValidationError(gettext("C'est déjà l'adresse enregistrée."))
        return value

    def clean_code(self) -> str:
        return "".join(self.cleaned_data["code"].split())
