from django.apps import AppConfig
from django.db.models.signals import post_migrate
from django.utils.translation import gettext_lazy as _


class MailboxesConfig(AppConfig):
    name = "mailboxes"
    verbose_name = _("Boîtes aux lettres")

    def ready(self) -> None:
        from celery import signals as celery_signals

        from accounts.signals import account_closed
        from mailboxes import dbtriggers, receivers

        account_closed.connect(
            receivers.close_boxes_of_closed_account,
            dispatch_uid="mailboxes.close_boxes_of_closed_account",
        )
        celery_signals.worker_ready.connect(
            receivers.worker_ready, dispatch_uid="mailboxes.worker_ready", weak=False
        )
        # SQLite drops a table's triggers when Django rebuilds it: put the counters' back.
        post_migrate.connect(
            dbtriggers.restore_sqlite_triggers,
            sender=self,
            dispatch_uid="mailboxes.restore_sqlite_triggers",
        )
