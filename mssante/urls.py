from django.contrib import admin
from django.urls import include, path
from django.views.i18n import set_language

from directory import views as directory_views
from mssante import views

urlpatterns = [
    path("", views.home, name="home"),
    path("", include("accounts.urls")),
    path("messagerie/", include("mailboxes.urls")),
    path("patient/", views.patient_home, name="patient_home"),
    path("langue/", set_language, name="set_language"),
    path("sante/", views.health, name="health"),
    path("annuaire/", include("directory.urls")),
    path("fhir/", include("directory.fhir_urls")),
    # The spelling of the autocomplete endpoint, kept next to the French one.
    path("directory/autocomplete", directory_views.autocomplete),
    path("admin/", admin.site.urls),
]
