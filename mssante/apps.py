from django.apps import AppConfig
from django.contrib.admin import apps as admin_apps


class MssanteConfig(AppConfig):
    name = "mssante"
    verbose_name = "MSSanté"
    default = True


class PortalAdminConfig(admin_apps.AdminConfig):
    default = False
    default_site = "mssante.admin.PortalAdminSite"
