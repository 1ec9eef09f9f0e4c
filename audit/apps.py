from django.apps import AppConfig
from django.db.models.signals import post_migrate, post_save
from django.utils.translation import gettext_lazy as _

from audit import checks  # noqa: F401  (registers the journal's system checks)
from audit.dbroles import grant_app_role
from audit.positions import realign_after_migrate


class AuditConfig(AppConfig):
    name = "audit"
    verbose_name = _("Journal d'audit")

    def ready(self) -> None:
        # Models (LogEntry, and the journal's own through admin_journal) are importable
        # only once the registry is ready.
        from django.contrib.admin.models import LogEntry

        from audit.admin_journal import record_admin_change

        # The one place every admin write passes through (see audit/admin_journal.py).
        post_save.connect(record_admin_change, sender=LogEntry, dispatch_uid="audit-admin-journal")
        # After each migrate by the schema owner: the application's role may only add
        # to the audit journal (see audit/dbroles.py).
        post_migrate.connect(grant_app_role, sender=self, dispatch_uid="audit-grant-app-role")
        # After a logical restore, the journal's positions must still go forward.
        post_migrate.connect(
            realign_after_migrate, sender=self, dispatch_uid="audit-realign-positions"
        )
