"""Hostile mail at every door and in every reader (issue 11, findings 3 and 17).

SMTP refuses past the parsing limits (552) or the attachment policy (550) saying why;
the API and the webmail compose refuse the same in French; a message stored before the
limits is shown with a notice and its source, in the webmail and the patient space,
within a bounded time; remote images only come through the portal's proxy.
"""

from __future__ import annotations

import io
import re
import smtplib
import time
import zipfile
from email.message import EmailMessage
from typing import Any

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client
from django.urls import reverse
from hypothesis import HealthCheck, given
from hypothesis import settings as examples
from hypothesis import strategies as st

from mailboxes.models import Draft, Entry, Mailbox, Message
from mailboxes.services.inbound import receive_message
from mssante.lib import mime
from tests import factories
from tests.image_server import PNG, image_server
from tests.lib.test_mime_limits import hostile_messages
from tests.personas import Lab, committed, login, start_draft
from tests.smtp_peers import Operator, send

HERE = "hopital.mssante.test"
PEER = "clinique.peer.test"


def long_to(size: int) -> str:
    names = []
    total = i = 0
    while total < size:
        item = f"=?utf-8?q?Dr_J=C3=A9r=C3=B4me_{i}?= <j{i}@ch-exemple.test>"
        names.append(item)
        total += len(item) + 4
        i += 1
    return ",\r\n ".join(names)


def hostile_raw(to: str, *, sender: str = f"dr.martin@{PEER}") -> bytes:
    """A message whose To: is 150 kB (past the 100 kB limit), folded in short lines."""
    return (
        f"From: {sender}\r\nTo: {to},\r\n {long_to(150_000)}\r\n"
        "Subject: Trop long\r\nMessage-ID: <long@clinique.peer.test>\r\n\r\nBonjour\r\n"
    ).encode()


