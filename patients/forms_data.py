"""The form of « Mes données »: closing the space asks for the password again."""

from __future__ import annotations

from django import forms
from django.utils.translation import gettext_lazy as _


class CloseSpaceForm(forms.Form):
    password = forms.CharField(
        label=_("Votre mot de passe"),
        strip=False,
        max_length=4096,
        widget=forms.PasswordInput(attrs={"autocomplete": "current-password"}),
    )
    confirm = forms.BooleanField(
        label=_(
            "Je comprends que mon espace sera fermé : je ne pourrai plus m'y connecter ni "
            "recevoir de messages de mes professionnels de santé."
        ),
        error_messages={"required": _("Cochez cette case pour confirmer la fermeture.")},
    )
