"""Staff views of the directory: organisations, entries, practitioners and import runs."""

from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.http import HttpRequest
from django.utils.html import format_html_join
from django.utils.safestring import SafeString
from django.utils.translation import gettext_lazy as _

from directory.models import DirectoryEntry, ImportRun, Organisation, Practitioner


@admin.register(Organisation)
class OrganisationAdmin(admin.ModelAdmin):
    list_display = ["name", "finess", "siret", "postcode", "city"]
    search_fields = ["name", "finess", "siret", "city"]


class ReadOnlyAdmin(admin.ModelAdmin):
    """Rows written only by the importers and directory.services: staff look, never edit."""

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


@admin.register(DirectoryEntry)
class DirectoryEntryAdmin(ReadOnlyAdmin):
    list_display = [
        "address",
        "kind",
        "last_name",
        "first_name",
        "profession_label",
        "city",
        "source",
        "active",
    ]
    list_filter = ["source", "kind", "active"]
    search_fields = ["=address", "last_name_norm", "=national_id", "structure_name"]
    show_full_result_count = False


@admin.register(Practitioner)
class PractitionerAdmin(ReadOnlyAdmin):
    list_display = ["national_id", "last_name", "first_name", "profession_label", "city", "active"]
    list_filter = ["active"]
    search_fields = ["=national_id", "last_name"]
    show_full_result_count = False


@admin.register(ImportRun)
class ImportRunAdmin(ReadOnlyAdmin):
    list_display = [
        "started_at",
        "kind",
        "status",
        "read",
        "added",
        "updated",
        "unchanged",
        "deactivated",
        "rejected",
        "finished_at",
    ]
    list_filter = ["kind", "status"]
    readonly_fields = ["rejected_table"]
    exclude = ["rejected_lines"]

    @admin.display(description=_("premières lignes rejetées"))
    def rejected_table(self, run: ImportRun) -> SafeString:
        return format_html_join(
            "\n",
            "<div>{} {} : {}</div>",
            ((_("ligne"), r["line"], r["reason"]) for r in run.rejected_lines),
        )
