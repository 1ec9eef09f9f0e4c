from django.urls import path

from mailboxes import views

urlpatterns = [
    path("", views.webmail_home, name="webmail_home"),
]
