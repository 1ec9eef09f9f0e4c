from django.urls import path

from directory import fhir_views

app_name = "fhir"

urlpatterns = [
    path("Practitioner", fhir_views.practitioner, name="practitioner"),
    path("PractitionerRole", fhir_views.practitioner_role, name="practitioner_role"),
    path("Organization", fhir_views.organization, name="organization"),
]
