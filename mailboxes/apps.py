from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class MailboxesConfig(AppConfig):
    name = "mailboxes"
    verbose_name = _("Boîtes aux lettres")

    def ready(self) -> None:
        from accounts.signals import account_closed
        from mailboxes import receivers

        account_closed.connect(
            receivers.close_boxes_of_closed_account,
            dispatch_uid="mailboxes.close_boxes_of_closed_account",
        )
