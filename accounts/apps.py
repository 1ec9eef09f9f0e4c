from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class AccountsConfig(AppConfig):
    name = "accounts"
    verbose_name = _("Comptes et identités")

    def ready(self) -> None:
        from django.contrib.auth.signals import user_logged_in, user_logged_out

        from accounts import account_sessions

        # Every login path (password and code, passkey, Pro Santé Connect) records its
        # session for the account page, whichever view called login().
        user_logged_in.connect(account_sessions.on_login, dispatch_uid="accounts.session_opened")
        user_logged_out.connect(account_sessions.on_logout, dispatch_uid="accounts.session_closed")
