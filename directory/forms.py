"""The directory search form."""

from __future__ import annotations

from typing import Any

from django import forms
from django.utils.translation import gettext_lazy as _

from directory.models import DirectoryEntry
from directory.selectors import SearchFilters
from mssante.lib import professions


def _profession_choices() -> list[tuple[str, Any]]:
    # The extraction carries the bare code ("10"); the form posts it back as is.
    health = [
        (key.split(":", 1)[1], label)
        for key, label in professions.choices()
        if key.startswith(f"{professions.TABLE_G15}:")
    ]
    return [("", _("Toutes")), *health]


class SearchForm(forms.Form):
    q = forms.CharField(
        label=_("Nom ou adresse"),
        required=False,
        max_length=100,
        help_text=_("Par exemple « Dupont », « Hélène Martin » ou « cardiologie@ »."),
    )
    profession = forms.ChoiceField(label=_("Profession"), required=False, choices=())
    specialty = forms.CharField(label=_("Spécialité"), required=False, max_length=100)
    place = forms.CharField(label=_("Département ou code postal"), required=False, max_length=5)
    city = forms.CharField(label=_("Commune"), required=False, max_length=100)
    kind = forms.ChoiceField(
        label=_("Type de boîte"),
        required=False,
        choices=[
            ("", _("Toutes")),
            (DirectoryEntry.Kind.PERSONAL.value, _("Nominative (professionnel)")),
            (DirectoryEntry.Kind.ORGANISATIONAL.value, _("Organisationnelle (service, structure)")),
        ],
    )

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["profession"].choices = _profession_choices()  # type: ignore[attr-defined]

    def filters(self) -> SearchFilters:
        data = self.cleaned_data
        return SearchFilters(
            q=data.get("q", ""),
            profession=data.get("profession", ""),
            specialty=data.get("specialty", ""),
            place=data.get("place", ""),
            city=data.get("city", ""),
            kind=data.get("kind", ""),
        )

    def is_empty(self) -> bool:
        return not any(self.cleaned_data.get(name) for name in self.fields)
