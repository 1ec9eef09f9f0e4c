"""Forms of the webmail: compose, folders, search. Validation of addresses stays in the service."""

from __future__ import annotations

import re
from typing import Any, cast

from django import forms
from django.utils.translation import gettext_lazy as _

from accounts.models import PatientIdentity
from mailboxes.models import AccessEvent, ApiScope, Folder
from mailboxes.selectors import folder_label, folder_sort_key
from mssante.lib import searchindex, xdm

_SEPARATORS = re.compile(r"[,;\n\r]+")


def split_addresses(value: str) -> list[str]:
    """Addresses typed one per line or separated by commas (or semicolons, as Outlook users do)."""
    return [part.strip() for part in _SEPARATORS.split(value or "") if part.strip()]


def join_addresses(values: list[str] | None) -> str:
    return ", ".join(values or [])


# Suggestions after two characters (static/js/directory-autocomplete.js): the user's
# favourites, the patients they exchanged with (by name), then the directory.
RECIPIENT_ATTRS = {
    "autocomplete": "off",
    "spellcheck": "false",
    "data-directory-autocomplete": "/messagerie/destinataires/suggestions",
}


class ComposeForm(forms.Form):
    """What the user types. Every field may be empty while drafting; sending is checked by the service."""

    to = forms.CharField(
        label=_("À"),
        required=False,
        help_text=_("Adresses MSSanté séparées par des virgules."),
        widget=forms.TextInput(attrs=RECIPIENT_ATTRS),
    )
    cc = forms.CharField(
        label=_("Copie"),
        required=False,
        widget=forms.TextInput(attrs=RECIPIENT_ATTRS),
    )
    bcc = forms.CharField(
        label=_("Copie cachée (Cci)"),
        required=False,
        help_text=_("Reçoivent le message sans que les autres destinataires le sachent."),
        widget=forms.TextInput(attrs=RECIPIENT_ATTRS),
    )
    subject = forms.CharField(label=_("Objet"), required=False, max_length=998)
    text = forms.CharField(
        label=_("Message"),
        required=False,
        # The blank lines above a quoted reply are where the answer goes: kept.
        strip=False,
        widget=forms.Textarea(attrs={"rows": 14}),
    )
    # The rich-text editor's HTML (static/js/compose.js); sanitised by the service.
    html = forms.CharField(required=False, widget=forms.HiddenInput)

    def addresses(self, name: str) -> list[str]:
        return split_addresses(self.cleaned_data.get(name, ""))


_INS_RE = re.compile(r"^[0-9][0-9AB][0-9]{13}$")


class XdmForm(forms.Form):
    """ "Joindre au dossier du patient": who, which document type, which files (IHE XDM)."""

    patient = forms.TypedChoiceField(
        label=_("Patient à qui vous avez écrit"),
        required=False,
        coerce=int,
        empty_value=None,
        help_text=_("Ou saisissez son identité ci-dessous."),
    )
    ins = forms.CharField(
        label=_("Matricule INS"),
        required=False,
        max_length=15,
        help_text=_("15 caractères."),
    )
    oid = forms.ChoiceField(label=_("Type d'INS (OID)"), required=False, choices=())
    birth_name = forms.CharField(label=_("Nom de naissance"), required=False, max_length=100)
    first_names = forms.CharField(label=_("Prénoms"), required=False, max_length=200)
    birth_date = forms.DateField(
        label=_("Date de naissance"),
        required=False,
        widget=forms.DateInput(attrs={"type": "date"}),
    )
    sex = forms.ChoiceField(label=_("Sexe"), required=False, choices=())
    qualified = forms.BooleanField(
        label=_("INS qualifiée"),
        required=False,
        help_text=_("L'identité a été vérifiée auprès du téléservice INSi."),
    )
    type_code = forms.ChoiceField(label=_("Type de document"), choices=())
    attachments = forms.TypedMultipleChoiceField(
        label=_("Pièces jointes du brouillon à inclure"),
        required=False,
        coerce=int,
        choices=(),
        widget=forms.CheckboxSelectMultiple,
    )

    def __init__(
        self,
        *args: Any,
        patients: list[tuple[int, str]],
        files: list[tuple[int, str]],
        **kwargs: Any,
    ) -> None:
        super().__init__(*args, **kwargs)
        cast(forms.ChoiceField, self.fields["patient"]).choices = [
            ("", _("— Saisir l'identité —")),
            *[(str(pk), label) for pk, label in patients],
        ]
        cast(forms.ChoiceField, self.fields["oid"]).choices = PatientIdentity.Oid.choices
        cast(forms.ChoiceField, self.fields["sex"]).choices = [
            ("", "—"),
            *PatientIdentity.Sex.choices,
        ]
        cast(forms.ChoiceField, self.fields["type_code"]).choices = [
            (code, f"{_(label)} ({code})") for code, label in xdm.DOCUMENT_TYPES.items()
        ]
        cast(forms.ChoiceField, self.fields["attachments"]).choices = [
            (str(pk), label) for pk, label in files
        ]

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        if data.get("patient"):
            return data
        ins = (data.get("ins") or "").strip().upper()
        if not _INS_RE.match(ins):
            self.add_error("ins", _("Le matricule INS compte 15 caractères (chiffres, 2A ou 2B)."))
        data["ins"] = ins
        for name in ("oid", "birth_name", "first_names", "birth_date", "sex"):
            if not data.get(name) and name not in self.errors:
                self.add_error(name, _("Ce champ est obligatoire quand l'identité est saisie."))
        return data


