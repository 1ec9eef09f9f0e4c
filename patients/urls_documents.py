"""Mes documents, under /patient/documents/ (names in the ``patients`` namespace)."""

from django.urls import path

from patients import views_documents as views

urlpatterns = [
    path("", views.documents_view, name="documents"),
    path("ajouter/", views.add_view, name="document_add"),
    path("<int:document_id>/telecharger/", views.download_view, name="document_download"),
    path("<int:document_id>/apercu/", views.preview_view, name="document_preview"),
    path("<int:document_id>/lire/", views.read_view, name="document_read"),
    path("<int:document_id>/masquer/", views.hide_view, name="document_hide"),
    path("<int:document_id>/afficher/", views.show_view, name="document_show"),
]
