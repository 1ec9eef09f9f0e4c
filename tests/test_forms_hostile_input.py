"""Every form of the web UI, posted with hostile input: never a 500, nothing half-written.

The forms are not listed by hand: each persona (anonymous, a professional holding a
personal and an organisational box, a patient, staff) crawls the pages it can reach
from its landing page, and every ``<form>`` found there is submitted with each class
of hostile input: NUL characters, UTF-8-encoded lone surrogates and other non-UTF-8
bytes, huge strings, wrong types, missing fields and duplicated fields. A new page
with a form is covered without touching this file.

Each submission runs in a savepoint rolled back afterwards, so one persona's write
never changes what the next submission sees. A refusal (4xx) must leave every table
as it was: nothing half-written.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterator
from typing import Any
from urllib.parse import quote_from_bytes, urlencode, urlsplit

import pytest
from django.apps import apps
from django.db import transaction
from django.test import Client

from accounts.models import User
from mailboxes import services
from mailboxes.models import Entry
from mssante.lib import mime
from tests import factories
from tests.crawl import Form, crawl, shape
from tests.personas import Person, logged_in, send

pytestmark = pytest.mark.django_db

PDF = b"%PDF-1.4\n1 0 obj<<>>endobj\ntrailer<<>>\n%%EOF\n"
MAX_PAGES = {"anonymous": 10, "professional": 70, "patient": 30, "staff": 45}


# --------------------------------------------------------------------------- hostile values

NUL = "\x00"
SURROGATE_BYTES = b"\xed\xa0\x80"  # U+D800 written as UTF-8: not valid UTF-8
NOT_UTF8 = b"\xff\xfe\xc3\x28"


def _good(form: Form) -> list[tuple[str, str]]:
    """What a browser would send: defaults, first radio choice, first non-empty option."""
    out: list[tuple[str, str]] = []
    for name, kind, value in form.fields:
        if kind == "select":
            options = [o for o in form.selects.get(name, []) if o] or [""]
            out.append((name, options[0]))
        elif kind == "file":
            continue
        else:
            out.append((name, value or _sample(name, kind)))
    for name, options in form.selects.items():
        if not any(n == name for n, _k, _v in form.fields) and options:
            out.append((name, options[0]))
    return out


def _sample(name: str, kind: str) -> str:
    if kind == "email" or "mail" in name:
        return "claire.martin@hopital.mssante.test"
    if kind == "date":
        return "2030-01-31"
    if kind == "number":
        return "1"
    return "Texte"


def _editable(name: str, kind: str) -> bool:
    return name != "csrfmiddlewaretoken" and kind not in ("file",)


def variants(form: Form) -> Iterator[tuple[str, Any]]:
    """(name, body) pairs: a list of (field, value) or raw bytes for an urlencoded body."""
    good = _good(form)
    kinds = {n: k for n, k, _v in form.fields}

    def each(change: Callable[[str, str], str]) -> list[tuple[str, str]]:
        return [(n, change(n, v) if _editable(n, kinds.get(n, "text")) else v) for n, v in good]

    # A form with nothing to type in still gets a NUL, in a field it does not expect.
    extra = [] if any(_editable(n, kinds.get(n, "")) for n, _v in good) else [("champ", NUL)]
    yield "nul", each(lambda _n, v: v + NUL + "suite") + extra
    yield "nul_alone", each(lambda _n, _v: NUL) + extra
    yield "huge", each(lambda _n, _v: "é" * 60_000)
    yield (
        "wrong_types",
        each(
            lambda n, _v: {"select": "pas-un-choix", "number": "1e999", "date": "2024-13-45"}.get(
                kinds.get(n, ""), "-99999999999999999999999"
            )
        ),
    )
    yield "missing", [(n, v) for n, v in good if n == "csrfmiddlewaretoken"]
    yield "duplicated", [pair for n, v in good for pair in ((n, v), (n, v + "x"))]
    for label, raw in (("surrogate_bytes", SURROGATE_BYTES), ("non_utf8", NOT_UTF8)):
        yield (
            label,
            "&".join(
                f"{quote_from_bytes(n.encode())}="
                + (quote_from_bytes(v.encode() + raw) if _editable(n, kinds.get(n, "")) else v)
                for n, v in good
            ).encode(),
        )


def _snapshot() -> dict[str, int]:
    labels = (
        "accounts", "trust", "mailboxes", "directory", "charter", "patients", "clients", "audit", "axes"
    )  # fmt: skip
    return {
        m._meta.label: m.objects.count()
        for m in apps.get_models()
        if m._meta.app_label in labels and not m._meta.proxy
    }


def submit(client: Client, form: Form, body: Any, *, multipart: bool) -> Any:
    path = urlsplit(form.action).path
    if form.method == "get":
        query = body.decode() if isinstance(body, bytes) else urlencode(body)
        return client.get(f"{path}?{query}")
    if isinstance(body, bytes):
        return client.generic("POST", path, body, content_type="application/x-www-form-urlencoded")
    if multipart:
        data: dict[str, Any] = {}
        for name, value in body:
            data.setdefault(name, []).append(value)
        for name, kind, _v in form.fields:
            if kind == "file":
                data[name] = _upload()
        return client.post(path, data)
    return client.post(path, urlencode(body), content_type="application/x-www-form-urlencoded")


def _upload() -> Any:
    from django.core.files.uploadedfile import SimpleUploadedFile

    return SimpleUploadedFile("cr\x00.pdf", PDF, "application/pdf")


# --------------------------------------------------------------------------- the world


@pytest.fixture
def people(claire: Person, paul: Person, lucie: Person, anne: User) -> dict[str, Any]:
    (doctor, box), other, (patient, patient_box) = claire, paul.box, lucie
    org = factories.shared_mailbox(doctor, local="cardiologie")
    services.grant_membership(box, anne, "read", by=doctor)
    services.grant_membership(org, anne, "send", by=doctor)
    services.create_folder(box, "Cardiologie", by=doctor)
    message = send(
        other,
        [box.address, org.address],
        attachments=[mime.Attachment("cr.pdf", "application/pdf", PDF)],
    )
    assert Entry.objects.filter(mailbox=box, message=message).exists()
    send(box, [patient_box.address], subject="Vos résultats", text="Bonjour Madame.")
    draft = services.save_draft(
        mailbox=box, author=doctor, draft=None, to=[other.address], cc=[], subject="B", text="."
    )
    services.add_draft_attachment(draft, "a.pdf", "application/pdf", PDF, by=doctor)
    return {"professional": doctor, "patient": patient, "staff": factories.staff()}


def _client(people: dict[str, Any], persona: str) -> tuple[Client, list[str]]:
    if persona == "anonymous":
        return Client(raise_request_exception=False), ["/connexion/", "/annuaire/"]
    client = logged_in(people[persona], raise_request_exception=False)
    start = {
        "professional": ["/messagerie/", "/messagerie/preferences/", "/annuaire/"],
        "patient": ["/patient/", "/patient/notifications/"],
        "staff": ["/admin/"],
    }[persona]
    return client, [*start, "/compte/mot-de-passe/"]


@pytest.mark.parametrize("persona", ["anonymous", "professional", "patient", "staff"])
def test_no_form_gives_a_server_error_or_half_writes_on_hostile_input(
    people: dict[str, Any], persona: str
) -> None:
    client, start = _client(people, persona)
    forms = crawl(client, start, MAX_PAGES[persona]).forms
    assert forms, "no form found: the crawl is broken"
    failures: list[str] = []
    tried = 0
    for form, (label, body) in itertools.chain.from_iterable(
        ((f, v) for v in variants(f)) for f in forms
    ):
        before = _snapshot()
        with transaction.atomic():
            response = submit(client, form, body, multipart="multipart" in form.enctype)
            after = _snapshot()
            transaction.set_rollback(True)
        tried += 1
        where = f"{form.method.upper()} {form.action} ({label}) from {form.page}"
        if response.status_code >= 500:
            failures.append(f"{where}: {response.status_code}")
        elif label.startswith("nul") and response.status_code != 400:
            failures.append(f"{where}: {response.status_code}, a NUL must be refused (400)")
        elif response.status_code >= 400 and after != before:
            changed = {k: (before[k], after[k]) for k in after if after[k] != before.get(k)}
            failures.append(f"{where}: refused ({response.status_code}) but wrote {changed}")
    assert not failures, "\n".join(failures)
    assert tried >= len(forms) * 8


def test_the_crawl_finds_the_forms_that_matter(people: dict[str, Any]) -> None:
    client, start = _client(people, "professional")
    actions = {shape(urlsplit(f.action).path) for f in crawl(client, start, 70).forms}
    for expected in (
        "/messagerie/bal/N/recherche/",
        "/messagerie/bal/N/ecrire/",
        "/messagerie/message/N/deplacer/",
        "/messagerie/bal/N/membres/",
        "/messagerie/brouillon/N/enregistrer/",
        "/annuaire/",
    ):
        assert expected in actions, (expected, sorted(actions))


def test_a_nul_in_the_directory_autocomplete_is_a_400_in_french(people: dict[str, Any]) -> None:
    client = logged_in(people["professional"], raise_request_exception=False)
    for url in ("/annuaire/autocomplete", "/directory/autocomplete"):
        response = client.get(url, {"q": "Mar\x00tin"}, headers={"Accept": "application/json"})
        assert response.status_code == 400
        assert "caractère interdit" in response.json()["error"]
        # And a normal query still answers.
        assert client.get(url, {"q": "Martin"}).status_code == 200
