from django.urls import path

from clients import views

app_name = "clients"

urlpatterns = [
    path("", views.app_passwords_view, name="app_passwords"),
    path("<int:password_id>/revoquer/", views.revoke_view, name="revoke"),
]
