from django.http import HttpRequest, HttpResponse
from django.shortcuts import render

from mssante.access import verified_required


@verified_required("professional")
def webmail_home(request: HttpRequest) -> HttpResponse:
    """The webmail shell a professional lands on after login."""
    return render(request, "mailboxes/home.html")
