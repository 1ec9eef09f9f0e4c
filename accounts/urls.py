from django.urls import path

from accounts.views import activation, email, login, psc

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
]
