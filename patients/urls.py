"""Patient space URLs, under /patient/ (namespace ``patients``; the landing page is ``patient_home``)."""

from django.urls import include, path

from patients import views, views_data, views_family, views_services

app_name = "patients"

urlpatterns = [
    path("", views.home, name="home"),
    path("message/<int:entry_id>/", views.conversation_view, name="conversation"),
    path("message/<int:entry_id>/repondre/", views.reply_view, name="reply"),
    path("message/<int:entry_id>/pj/<int:index>/", views.download_view, name="download"),
    path("message/<int:entry_id>/source/", views.source_view, name="source"),
    path("message/<int:entry_id>/pj/<int:index>/apercu/", views.preview_view, name="preview"),
    path("echanges/", views.exchanges_view, name="exchanges"),
    path("documents/", include("patients.urls_documents")),
    path("notifications/", views.preferences_view, name="preferences"),
    path("famille/profil/", views_family.switch_view, name="family_switch"),
    path("agenda/", include("patients.urls_agenda")),
    path("services/", views_services.services_view, name="services"),
    path("services/<int:service_id>/", views_services.service_change_view, name="service_change"),
    path("mes-donnees/", views_data.my_data_view, name="my_data"),
    path("mes-donnees/archive/", views_data.archive_view, name="archive"),
    path("mes-donnees/fermer/", views_data.close_view, name="close_space"),
    path("activation/<str:token>/e-mail/", views.activation_email_view, name="activation_email"),
    # Professional side: close a conversation with a patient.
    path("pro/message/<int:entry_id>/clore/", views.close_conversation_view, name="close"),
]
