"""Charter pages for users: reporting unsolicited mail, objecting to an inactivity closure."""

from django.urls import path

from charter import views

app_name = "charter"

urlpatterns = [
    path("signaler/<int:entry_id>/", views.report_view, name="report"),
    path("inactivite/<str:token>/", views.inactivity_objection_view, name="inactivity_objection"),
]
