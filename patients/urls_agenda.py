"""Mon agenda URLs, under /patient/agenda/ (in the ``patients`` namespace)."""

from django.urls import path

from patients import views_agenda

urlpatterns = [
    path("", views_agenda.agenda_view, name="agenda"),
    path("agenda.ics", views_agenda.agenda_ics_view, name="agenda_ics"),
    path("<int:appointment_id>/repondre/", views_agenda.answer_view, name="agenda_answer"),
    path(
        "<int:appointment_id>/rendez-vous.ics",
        views_agenda.appointment_ics_view,
        name="agenda_event_ics",
    ),
]
