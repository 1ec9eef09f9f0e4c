from django.urls import path

from accounts.views import account, account_passkeys, activation, email, login, psc

app_name = "accounts"

urlpatterns = [
    path("connexion/", login.login_view, name="login"),
    path("connexion/code/", login.code_view, name="login_code"),
    path("connexion/enrolement/", login.enrol_view, name="login_enrol"),
    path("connexion/codes-de-secours/", login.backup_codes_view, name="backup_codes"),
    path("deconnexion/", login.logout_view, name="logout"),
    # Pro Santé Connect (issue 16)
    path("connexion/psc/", psc.psc_start, name="psc_start"),
    path("connexion/psc/retour/", psc.psc_callback, name="psc_callback"),
    path("activation/<str:token>/", activation.activation_view, name="activation"),
    path("compte/mot-de-passe/", activation.password_change_view, name="password_change"),
    path("compte/adresse-e-mail/", email.email_change_view, name="email_change"),
    path(
        "compte/adresse-e-mail/confirmer/<str:token>/",
        email.email_confirm_view,
        name="email_confirm",
    ),
    # The account page, passkeys and sessions (issue 16).
    path("compte/", account.account_view, name="account"),
    path(
        "compte/codes-de-secours/",
        account.backup_codes_regenerate_view,
        name="backup_codes_regenerate",
    ),
    path("compte/sessions/<int:session_id>/fermer/", account.session_end_view, name="session_end"),
    path("compte/sessions/fermer-toutes/", account.sessions_end_all_view, name="sessions_end_all"),
    path("compte/cle-requise/", account.strong_factor_view, name="strong_factor"),
    path(
        "compte/cles-d-acces/options/",
        account_passkeys.register_options_view,
        name="passkey_register_options",
    ),
    path("compte/cles-d-acces/", account_passkeys.register_view, name="passkey_register"),
    path(
        "compte/cles-d-acces/<int:passkey_id>/renommer/",
        account_passkeys.rename_view,
        name="passkey_rename",
    ),
    path(
        "compte/cles-d-acces/<int:passkey_id>/supprimer/",
        account_passkeys.revoke_view,
        name="passkey_revoke",
    ),
    path(
        "compte/cles-d-acces/confirmer/options/",
        account_passkeys.confirm_options_view,
        name="passkey_confirm_options",
    ),
    path(
        "compte/cles-d-acces/confirmer/",
        account_passkeys.confirm_view,
        name="passkey_confirm",
    ),
    path(
        "connexion/cle-d-acces/options/",
        account_passkeys.login_options_view,
        name="passkey_login_options",
    ),
    path("connexion/cle-d-acces/", account_passkeys.login_view, name="passkey_login"),
]
