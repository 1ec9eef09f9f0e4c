from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class ClientsConfig(AppConfig):
    """Practice software and mail clients: application passwords, SMTP submission, autoconfig."""

    name = "clients"
    verbose_name = _("Logiciels et clients de messagerie")
