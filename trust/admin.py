"""Staff views of the trust rules: the liste blanche (read-only) and the recipient exceptions."""

from __future__ import annotations

from typing import Any

from django import forms
from django.conf import settings
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.db.models import Count, QuerySet
from django.http import HttpRequest, HttpResponse, HttpResponseNotAllowed, HttpResponseRedirect
from django.urls import path, reverse
from django.utils import timezone
from django.utils.formats import date_format
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _

from accounts.access import current_user
from trust import listeblanche, services
from trust.models import (
    ListeBlancheImport,
    ListedDomain,
    OperatorCertificate,
    RecipientLimitException,
)


class ReadOnlyAdmin(admin.ModelAdmin):
    """Nobody adds, changes or deletes here, superusers included: only an import writes."""

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


class CertificateInline(admin.TabularInline):
    model = OperatorCertificate
    fields = ("dn", "updated_at")
    readonly_fields = fields
    extra = 0
    can_delete = False

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


@admin.register(ListedDomain)
class ListedDomainAdmin(ReadOnlyAdmin):
    """The list is only ever replaced by an import, so it is read-only here."""

    list_display = ("name", "description", "certificate_count", "updated_at")
    search_fields = ("name", "description", "certificates__dn")
    fields = ("name", "description", "responsible_contact", "support_contact", "updated_at")
    readonly_fields = fields
    inlines = [CertificateInline]

    def get_queryset(self, request: HttpRequest) -> QuerySet[ListedDomain]:
        return super().get_queryset(request).annotate(_certificates=Count("certificates"))

    @admin.display(description=_("certificats"), ordering="_certificates")
    def certificate_count(self, obj: Any) -> int:
        return int(obj._certificates)

    def changelist_view(self, request: HttpRequest, extra_context: Any = None) -> HttpResponse:
        # Staff must see at a glance how fresh the list is and whether the last
        # scheduled refresh was refused.
        extra = {
            "last_import": listeblanche.last_import(),
            "last_success": listeblanche.last_successful_import(),
            "may_import": _may_import(request),
            "upload_form": UploadForm(),
            "refresh_form": RefreshForm(),
            "source_url": settings.LISTE_BLANCHE_URL,
            "max_mb": settings.LISTE_BLANCHE_MAX_BYTES // (1024 * 1024),
            **(extra_context or {}),
        }
        return super().changelist_view(request, extra)

    def get_urls(self) -> list[Any]:
        view = self.admin_site.admin_view
        return [
            path("importer/", view(self.upload_view), name="trust_listeblanche_upload"),
            path("rafraichir/", view(self.refresh_view), name="trust_listeblanche_refresh"),
            *super().get_urls(),
        ]

    def upload_view(self, request: HttpRequest) -> HttpResponse:
        """A liste blanche file uploaded by staff, imported through the command's path."""
        refused = _refuse_request(request)
        if refused is not None:
            return refused
        form = UploadForm(request.POST, request.FILES)
        if not form.is_valid():
            for errors in form.errors.values():
                for error in errors:
                    messages.error(request, str(error))
            return _back()
        upload = form.cleaned_data["fichier"]
        name = _printable(upload.name or "")
        source = gettext("fichier téléversé : %(name)s") % {"name": name}
        if upload.size > settings.LISTE_BLANCHE_MAX_BYTES:
            # Not even opened; recorded as refused all the same (the command would be).
            run = listeblanche.refuse(
                source,
                gettext("Fichier trop volumineux (plus de %(n)s octets).")
                % {"n": settings.LISTE_BLANCHE_MAX_BYTES},
                by=current_user(request),
            )
        else:
            with upload.open("rb") as stream:
                run = listeblanche.import_liste_blanche(
                    source,
                    force=form.cleaned_data["forcer"],
                    by=current_user(request),
                    stream=stream,
                )
        _tell(request, run)
        return _back()

    def refresh_view(self, request: HttpRequest) -> HttpResponse:
        """Fetch the liste blanche now from LISTE_BLANCHE_URL (what the scheduled task does)."""
        refused = _refuse_request(request)
        if refused is not None:
            return refused
        form = RefreshForm(request.POST)
        url = settings.LISTE_BLANCHE_URL
        if not url:
            messages.error(
                request,
                gettext(
                    "Aucune source n'est configurée (LISTE_BLANCHE_URL est vide) : "
                    "rien n'a été importé. Téléversez le fichier ci-dessous."
                ),
            )
            return _back()
        force = bool(form.is_valid() and form.cleaned_data["forcer"])
        _tell(
            request, listeblanche.import_liste_blanche(url, force=force, by=current_user(request))
        )
        return _back()