class FolderNameForm(forms.Form):
    name = forms.CharField(label=_("Nom du dossier"), max_length=100, strip=True)

    def clean_name(self) -> str:
        name: str = self.cleaned_data["name"]
        if not name:
            raise forms.ValidationError(_("Donnez un nom au dossier."))
        return name


class _FoldersInOrder(forms.models.ModelChoiceIterator):
    """The folders in the sidebar's order (names are sealed: sorted in Python)."""

    def __iter__(self) -> Any:
        if self.field.empty_label is not None:
            yield ("", self.field.empty_label)
        for obj in sorted(self.queryset, key=folder_sort_key):
            yield self.choice(obj)


class FolderChoiceField(forms.ModelChoiceField):
    iterator = _FoldersInOrder

    def label_from_instance(self, obj: Any) -> str:
        return folder_label(obj)


class MoveForm(forms.Form):
    folder = FolderChoiceField(label=_("Déplacer vers"), queryset=Folder.objects.none())

    def __init__(
        self, *args: Any, mailbox_id: int, exclude: Folder | None = None, **kwargs: Any
    ) -> None:
        super().__init__(*args, **kwargs)
        # Only folders of the entry's own mailbox: an id from elsewhere is "not a choice".
        # Drafts hold drafts, not messages.
        choices = Folder.objects.filter(mailbox_id=mailbox_id).exclude(role=Folder.Role.DRAFTS)
        if exclude is not None:
            choices = choices.exclude(pk=exclude.pk)
        self.fields["folder"].queryset = choices  # type: ignore[attr-defined]


class SearchForm(forms.Form):
    """A search: words and filters, every one optional but at least one given.

    Bounded like any input from a browser: 200 characters a text field, at most
    ``searchindex.MAX_QUERY_WORDS`` words each, a folder of this box only, real dates.
    """

    q = forms.CharField(
        label=_("Mots recherchés"),
        help_text=_("Dans l'objet, le texte du message, les pièces jointes et les correspondants."),
        max_length=200,
        required=False,
        strip=True,
    )
    sender = forms.CharField(label=_("De"), max_length=200, required=False, strip=True)
    recipient = forms.CharField(label=_("À"), max_length=200, required=False, strip=True)
    folder = forms.TypedChoiceField(
        label=_("Dossier"), required=False, coerce=int, empty_value=None, choices=()
    )
    since = forms.DateField(
        label=_("Reçu depuis le"), required=False, widget=forms.DateInput(attrs={"type": "date"})
    )
    until = forms.DateField(
        label=_("Reçu jusqu'au (inclus)"),
        required=False,
        widget=forms.DateInput(attrs={"type": "date"}),
    )
    unread = forms.BooleanField(label=_("Non lus seulement"), required=False)
    with_attachments = forms.BooleanField(label=_("Avec pièces jointes"), required=False)

    def __init__(self, *args: Any, folders: list[tuple[int, str]] | None = None, **kwargs: Any):
        super().__init__(*args, **kwargs)
        choices = [("", _("Tous (sauf la corbeille)")), *(folders or [])]
        cast(forms.TypedChoiceField, self.fields["folder"]).choices = choices

    def _words(self, name: str) -> str:
        value: str = self.cleaned_data.get(name, "")
        if len(searchindex.words(value, searchindex.MAX_QUERY_WORDS + 1)) > (
            searchindex.MAX_QUERY_WORDS
        ):
            raise forms.ValidationError(
                _("%(max)d mots au plus : précisez la recherche."),
                code="too_many_words",
                params={"max": searchindex.MAX_QUERY_WORDS},
            )
        return value

    def clean_q(self) -> str:
        return self._words("q")

    def clean_sender(self) -> str:
        return self._words("sender")

    def clean_recipient(self) -> str:
        return self._words("recipient")

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        for name in ("since", "until"):
            day = data.get(name)
            if day is not None and not 1900 <= day.year <= 2200:
                # (add_error takes the value out of cleaned_data)
                self.add_error(name, _("Saisissez une date entre 1900 et 2200."))
        since, until = data.get("since"), data.get("until")
        if since and until and since > until:
            self.add_error("until", _("La date de fin précède la date de début."))
        if not self.errors and not any(data.get(k) for k in self.fields):
            raise forms.ValidationError(
                _("Saisissez au moins un mot ou choisissez un filtre."), code="empty"
            )
        for name in ("q", "sender", "recipient"):
            value = data.get(name)
            if value and not searchindex.words(value):
                self.add_error(name, _("Saisissez des mots d'au moins deux lettres ou chiffres."))
        return data


