from django.apps import AppConfig
from django.db.models.signals import post_migrate, post_save
from django.utils.translation import gettext_lazy as _


class CharterConfig(AppConfig):
    name = "charter"
    verbose_name = _("Charte de l'espace de confiance")

    def ready(self) -> None:
        from django.contrib.admin.models import LogEntry

        # The anchoring task must be registered in every process (web, gateway, shell):
        # charter.audit.record enqueues it by name.
        from charter import checks, tasks  # noqa: F401
        from charter.admin_journal import record_admin_change
        from charter.dbroles import grant_app_role

        # The one place every admin write passes through (see charter/admin_journal.py).
        post_save.connect(
            record_admin_change, sender=LogEntry, dispatch_uid="charter-admin-journal"
        )
        # After each migrate by the schema owner: the application's role may only add
        # to the audit journal (see charter/dbroles.py).
        post_migrate.connect(grant_app_role, sender=self, dispatch_uid="charter-grant-app-role")
