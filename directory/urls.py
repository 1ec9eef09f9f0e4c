from django.urls import path

from directory import views

app_name = "directory"

urlpatterns = [
    path("", views.search, name="search"),
    path("recherche/<str:search_id>/", views.results, name="results"),
    path("autocomplete", views.autocomplete, name="autocomplete"),
]