class UploadForm(forms.Form):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("auto_id", "importer_%s")  # two forms on one page: distinct ids
        super().__init__(*args, **kwargs)

    fichier = forms.FileField(
        label=_("Fichier XML de la liste blanche"),
        max_length=255,
        help_text=_("Le fichier publié par l'ANS (ListeBlancheMSSante), tel quel."),
    )
    forcer = forms.BooleanField(
        label=_(
            "Forcer l'import (comme --force) : malgré un fichier tronqué ou trop de "
            "domaines retirés"
        ),
        required=False,
    )


class RefreshForm(forms.Form):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("auto_id", "rafraichir_%s")
        super().__init__(*args, **kwargs)

    forcer = forms.BooleanField(
        label=_(
            "Forcer l'import (comme --force) : malgré un fichier tronqué ou trop de "
            "domaines retirés"
        ),
        required=False,
    )


IMPORT_PERMISSION = "trust.add_listeblancheimport"


def _may_import(request: HttpRequest) -> bool:
    return bool(request.user.has_perm(IMPORT_PERMISSION))


def _refuse_request(request: HttpRequest) -> HttpResponse | None:
    if request.method != "POST":
        return HttpResponseNotAllowed(["POST"])
    if not _may_import(request):
        raise PermissionDenied
    return None


def _back() -> HttpResponse:
    return HttpResponseRedirect(reverse("admin:trust_listeddomain_changelist"))


def _printable(name: str) -> str:
    """An uploaded file's name as shown and recorded: printable characters, bounded."""
    return "".join(c for c in name if c.isprintable())[:200] or "?"


def _tell(request: HttpRequest, run: ListeBlancheImport) -> None:
    """The outcome of an import, in the words the command uses."""
    if run.result == ListeBlancheImport.Result.REFUSED:
        messages.error(
            request,
            gettext("Import refusé, liste actuelle conservée : %(why)s") % {"why": run.messages},
        )
        return
    generated = (
        date_format(timezone.localtime(run.generated_at), "DATETIME_FORMAT")
        if run.generated_at
        else gettext("inconnue")
    )
    messages.success(
        request,
        gettext(
            "Liste blanche importée (fichier généré le %(generated)s) : %(domains)s domaines, "
            "%(certificates)s certificats, %(added)s ajoutés, %(removed)s retirés."
        )
        % {
            "generated": generated,
            "domains": run.domains,
            "certificates": run.certificates,
            "added": run.added,
            "removed": run.removed,
        },
    )
    for line in run.messages.splitlines()[:20]:
        messages.warning(request, gettext("Avertissement : %(line)s") % {"line": line})


@admin.register(ListeBlancheImport)
class ListeBlancheImportAdmin(ReadOnlyAdmin):
    list_display = (
        "started_at",
        "result",
        "generated_at",
        "domains",
        "certificates",
        "added",
        "removed",
        "forced",
    )
    list_filter = ("result",)
    fields = (
        "started_at",
        "finished_at",
        "source",
        "generated_at",
        "result",
        "forced",
        "by",
        "entries",
        "domains",
        "certificates",
        "added",
        "removed",
        "messages",
    )
    readonly_fields = fields


# --- Recipient limit exceptions ------------------------------------------------------------


class RecipientExceptionForm(forms.ModelForm):
    class Meta:
        model = RecipientLimitException
        fields = ("mailbox", "reason", "valid_until")

    def clean_valid_until(self) -> Any:
        value = self.cleaned_data["valid_until"]
        if value is not None and value <= timezone.now():
            raise forms.ValidationError(_("La date de fin doit être dans le futur."))
        return value


@admin.register(RecipientLimitException)
class RecipientLimitExceptionAdmin(admin.ModelAdmin):
    """Granted here (through the service, so it is audited), never edited: revoke and re-grant."""

    form = RecipientExceptionForm
    list_display = ("mailbox", "valid_until", "granted_by", "granted_at", "revoked_at")
    list_filter = ("valid_until", "revoked_at")
    search_fields = ("mailbox__address",)
    raw_id_fields = ("mailbox",)
    list_select_related = ("mailbox", "granted_by")
    actions = ["revoke"]

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> Any:
        if obj is None:
            return ()
        return (
            "mailbox",
            "reason",
            "valid_until",
            "granted_by",
            "granted_at",
            "revoked_at",
            "revoked_by",
        )

    def save_model(self, request: HttpRequest, obj: Any, form: Any, change: bool) -> None:
        created = services.grant_recipient_exception(
            form.cleaned_data["mailbox"],
            reason=form.cleaned_data["reason"],
            valid_until=form.cleaned_data["valid_until"],
            by=current_user(request),
        )
        obj.pk = created.pk

    @admin.action(description=_("Révoquer maintenant"))
    def revoke(self, request: HttpRequest, queryset: QuerySet[RecipientLimitException]) -> None:
        for exception in queryset:
            services.revoke_recipient_exception(exception, by=current_user(request))
        self.message_user(request, gettext("Dérogation(s) révoquée(s)."), messages.SUCCESS)