def zip_of(*members: tuple[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for name, data in members:
            archive.writestr(name, data)
    return buffer.getvalue()


# --------------------------------------------------------------------------- SMTP


@pytest.mark.django_db(transaction=True)
def test_smtp_refuses_a_header_past_the_limit_at_data_with_552_saying_why(
    port: int, peer: Operator
) -> None:
    box = factories.mailbox(domain=factories.hosted_domain(HERE))
    raw = hostile_raw(box.address)
    started = time.monotonic()
    with pytest.raises(smtplib.SMTPDataError) as refused:
        send(port, peer, f"dr.martin@{PEER}", [box.address], raw)
    assert refused.value.smtp_code == 552
    text = refused.value.smtp_error.decode()
    assert text.startswith("5.3.4") and "L'en-tete" in text and "To" in text
    assert "depasse la taille permise" in text and "100 ko" in text
    assert time.monotonic() - started < 10
    assert not Message.objects.exists()


@pytest.mark.django_db(transaction=True)
def test_smtp_refuses_a_structure_nested_too_deep(port: int, peer: Operator) -> None:
    box = factories.mailbox(domain=factories.hosted_domain(HERE))
    raw = f"From: dr.martin@{PEER}\r\nTo: {box.address}\r\nSubject: x\r\n".encode()
    for i in range(mime.LIMITS.depth + 5):
        raw += b"Content-Type: multipart/mixed; boundary=b%d\r\n\r\n--b%d\r\n" % (i, i)
    raw += b"Content-Type: text/plain\r\n\r\nx\r\n"
    with pytest.raises(smtplib.SMTPDataError) as refused:
        send(port, peer, f"dr.martin@{PEER}", [box.address], raw)
    assert refused.value.smtp_code == 552
    assert "trop profonde" in refused.value.smtp_error.decode()
    assert not Message.objects.exists()


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize(
    ("filename", "data", "words"),
    [
        ("dvd.iso", b"harmless", "images disque"),
        ("lettre.docm", b"PK\x03\x04", "macros"),
        ("resultats.zip", zip_of(("inner.zip", zip_of(("a.pdf", b"%PDF")))), "autre archive"),
    ],
)
def test_smtp_applies_the_attachment_policy(
    port: int, peer: Operator, filename: str, data: bytes, words: str
) -> None:
    box = factories.mailbox(domain=factories.hosted_domain(HERE))
    msg = EmailMessage()
    msg["From"], msg["To"], msg["Subject"] = f"dr.martin@{PEER}", box.address, "PJ"
    msg.set_content("Bonjour")
    msg.add_attachment(data, maintype="application", subtype="octet-stream", filename=filename)
    raw = msg.as_bytes(policy=msg.policy.clone(linesep="\r\n"))
    with pytest.raises(smtplib.SMTPDataError) as refused:
        send(port, peer, f"dr.martin@{PEER}", [box.address], raw)
    assert refused.value.smtp_code == 550
    assert words in refused.value.smtp_error.decode()
    assert not Message.objects.exists()


# --------------------------------------------------------------------------- API, compose


@pytest.fixture
def lab(laboratoire: Lab, doctor: Mailbox) -> dict[str, Any]:
    return {"box": laboratoire.box, "raw": laboratoire.raw, "doctor_box": doctor}


def api_post(raw_token: str, body: dict[str, Any]) -> Any:
    import json

    return committed(
        Client().post,
        "/api/v1/messages",
        data=json.dumps(body),
        content_type="application/json",
        headers={"Authorization": f"Bearer {raw_token}"},
    )


@pytest.mark.django_db
def test_the_api_refuses_a_message_past_the_parsing_limits_in_french(lab: dict[str, Any]) -> None:
    body = {"to": [lab["doctor_box"].address], "subject": "x", "text": "\n" * 1_100_000}
    response = api_post(lab["raw"], body)
    assert response.status_code == 422
    assert "trop de lignes" in response.json()["message"]
    assert not Message.objects.exists()


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("filename", "content", "words"),
    [
        ("tableau.xlsm", b"PK\x03\x04", "macros"),
        ("image.iso", b"x", "images disque"),
        ("archive.zip", zip_of(("b.7z", b"7z\xbc\xaf\x27\x1c")), "autre archive"),
    ],
)
def test_the_api_refuses_macros_disk_images_and_nested_archives(
    lab: dict[str, Any], filename: str, content: bytes, words: str
) -> None:
    import base64

    body = {
        "to": [lab["doctor_box"].address],
        "text": "Voici",
        "attachments": [{"filename": filename, "content": base64.b64encode(content).decode()}],
    }
    response = api_post(lab["raw"], body)
    assert response.status_code == 422
    assert words in response.json()["message"] and filename in response.json()["message"]


@pytest.mark.django_db
def test_compose_refuses_a_disk_image_and_keeps_the_draft() -> None:
    user = factories.professional()
    box = factories.mailbox(user, domain=factories.hosted_domain(HERE))
    nurse = factories.mailbox(domain=factories.hosted_domain(HERE))
    client = login(user)
    draft = start_draft(client, box)
    client.post(
        reverse("webmail_draft_upload", args=[draft.pk]),
        {"files": [SimpleUploadedFile("scan.iso", b"x" * 100, "application/octet-stream")]},
    )
    response = client.post(
        reverse("webmail_draft_send", args=[draft.pk]),
        {"to": nurse.address, "subject": "Scan", "text": "Voici"},
    )
    html = response.content.decode()
    assert response.status_code == 400
    assert "scan.iso" in html and "images disque" in html
    assert not Message.objects.exists() and Draft.objects.filter(pk=draft.pk).exists()


# --------------------------------------------------------------------------- reading


def stored_before_the_limits(monkeypatch: pytest.MonkeyPatch, raw: bytes, to: str) -> Message:
    """Store ``raw`` as the gateway did before the limits existed."""
    monkeypatch.setattr(mime, "check_limits", lambda _raw: None)
    message = committed(receive_message, raw, f"dr.martin@{PEER}", [to])
    monkeypatch.undo()
    return message


@pytest.mark.django_db
def test_a_stored_message_past_the_limits_is_shown_with_a_notice_and_its_source(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    user = factories.professional()
    box = factories.mailbox(user, domain=factories.hosted_domain(HERE))
    raw = hostile_raw(box.address)
    message = stored_before_the_limits(monkeypatch, raw, box.address)
    entry = Entry.objects.get(mailbox=box, message=message)
    client = login(user)
    for name in ("webmail_read", "webmail_conversation"):
        started = time.monotonic()
        response = client.get(reverse(name, args=[entry.pk]))
        assert response.status_code == 200 and time.monotonic() - started < 5
        html = response.content.decode()
        assert "trop complexe pour être affiché" in html and "« To »" in html
        assert reverse("webmail_source", args=[entry.pk]) in html
    source = client.get(reverse("webmail_source", args=[entry.pk]))
    assert source.status_code == 200 and b"".join(source.streaming_content) == raw
    assert "attachment" in source["Content-Disposition"]
    other = login(factories.professional())
    assert other.get(reverse("webmail_source", args=[entry.pk])).status_code == 404


@pytest.mark.django_db
def test_the_patient_space_shows_the_same_notice_and_source(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    patient = factories.patient()
    box = factories.patient_mailbox(patient)
    raw = hostile_raw(box.address)
    message = stored_before_the_limits(monkeypatch, raw, box.address)
    entry = Entry.objects.get(mailbox=box, message=message)
    client = login(patient)
    response = client.get(reverse("patients:conversation", args=[entry.pk]))
    html = response.content.decode()
    assert response.status_code == 200 and "trop complexe pour être affiché" in html
    assert reverse("patients:source", args=[entry.pk]) in html
    source = client.get(reverse("patients:source", args=[entry.pk]))
    assert b"".join(source.streaming_content) == raw


def html_message(to: str, html: str, text: str = "Version texte") -> bytes:
    msg = EmailMessage()
    msg["From"], msg["To"], msg["Subject"] = f"dr.martin@{PEER}", to, "HTML"
    msg.set_content(text)
    msg.add_alternative(html, subtype="html")
    return msg.as_bytes(policy=msg.policy.clone(linesep="\r\n"))


@pytest.mark.django_db
def test_deeply_nested_html_is_read_in_bounded_time() -> None:
    # 60,000 nested <div>: html5ever's cost grows with the square of the depth (8 s and
    # more); start tags past 200 levels are dropped before it sees them.
    user = factories.professional()
    box = factories.mailbox(user, domain=factories.hosted_domain(HERE))
    raw = html_message(box.address, "<div>" * 60_000 + "Fond" + "</div>" * 60_000)
    message = committed(receive_message, raw, f"dr.martin@{PEER}", [box.address])
    entry = Entry.objects.get(mailbox=box, message=message)
    started = time.monotonic()
    response = login(user).get(reverse("webmail_read", args=[entry.pk]))
    assert response.status_code == 200
    assert time.monotonic() - started < 4
    assert "Fond" in response.content.decode()


@pytest.mark.django_db
def test_html_too_large_to_show_falls_back_to_the_text_and_offers_the_source() -> None:
    user = factories.professional()
    box = factories.mailbox(user, domain=factories.hosted_domain(HERE))
    big = "<p>" + "ligne de tableau " * 150_000 + "</p>"
    raw = html_message(box.address, big, text="Résultats en texte")
    message = committed(receive_message, raw, f"dr.martin@{PEER}", [box.address])
    entry = Entry.objects.get(mailbox=box, message=message)
    html = login(user).get(reverse("webmail_read", args=[entry.pk])).content.decode()
    assert "trop volumineuse pour être affichée" in html
    assert "Résultats en texte" in html and "ligne de tableau" not in html
    assert reverse("webmail_source", args=[entry.pk]) in html


# --------------------------------------------------------------------------- remote images


def image_entry(html: str) -> tuple[Any, Entry]:
    user = factories.professional()
    box = factories.mailbox(user, domain=factories.hosted_domain(HERE))
    raw = html_message(box.address, html)
    message = committed(receive_message, raw, f"dr.martin@{PEER}", [box.address])
    return user, Entry.objects.get(mailbox=box, message=message)


def proxy_urls(page: str) -> list[str]:
    return [u.replace("&amp;", "&") for u in re.findall(r'<img[^>]* src="([^"]+)"', page)]


@pytest.mark.django_db
def test_allowed_remote_images_come_through_the_proxy_for_the_reader_only(settings: Any) -> None:
    settings.REMOTE_IMAGES_ALLOWED_NETWORKS = ["127.0.0.1/32"]
    with image_server() as server:
        user, entry = image_entry(f'<p>Logo</p><img src="{server.url("/logo.png")}" alt="logo">')
        client = login(user)
        page = client.get(reverse("webmail_read", args=[entry.pk]) + "?images=distantes")
        urls = proxy_urls(page.content.decode())
        assert len(urls) == 1 and urls[0].startswith(
            reverse("webmail_remote_image", args=[entry.pk])
        )
        assert str(server.port) not in page.content.decode()
        image = client.get(urls[0])
        assert image.status_code == 200 and image.content == PNG
        assert image["Content-Type"] == "image/png"
        assert (
            image["X-Content-Type-Options"] == "nosniff"
            and "sandbox" in image["Content-Security-Policy"]
        )
        assert "Set-Cookie" not in image
        sent = {k.lower() for k in server.requests[0]}
        assert not sent & {"cookie", "referer"}
        # Someone who cannot read the message gets nothing, even with the URL.
        assert login(factories.professional()).get(urls[0]).status_code == 404
        assert Client().get(urls[0]).status_code == 302
        # A token is bound to its message.
        _other_user, other = image_entry("<p>x</p>")
        forged = urls[0].replace(f"/message/{entry.pk}/", f"/message/{other.pk}/")
        assert login(_other_user).get(forged).status_code == 404
        assert len(server.requests) == 1


@pytest.mark.django_db
def test_remote_images_on_loopback_or_private_addresses_are_never_fetched() -> None:
    with image_server() as server:
        user, entry = image_entry(
            f'<img src="{server.url("/logo.png")}" alt="a">'
            f'<img src="{server.url("/logo.png", host="localhost")}" alt="b">'
            '<img src="http://169.254.169.254/latest/meta-data" alt="c">'
            '<img src="http://10.0.0.1/x.png" alt="d">'
        )
        client = login(user)
        page = client.get(reverse("webmail_read", args=[entry.pk]) + "?images=distantes")
        urls = proxy_urls(page.content.decode())
        proxy = reverse("webmail_remote_image", args=[entry.pk])
        assert len(urls) == 4 and all(u.startswith(proxy) for u in urls)
        assert [client.get(u).status_code for u in urls] == [404] * 4
    assert server.requests == []


@pytest.mark.django_db
def test_the_antivirus_step_never_parses_a_stored_message_past_the_limits(
    monkeypatch: pytest.MonkeyPatch, settings: Any
) -> None:
    # Held as unscannable at once, before clamd is even asked (nothing listens there).
    settings.CLAMD_ADDRESS = "127.0.0.1:9"
    box = factories.mailbox(domain=factories.hosted_domain(HERE))
    started = time.monotonic()
    message = stored_before_the_limits(monkeypatch, hostile_raw(box.address), box.address)
    message.refresh_from_db()
    assert message.scan_status == Message.ScanStatus.INFECTED
    assert time.monotonic() - started < 5


@pytest.mark.django_db
def test_structured_documents_with_entities_in_utf16_are_not_opened() -> None:
    # A byte scan for "<!DOCTYPE" is blind to UTF-16, where expat still expands entities.
    metadata = (
        '<?xml version="1.0" encoding="UTF-16"?>'
        '<!DOCTYPE x [<!ENTITY a "aaaaaaaaaa"><!ENTITY b "&a;&a;&a;&a;&a;&a;&a;&a;">]>'
        '<SubmitObjectsRequest xmlns="urn:oasis:names:tc:ebxml-regrep:xsd:lcm:3.0">&b;'
        "</SubmitObjectsRequest>"
    ).encode("utf-16")
    package = zip_of(("IHE_XDM/SUBSET01/METADATA.XML", metadata), ("INDEX.HTM", b"<html/>"))
    user = factories.professional()
    box = factories.mailbox(user, domain=factories.hosted_domain(HERE))
    msg = EmailMessage()
    msg["From"], msg["To"], msg["Subject"] = f"dr.martin@{PEER}", box.address, "CR"
    msg.set_content("Voici le compte rendu structuré.")
    msg.add_attachment(package, maintype="application", subtype="zip", filename="IHE_XDM.ZIP")
    raw = msg.as_bytes(policy=msg.policy.clone(linesep="\r\n"))
    message = committed(receive_message, raw, f"dr.martin@{PEER}", [box.address])
    entry = Entry.objects.get(mailbox=box, message=message)
    html = login(user).get(reverse("webmail_read", args=[entry.pk])).content.decode()
    assert "n&#x27;a pas été ouverte" in html or "n'a pas été ouverte" in html
    assert "DTD ou entités" in html


# --------------------------------------------------------------------------- property


_html_atoms = st.sampled_from(
    [
        "<div>",
        "</div>",
        "<table><tr><td>",
        "<li>",
        "<p>",
        "<b>",
        "<a href='javascript:alert(1)'>",
        "<img src='http://127.0.0.1/x.png'>",
        "<img src=//10.0.0.1/a>",
        "<h1>",
        "<svg onload=alert(1)>",
        "<script>alert(1)</script>",
        "<!--",
        "&#0;",
        "\ud800",
        "é",
        "x",
    ]
)


@st.composite
def stored_hostile(draw: st.DrawFn) -> bytes | str:
    """Raw hostile MIME (bytes), or hostile HTML for an HTML message (str)."""
    if draw(st.booleans()):
        return draw(hostile_messages())
    atoms = draw(st.lists(_html_atoms, max_size=60))
    html = "".join(atoms) * draw(st.sampled_from([1, 1, 200]))
    return html.encode("utf-8", "surrogatepass").decode("utf-8", "replace")


@pytest.mark.django_db
@examples(
    max_examples=15,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(data=st.data())
def test_reading_any_stored_hostile_message_is_a_bounded_page(
    monkeypatch: pytest.MonkeyPatch, data: st.DataObject
) -> None:
    user = factories.professional()
    box = factories.mailbox(user, domain=factories.hosted_domain(HERE))
    drawn = data.draw(stored_hostile())
    if isinstance(drawn, bytes):
        raw = f"From: dr.martin@{PEER}\r\nTo: {box.address}\r\n".encode() + drawn
    else:
        raw = html_message(box.address, drawn)
    message = stored_before_the_limits(monkeypatch, raw, box.address)
    entry = Entry.objects.get(mailbox=box, message=message)
    client = login(user)
    for suffix in ("", "?images=distantes"):
        started = time.monotonic()
        response = client.get(reverse("webmail_read", args=[entry.pk]) + suffix)
        assert response.status_code == 200
        assert time.monotonic() - started < 10
        page = response.content.decode()
        assert "<script>alert" not in page and "javascript:" not in page
        assert "127.0.0.1/x.png" not in page and "10.0.0.1" not in page
