from django.contrib import admin

from mailboxes.models import HostedDomain


@admin.register(HostedDomain)
class HostedDomainAdmin(admin.ModelAdmin):
    list_display = ["name", "kind", "description", "active"]
    list_filter = ["kind", "active"]
    search_fields = ["name", "description"]
