"""Staff import the liste blanche from the admin: a file uploaded, or "rafraîchir maintenant".

Both go through ``trust.listeblanche.import_liste_blanche``, the command's path, so the
command's guards hold: a hostile file (huge, not XML, binary, with a DTD) or one that
would drop too many domains is refused, the current list kept whole, and staff told
why in French.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client

from audit.models import AuditEvent
from tests import factories
from tests.personas import login
from trust import listeblanche
from trust.models import ListeBlancheImport, ListedDomain
from trust.tests.test_listeblanche import domains, liste, listed, write
from trust.tests.test_listeblanche import served as served

pytestmark = pytest.mark.django_db

PAGE = "/admin/trust/listeddomain/"
UPLOAD = PAGE + "importer/"
REFRESH = PAGE + "rafraichir/"


def _upload(client: Client, content: bytes, name: str = "listeblanchemssante.xml", **extra: Any):
    return client.post(UPLOAD, {"fichier": SimpleUploadedFile(name, content), **extra}, follow=True)


def _said(response: Any) -> str:
    return " ".join(str(m) for m in response.context["messages"])


@pytest.fixture
def current(tmp_path: Path) -> set[str]:
    """A liste blanche of 20 domains already imported."""
    listeblanche.import_liste_blanche(str(write(tmp_path, liste(domains(20)))))
    return listed()


def test_staff_upload_a_file_and_the_list_is_replaced(
    staff_client: Client, current: set[str], staff: Any
) -> None:
    new = [*domains(20)[:19], "nouveau.mssante.fr"]
    response = _upload(staff_client, liste(new).encode())
    assert response.status_code == 200
    said = _said(response)
    assert "Liste blanche importée" in said and "1 ajoutés, 1 retirés" in said
    assert listed() == set(new)
    run = ListeBlancheImport.objects.order_by("-id").first()
    assert run.by == staff and "listeblanchemssante.xml" in run.source
    event = AuditEvent.objects.filter(action="listeblanche.imported").order_by("-id").first()
    assert event.actor_id == staff.pk and event.data["added"] == 1


def test_the_upload_keeps_the_commands_removal_guard(
    staff_client: Client, current: set[str], settings: Any
) -> None:
    settings.LISTE_BLANCHE_MAX_REMOVAL = 10
    response = _upload(staff_client, liste(domains(5)).encode())
    said = _said(response)
    assert "Import refusé, liste actuelle conservée" in said
    assert "15 domaine(s) sur 20 seraient retirés" in said
    assert listed() == current
    assert AuditEvent.objects.filter(action="listeblanche.refused").exists()
    # Forced on purpose (the command's --force), it goes through, recorded as forced.
    forced = _upload(staff_client, liste(domains(5)).encode(), forcer="on")
    assert "Liste blanche importée" in _said(forced)
    assert len(listed()) == 5
    assert ListeBlancheImport.objects.order_by("-id").first().forced


@pytest.mark.parametrize(
    ("content", "why"),
    [
        (b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 20, "illisible"),
        (b"nom;dn\nexemple.fr;CN=x\n", "illisible"),
        (b'{"domaines": ["a.fr"]}', "illisible"),
        (b"<html><body>Erreur 404</body></html>", "pas une liste blanche"),
        (
            b'<?xml version="1.0"?><!DOCTYPE x [<!ENTITY a "aaaa">]>'
            b"<ListeBlancheMSSante>&a;</ListeBlancheMSSante>",
            "DTD",
        ),
        (b"\xff\xfe<\x00L\x00", "UTF-16"),
    ],
    ids=["binary", "csv", "json", "html", "dtd", "utf16"],
)
def test_a_hostile_file_is_refused_and_the_list_kept_whole(
    staff_client: Client, current: set[str], content: bytes, why: str
) -> None:
    response = _upload(staff_client, content)
    assert response.status_code == 200
    said = _said(response)
    assert "Import refusé, liste actuelle conservée" in said
    assert why in said
    assert listed() == current
    assert ListeBlancheImport.objects.order_by("-id").first().result == "refused"


def test_a_file_over_the_size_limit_is_refused_unread(
    staff_client: Client, current: set[str], settings: Any
) -> None:
    settings.LISTE_BLANCHE_MAX_BYTES = 4096
    response = _upload(staff_client, liste(domains(200)).encode())
    assert "Fichier trop volumineux" in _said(response)
    assert listed() == current


def test_a_hostile_file_name_is_recorded_printable_and_bounded(
    staff_client: Client, current: set[str]
) -> None:
    _upload(staff_client, b"x", name="a\x1b[31m\u202e" + "n" * 500 + ".xml")
    run = ListeBlancheImport.objects.order_by("-id").first()
    assert "\x1b" not in run.source and "\u202e" not in run.source
    assert len(run.source) < 300


def test_an_upload_without_a_file_or_an_empty_one_says_so(
    staff_client: Client, current: set[str]
) -> None:
    response = staff_client.post(UPLOAD, {}, follow=True)
    assert response.status_code == 200
    assert "Ce champ est obligatoire" in _said(response)
    assert "Le fichier soumis est vide" in _said(_upload(staff_client, b""))
    assert listed() == current


def test_refresh_now_fetches_the_configured_source(
    staff_client: Client,
    served: str,
    settings: Any,
) -> None:
    settings.LISTE_BLANCHE_URL = served
    response = staff_client.post(REFRESH, follow=True)
    assert "Liste blanche importée" in _said(response)
    assert len(listed()) == 4


def test_refresh_now_without_a_source_says_so_and_imports_nothing(
    staff_client: Client, settings: Any
) -> None:
    settings.LISTE_BLANCHE_URL = ""
    response = staff_client.post(REFRESH, follow=True)
    assert "Aucune source n'est configurée" in _said(response)
    assert not ListeBlancheImport.objects.exists()


def test_refresh_now_from_an_unreachable_source_is_recorded_as_refused(
    staff_client: Client, current: set[str], settings: Any
) -> None:
    settings.LISTE_BLANCHE_URL = "http://127.0.0.1:9/listeblanchemssante.xml"
    response = staff_client.post(REFRESH, follow=True)
    assert "Import refusé, liste actuelle conservée" in _said(response)
    assert listed() == current


def test_the_page_offers_both_to_staff(staff_client: Client) -> None:
    html = staff_client.get(PAGE).content.decode()
    assert 'action="/admin/trust/listeddomain/importer/"' in html
    assert 'action="/admin/trust/listeddomain/rafraichir/"' in html
    assert 'enctype="multipart/form-data"' in html


def test_no_one_else_may_import(current: set[str], staff: Any) -> None:
    # A professional: sent to the login, nothing imported.
    doctor = factories.professional()
    for url in (UPLOAD, REFRESH):
        answer = login(doctor).post(url, {"fichier": SimpleUploadedFile("l.xml", b"<x/>")})
        assert answer.status_code == 302 and "/admin/login/" in answer["Location"]
    # Staff without the import permission: refused, and not offered the forms.
    clerk = factories.staff(username="guichet", is_superuser=False)
    client = login(clerk)
    assert client.post(REFRESH).status_code == 403
    assert client.post(UPLOAD, {"fichier": SimpleUploadedFile("l.xml", b"<x/>")}).status_code == 403
    # A GET does nothing; a forged POST (no CSRF token) is refused.
    assert login(staff).get(REFRESH).status_code == 405
    forged = login(staff, enforce_csrf_checks=True).post(
        UPLOAD, {"fichier": SimpleUploadedFile("l.xml", liste(domains(3)).encode())}
    )
    assert forged.status_code == 403
    assert listed() == current
    assert ListedDomain.objects.count() == 20
