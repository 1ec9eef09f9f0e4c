from django.contrib import admin
from django.urls import include, path
from django.views.decorators.http import require_POST
from django.views.i18n import set_language

from clients import autoconfig
from directory import views as directory_views
from mailboxes.api import api
from mssante import views
from patients import views as patient_views

urlpatterns = [
    path("", views.home, name="home"),
    path("", include("accounts.urls")),
    path("messagerie/logiciels/", include("clients.urls")),
    path("messagerie/", include("mailboxes.urls")),
    path("patient/", patient_views.home, name="patient_home"),
    path("patient/", include("patients.urls")),
    # Django's view changes the language on POST only and redirects anything else: refused.
    path("langue/", require_POST(set_language), name="set_language"),
    path("sante/", views.health, name="health"),
    path("annuaire/", include("directory.urls")),
    path("fhir/", include("directory.fhir_urls")),
    # The spelling of the autocomplete endpoint, kept next to the French one.
    path("directory/autocomplete", directory_views.autocomplete),
    path("charte/", include("charter.urls")),
    path("admin/", admin.site.urls),
    # Mail clients' automatic configuration (Thunderbird autoconfig, Outlook Autodiscover).
    path(".well-known/autoconfig/mail/config-v1.1.xml", autoconfig.thunderbird_view),
    path("mail/config-v1.1.xml", autoconfig.thunderbird_view, name="autoconfig"),
    path("autodiscover/autodiscover.xml", autoconfig.autodiscover_view, name="autodiscover"),
    path("Autodiscover/Autodiscover.xml", autoconfig.autodiscover_view),
    path("api/v1/", api.urls),
]

# Error pages in French on the DSFR (mssante.errors), rendered without the database.
handler400 = "mssante.views.bad_request"
handler403 = "mssante.views.permission_denied"
handler404 = "mssante.views.page_not_found"
handler500 = "mssante.views.server_error"
