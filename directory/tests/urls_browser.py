"""The project's URLs plus a bare recipient field, to drive the autocomplete script alone."""

from django.http import HttpRequest, HttpResponse
from django.template import engines
from django.urls import path

from accounts.access import verified_required
from mssante.urls import urlpatterns as project_urls

PAGE = """{% extends "base.html" %}{% load static %}
{% block content %}
<div class="fr-input-group">
  <label class="fr-label" for="to">Destinataires</label>
  <input class="fr-input" id="to" name="to" data-directory-autocomplete>
</div>
{% endblock %}
{% block extra_js %}<script src="{% static 'js/directory-autocomplete.js' %}"></script>{% endblock %}"""


@verified_required("professional")
def recipients(request: HttpRequest) -> HttpResponse:
    return HttpResponse(engines["django"].from_string(PAGE).render({}, request))


urlpatterns = [*project_urls, path("test/destinataires/", recipients)]