# --------------------------------------------------------------------------- sharing


class MemberForm(forms.Form):
    """Add a member or a delegate: their RPPS or Adeli number, a role, an optional end date."""

    identifier = forms.CharField(
        label=_("Identifiant RPPS ou Adeli"),
        max_length=20,
        help_text=_("11 chiffres (RPPS) ou 9 chiffres (Adeli)."),
    )
    role = forms.ChoiceField(label=_("Rôle"), choices=())
    expires_on = forms.DateField(
        label=_("Jusqu'au (inclus)"),
        required=False,
        help_text=_("Laissez vide pour un accès sans date de fin."),
        widget=forms.DateInput(attrs={"type": "date"}),
    )

    def __init__(self, *args: Any, roles: list[tuple[str, str]], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        cast(forms.ChoiceField, self.fields["role"]).choices = roles


class MembershipChangeForm(forms.Form):
    role = forms.ChoiceField(label=_("Rôle"), choices=())
    expires_on = forms.DateField(
        label=_("Jusqu'au (inclus)"),
        required=False,
        widget=forms.DateInput(attrs={"type": "date"}),
    )

    def __init__(self, *args: Any, roles: list[tuple[str, str]], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        cast(forms.ChoiceField, self.fields["role"]).choices = roles


class JournalFilterForm(forms.Form):
    """Filters of the access journal page (all optional)."""

    actor = forms.TypedChoiceField(
        label=_("Personne"), required=False, coerce=int, empty_value=None
    )
    action = forms.ChoiceField(label=_("Action"), required=False)
    since = forms.DateField(
        label=_("Du"), required=False, widget=forms.DateInput(attrs={"type": "date"})
    )
    until = forms.DateField(
        label=_("Au (inclus)"), required=False, widget=forms.DateInput(attrs={"type": "date"})
    )

    def __init__(self, *args: Any, actors: list[tuple[int, str]], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        cast(forms.ChoiceField, self.fields["actor"]).choices = [("", _("Toutes"))] + [
            (str(pk), label) for pk, label in actors
        ]
        cast(forms.ChoiceField, self.fields["action"]).choices = [
            ("", _("Toutes")),
            *AccessEvent.Action.choices,
        ]


# --------------------------------------------------------------------------- preferences


class PreferencesForm(forms.Form):
    """The reader's settings: how read receipt requests are answered."""

    read_receipts = forms.ChoiceField(
        label=_("Accusés de lecture"),
        choices=[
            ("auto", _("Automatiques : envoyés dès l'ouverture d'un message qui en demande un")),
            ("ask", _("Sur demande : je choisis pour chaque message")),
        ],
        widget=forms.RadioSelect,
    )


class ApiAgreementForm(forms.Form):
    """The holder lets software use one of their boxes through the API, second factor again."""

    scope = forms.ChoiceField(
        label=_("Ce que le logiciel peut faire"),
        choices=ApiScope.choices,
        initial=ApiScope.READ,
        widget=forms.RadioSelect,
    )
    software = forms.CharField(
        label=_("Logiciel ou usage"),
        max_length=200,
        help_text=_("Par exemple : logiciel de cabinet, version, poste."),
        widget=forms.TextInput(attrs={"class": "fr-input"}),
    )
    code = forms.CharField(
        label=_("Code de votre application d'authentification"),
        max_length=16,
        help_text=_("Votre second facteur, saisi à nouveau pour confirmer que c'est bien vous."),
        widget=forms.TextInput(
            attrs={"class": "fr-input", "autocomplete": "one-time-code", "inputmode": "numeric"}
        ),
    )
