"""The webmail pages: lists, reading, filing, attachments, compose and drafts."""

from __future__ import annotations

import itertools
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from mailboxes import reasons, selectors, services
from mailboxes.models import Delivery, Draft, Entry, Folder, Mailbox, Message
from mssante.lib import mime
from tests import factories
from tests.personas import committed, login, person, send

pytestmark = pytest.mark.django_db

PDF = b"%PDF-1.4\n1 0 obj<<>>endobj\ntrailer<<>>\n%%EOF\n"
_seq = itertools.count(1)

# --------------------------------------------------------------------------- helpers


def entry_of(box: Mailbox, message: Message) -> Entry:
    return Entry.objects.get(mailbox=box, message=message)


def folder(box: Mailbox, role: str) -> Folder:
    return Folder.objects.get(mailbox=box, role=role)


def listed_entry(box: Mailbox, *, when: Any = None, subject: str = "Liste", **fields: Any) -> Entry:
    """A listed message without a blob: enough for list pages, which never read bodies."""
    n = next(_seq)
    when = when or timezone.now()
    message = Message.objects.create(
        message_id=f"<liste{n}@test>",
        thread_key=f"liste{n}@test",
        from_addr="expediteur@hopital.mssante.test",
        from_name="Expéditeur",
        to_addrs=[box.address],
        subject=f"{subject} {n}",
        date=when,
        size=1234,
        attachments=fields.pop("attachments", []),
        blob_name=f"none/{n}",
        key_id="k",
        wrapped_key=b"k",
    )
    return Entry.objects.create(
        mailbox=box,
        message=message,
        folder=fields.pop("folder", None) or folder(box, Folder.Role.INBOX),
        received_at=when,
        **fields,
    )


# --------------------------------------------------------------------------- access


def test_a_patient_gets_404_on_the_webmail() -> None:
    assert login(factories.patient()).get(reverse("webmail_home")).status_code == 404


def test_an_anonymous_visitor_is_sent_to_the_login_page() -> None:
    response = Client().get(reverse("webmail_home"))
    assert response.status_code == 302 and response["Location"].startswith("/connexion/")


def test_a_professional_without_mailbox_sees_an_explanation() -> None:
    response = login(factories.professional()).get(reverse("webmail_home"))
    assert response.status_code == 200
    assert "Aucune boîte aux lettres" in response.content.decode()


# --------------------------------------------------------------------------- lists


def test_the_landing_page_lists_the_inbox_newest_first_with_unread_in_bold(claire, julien) -> None:
    (user, box), (_, nurse) = claire, julien
    send(nurse, [box.address], subject="Premier")
    second = send(
        nurse,
        [box.address],
        subject="Second",
        attachments=[mime.Attachment("cr.pdf", "application/pdf", PDF)],
    )
    entry_of(box, second)
    response = login(user).get(reverse("webmail_home"))
    html = response.content.decode()
    assert response.status_code == 200
    assert html.index("Second") < html.index("Premier")
    assert html.count("webmail-row--unread") == 2
    assert "(avec pièce jointe)" in html
    assert "Julien Dupont" in html
    # Unread count next to the inbox in the folder menu.
    assert 'webmail-count--unread">2<' in html


def test_the_list_page_runs_the_same_number_of_queries_for_5_and_50_messages(
    claire, django_assert_num_queries
) -> None:
    user, box = claire
    client = login(user)
    for _ in range(5):
        listed_entry(
            box,
            attachments=[
                {"index": 2, "filename": "a.pdf", "content_type": "application/pdf", "size": 3}
            ],
        )
    url = reverse("webmail_folder", args=[folder(box, Folder.Role.INBOX).pk])
    client.get(url)  # warm the session and the translation catalogues
    with CaptureQueriesContext(connection) as five:
        assert client.get(url).status_code == 200
    for _ in range(45):
        listed_entry(box)
    with django_assert_num_queries(len(five.captured_queries)):
        response = client.get(url)
    assert response.content.decode().count('class="webmail-row') == 50


def test_older_messages_link_walks_every_message_exactly_once(claire) -> None:
    user, box = claire
    client = login(user)
    base = timezone.now()
    created = set()
    for i in range(123):
        # Ties on received_at: the id breaks them, so no message is skipped or repeated.
        created.add(listed_entry(box, when=base - timedelta(seconds=i // 3)).pk)
    url: str | None = reverse("webmail_folder", args=[folder(box, Folder.Role.INBOX).pk])
    seen: list[int] = []
    pages = 0
    while url:
        response = client.get(url)
        pages += 1
        seen += [e.entry.pk for e in response.context["rows"]]
        cursor = response.context["next_cursor"]
        url = (
            f"{reverse('webmail_folder', args=[folder(box, Folder.Role.INBOX).pk])}?avant={cursor}"
            if cursor
            else None
        )
    assert pages == 3
    assert len(seen) == len(set(seen)) == 123 and set(seen) == created
    assert "Messages plus anciens" not in response.content.decode()


def test_a_malformed_cursor_shows_the_first_page(claire) -> None:
    user, box = claire
    listed_entry(box)
    url = reverse("webmail_folder", args=[folder(box, Folder.Role.INBOX).pk])
    response = login(user).get(url + "?avant=1%27%20OR%201=1--")
    assert response.status_code == 200 and len(response.context["rows"]) == 1


def test_the_sent_folder_lists_recipients(claire, julien) -> None:
    (user, box), (_, nurse) = claire, julien
    send(box, [nurse.address], subject="Pour Julien")
    response = login(user).get(reverse("webmail_folder", args=[folder(box, Folder.Role.SENT).pk]))
    html = response.content.decode()
    assert "Destinataires" in html and nurse.address in html


def test_the_drafts_folder_lists_drafts(claire) -> None:
    user, box = claire
    services.save_draft(
        mailbox=box, author=user, draft=None, to=[], cc=[], subject="En cours", text=""
    )
    response = login(user).get(reverse("webmail_folder", args=[folder(box, Folder.Role.DRAFTS).pk]))
    assert "En cours" in response.content.decode()


# --------------------------------------------------------------------------- search


def test_search_finds_subject_participants_and_attachment_names(claire, julien) -> None:
    (user, box), (_, nurse) = claire, julien
    send(nurse, [box.address], subject="Bilan sanguin")
    send(
        nurse,
        [box.address],
        subject="Autre",
        attachments=[mime.Attachment("radio-thorax.pdf", "application/pdf", PDF)],
    )
    client = login(user)
    url = reverse("webmail_search", args=[box.pk])

    def subjects(q: str) -> set[str]:
        response = client.post(url, {"q": q}, follow=True)
        return {r.entry.message.subject for r in response.context["rows"]}

    assert subjects("sanguin") == {"Bilan sanguin"}
    assert subjects("THORAX") == {"Autre"}
    assert subjects("julien.dupont") == {"Bilan sanguin", "Autre"}
    assert subjects("application/pdf") == set()  # a type is not a name


@pytest.mark.parametrize("query", ["%", "_", ".*", "' OR 1=1 --", "\\", '"', "[a-z]+"])
def test_search_reads_the_query_literally(claire, julien, query) -> None:
    (user, box), (_, nurse) = claire, julien
    send(nurse, [box.address], subject="Bilan")
    url = reverse("webmail_search", args=[box.pk])
    response = login(user).post(url, {"q": query}, follow=True)
    # Words are searched, never patterns: no match, or a clear refusal when the query
    # holds no word at all (punctuation only).
    if response.status_code == 400:
        assert "au moins deux lettres ou chiffres" in response.content.decode()
    else:
        assert response.status_code == 200 and response.context["rows"] == []


def test_search_finds_accented_attachment_names(claire, julien) -> None:
    (user, box), (_, nurse) = claire, julien
    send(
        nurse,
        [box.address],
        attachments=[mime.Attachment("échographie.pdf", "application/pdf", PDF)],
    )
    url = reverse("webmail_search", args=[box.pk])
    response = login(user).post(url, {"q": "échographie"}, follow=True)
    assert len(response.context["rows"]) == 1


# --------------------------------------------------------------------------- reading


def test_opening_a_message_marks_it_seen_and_shows_its_headers(claire, julien) -> None:
    (user, box), (_, nurse) = claire, julien
    message = send(
        nurse, [box.address], cc=[], subject="Résultats", text="Ligne 1\nLigne 2 <b>x</b>"
    )
    entry = entry_of(box, message)
    response = login(user).get(reverse("webmail_read", args=[entry.pk]))
    html = response.content.decode()
    entry.refresh_from_db()
    assert entry.seen
    assert "Résultats" in html and nurse.address in html and box.address in html
    # Text bodies are escaped and keep their line breaks (pre-wrap).
    assert "Ligne 1\nLigne 2 &lt;b&gt;x&lt;/b&gt;" in html


def test_reading_shows_sent_by_x_for_y_when_the_sender_differs(claire, julien) -> None:
    (user, box), (_, nurse) = claire, julien
    message = send(nurse, [box.address])
    Message.objects.filter(pk=message.pk).update(sender_addr="secretariat@hopital.mssante.test")
    response = login(user).get(reverse("webmail_read", args=[entry_of(box, message).pk]))
    html = response.content.decode()
    assert "Envoyé par" in html and "secretariat@hopital.mssante.test" in html


def test_attachments_are_listed_with_type_and_size(claire, julien) -> None:
    (user, box), (_, nurse) = claire, julien
    message = send(
        nurse,
        [box.address],
        attachments=[mime.Attachment("cr.pdf", "application/pdf", b"x" * 2500)],
    )
    html = (
        login(user).get(reverse("webmail_read", args=[entry_of(box, message).pk])).content.decode()
    )
    assert "cr.pdf" in html and "application/pdf" in html and "2,5 ko" in html


def test_download_is_streamed_as_an_attachment_with_nosniff(claire, julien) -> None:
    (user, box), (_, nurse) = claire, julien
    message = send(
        nurse,
        [box.address],
        attachments=[mime.Attachment("compte rendu é.pdf", "application/pdf", PDF)],
    )
    entry = entry_of(box, message)
    index = services.parse(message).attachments[0].index
    response = login(user).get(reverse("webmail_download", args=[entry.pk, index]))
    assert response.status_code == 200 and response.streaming
    assert b"".join(response.streaming_content) == PDF
    disposition = response["Content-Disposition"]
    assert disposition.startswith("attachment;")
    assert "filename*=UTF-8''compte%20rendu%20%C3%A9.pdf" in disposition
    assert response["X-Content-Type-Options"] == "nosniff"


def test_a_pdf_preview_is_inline_and_sandboxed(claire, julien) -> None:
    (user, box), (_, nurse) = claire, julien
    message = send(
        nurse, [box.address], attachments=[mime.Attachment("cr.pdf", "application/pdf", PDF)]
    )
    entry = entry_of(box, message)
    index = services.parse(message).attachments[0].index
    response = login(user).get(reverse("webmail_preview", args=[entry.pk, index]))
    assert response.status_code == 200
    assert response["Content-Type"] == "application/pdf"
    assert response["Content-Disposition"].startswith("inline;")
    assert response["Content-Security-Policy"].startswith("sandbox;")
    assert "default-src 'none'" in response["Content-Security-Policy"]
    assert response["X-Content-Type-Options"] == "nosniff"


@pytest.mark.parametrize(
    ("filename", "content_type"),
    [
        ("page.html", "text/html"),
        ("image.svg", "image/svg+xml"),
        # A .js name is refused at submission (charter policy); the type is what matters here.
        ("x.txt", "application/javascript"),
    ],
)
def test_no_preview_for_types_a_browser_would_run(claire, julien, filename, content_type) -> None:
    (user, box), (_, nurse) = claire, julien
    message = send(
        nurse,
        [box.address],
        attachments=[mime.Attachment(filename, content_type, b"<script>alert(1)</script>")],
    )
    entry = entry_of(box, message)
    index = services.parse(message).attachments[0].index
    client = login(user)
    assert client.get(reverse("webmail_preview", args=[entry.pk, index])).status_code == 404
    # Still downloadable, as bytes the browser saves.
    download = client.get(reverse("webmail_download", args=[entry.pk, index]))
    assert download["Content-Type"] == "application/octet-stream"


def test_an_unknown_attachment_index_is_404(claire, julien) -> None:
    (user, box), (_, nurse) = claire, julien
    entry = entry_of(box, send(nurse, [box.address]))
    assert login(user).get(reverse("webmail_download", args=[entry.pk, 99])).status_code == 404


def test_the_sender_sees_the_delivery_status_of_each_recipient(claire, julien) -> None:
    (user, box), (_, nurse) = claire, julien
    _, other = person("Sophie", "Bernard")
    message = send(box, [nurse.address, other.address])
    Delivery.objects.filter(message=message, recipient=other.address).update(
        status=Delivery.Status.BOUNCED,
        reason=reasons.REMOTE_REPLY,
        reason_params={"domain": "hopital.test", "reply": "552 5.2.2 Boîte pleine"},
    )
    html = (
        login(user).get(reverse("webmail_read", args=[entry_of(box, message).pk])).content.decode()
    )
    assert "Distribution aux destinataires" in html
    assert "Distribué" in html
    assert "Non distribué : Le serveur de hopital.test a répondu : 552 5.2.2 Boîte pleine" in html


def test_a_recipient_does_not_see_the_delivery_status(claire, julien) -> None:
    (user, box), (_, nurse) = claire, julien
    message = send(nurse, [box.address])
    html = (
        login(user).get(reverse("webmail_read", args=[entry_of(box, message).pk])).content.decode()
    )
    assert "Distribution aux destinataires" not in html


def test_the_conversation_groups_a_thread_in_order(claire, julien) -> None:
    (doctor, box), (_nurse_user, nurse) = claire, julien
    first = send(box, [nurse.address], subject="Patient X", text="Question")
    reply = send(nurse, [box.address], subject="Re: Patient X", text="Réponse", in_reply_to=first)
    send(nurse, [box.address], subject="Sans rapport")
    entry = entry_of(box, reply)
    response = login(doctor).get(reverse("webmail_conversation", args=[entry.pk]))
    items = [i.entry.message.pk for i in response.context["items"]]
    assert items == [first.pk, reply.pk]


# --------------------------------------------------------------------------- filing


def test_flag_and_unflag(claire, julien) -> None:
    (user, box), (_, nurse) = claire, julien
    entry = entry_of(box, send(nurse, [box.address]))
    client = login(user)
    client.post(reverse("webmail_flag", args=[entry.pk]), {"flagged": "1"})
    entry.refresh_from_db()
    assert entry.flagged
    client.post(reverse("webmail_flag", args=[entry.pk]), {"flagged": "0"})
    entry.refresh_from_db()
    assert not entry.flagged


def test_mark_unread_goes_back_to_the_list(claire, julien) -> None:
    (user, box), (_, nurse) = claire, julien
    entry = entry_of(box, send(nurse, [box.address]))
    client = login(user)
    client.get(reverse("webmail_read", args=[entry.pk]))
    response = client.post(reverse("webmail_mark_unread", args=[entry.pk]))
    entry.refresh_from_db()
    assert not entry.seen
    assert response["Location"] == reverse("webmail_folder", args=[entry.folder_id])


def test_writes_refuse_get(claire, julien) -> None:
    (user, box), (_, nurse) = claire, julien
    entry = entry_of(box, send(nurse, [box.address]))
    assert login(user).get(reverse("webmail_trash", args=[entry.pk])).status_code == 405


def test_move_delete_restore_and_empty_trash(claire, julien) -> None:
    (user, box), (_, nurse) = claire, julien
    entry = entry_of(box, send(nurse, [box.address]))
    client = login(user)
    archive = folder(box, Folder.Role.ARCHIVE)
    client.post(reverse("webmail_move", args=[entry.pk]), {"folder": archive.pk})
    entry.refresh_from_db()
    assert entry.folder == archive
    client.post(reverse("webmail_trash", args=[entry.pk]))
    entry.refresh_from_db()
    assert entry.folder.role == Folder.Role.TRASH
    client.post(reverse("webmail_restore", args=[entry.pk]))
    entry.refresh_from_db()
    assert entry.folder == archive
    client.post(reverse("webmail_trash", args=[entry.pk]))
    committed(client.post, reverse("webmail_empty_trash", args=[box.pk]))
    assert not Entry.objects.filter(pk=entry.pk).exists()


def test_moving_to_a_folder_of_another_mailbox_is_404(claire, julien) -> None:
    (user, box), (_, nurse) = claire, julien
    entry = entry_of(box, send(nurse, [box.address]))
    response = login(user).post(
        reverse("webmail_move", args=[entry.pk]), {"folder": folder(nurse, Folder.Role.ARCHIVE).pk}
    )
    assert response.status_code == 404
    entry.refresh_from_db()
    assert entry.folder.role == Folder.Role.INBOX


def test_custom_folders_are_created_renamed_and_deleted_when_empty(claire, julien) -> None:
    (user, box), (_, nurse) = claire, julien
    client = login(user)
    client.post(reverse("webmail_folder_create", args=[box.pk]), {"name": "Cardiologie"})
    custom = selectors.folder_by_name(box, "Cardiologie")
    assert custom is not None
    assert custom.role == Folder.Role.CUSTOM
    client.post(reverse("webmail_folder_rename", args=[custom.pk]), {"name": "Cardio"})
    custom.refresh_from_db()
    assert custom.name == "Cardio"
    entry = entry_of(box, send(nurse, [box.address]))
    client.post(reverse("webmail_move", args=[entry.pk]), {"folder": custom.pk})
    response = client.post(reverse("webmail_folder_delete", args=[custom.pk]), follow=True)
    assert (
        "n&#x27;est pas vide" in response.content.decode()
        or "n'est pas vide" in response.content.decode()
    )
    client.post(reverse("webmail_trash", args=[entry.pk]))
    client.post(reverse("webmail_folder_delete", args=[custom.pk]))
    assert not Folder.objects.filter(pk=custom.pk).exists()


def test_a_duplicate_folder_name_is_refused_with_a_message(claire) -> None:
    user, box = claire
    response = login(user).post(
        reverse("webmail_folder_create", args=[box.pk]), {"name": "Archives"}, follow=True
    )
    assert "existe déjà" in response.content.decode()


def test_system_folders_cannot_be_renamed_or_deleted(claire) -> None:
    user, box = claire
    client = login(user)
    inbox = folder(box, Folder.Role.INBOX)
    assert (
        client.post(reverse("webmail_folder_rename", args=[inbox.pk]), {"name": "X"}).status_code
        == 404
    )
    assert client.post(reverse("webmail_folder_delete", args=[inbox.pk])).status_code == 404


# --------------------------------------------------------------------------- compose


def compose_fields(html: str) -> dict[str, str]:
    """The fields of a compose page's form as the browser would post them."""
    import re
    from html import unescape

    form = html.split('id="compose-form"', 1)[1].split("</form>", 1)[0]
    fields = {
        name: unescape(value)
        for name, value in re.findall(r'<input[^>]*?name="([^"]+)"[^>]*?value="([^"]*)"', form)
        if name not in ("format", "read_receipt", "csrfmiddlewaretoken")
    }
    text = re.search(r'name="text"[^>]*>\n?(.*?)</textarea>', form, re.S)
    fields["text"] = unescape(text.group(1)) if text else ""
    return fields


def open_compose(client: Client, url: str) -> dict[str, str]:
    response = client.get(url, follow=True)
    assert response.status_code == 200
    return compose_fields(response.content.decode())


def new_draft(client: Client, box: Mailbox, **typed: str) -> Draft:
    """A draft made as the page makes it: the first autosave with something typed."""
    fields = open_compose(client, reverse("webmail_compose", args=[box.pk]))
    fields.update(typed or {"subject": "Brouillon"})
    response = client.post(
        reverse("webmail_compose_save", args=[box.pk]), fields, headers={"HX-Request": "true"}
    )
    draft = Draft.objects.filter(mailbox=box).latest("pk")
    assert response.status_code == 200 and "draftCreated" in response["HX-Trigger"]
    return draft


def answer(client: Client, entry: Entry, mode: str) -> Draft:
    """Répondre / Transférer, then a first autosave of the prepared page: its draft."""
    response = client.post(reverse("webmail_reply", args=[entry.pk]), {"mode": mode})
    assert response.status_code == 302
    fields = open_compose(client, response["Location"])
    client.post(
        reverse("webmail_compose_save", args=[entry.mailbox_id]),
        fields,
        headers={"HX-Request": "true"},
    )
    return Draft.objects.filter(mailbox=entry.mailbox).latest("pk")


def test_compose_sends_a_message_with_several_attachments(claire, julien) -> None:
    (user, box), (_, nurse) = claire, julien
    client = login(user)
    draft = new_draft(client, box)
    assert client.get(reverse("webmail_draft", args=[draft.pk])).status_code == 200
    from django.core.files.uploadedfile import SimpleUploadedFile

    response = client.post(
        reverse("webmail_draft_upload", args=[draft.pk]),
        {
            "files": [
                SimpleUploadedFile("a.pdf", PDF, "application/pdf"),
                SimpleUploadedFile("b.txt", b"note", "text/plain"),
            ]
        },
        headers={"X-Requested-With": "XMLHttpRequest"},
    )
    assert (
        response.status_code == 200
        and "a.pdf" in response.content.decode()
        and "b.txt" in response.content.decode()
    )
    response = committed(
        client.post,
        reverse("webmail_draft_send", args=[draft.pk]),
        {"to": f"{nurse.address}\n", "cc": "", "subject": "Deux fichiers", "text": "Voici."},
    )
    assert response.status_code == 302
    received = Entry.objects.get(mailbox=nurse, folder__role=Folder.Role.INBOX)
    assert [a["filename"] for a in received.message.attachments] == ["a.pdf", "b.txt"]
    assert not Draft.objects.filter(pk=draft.pk).exists()


def test_a_refused_submission_shows_the_reason_and_keeps_the_draft(claire) -> None:
    user, box = claire
    client = login(user)
    draft = new_draft(client, box)
    response = client.post(
        reverse("webmail_draft_send", args=[draft.pk]),
        {"to": "personne@ailleurs.example", "subject": "Perdu ?", "text": "Texte gardé"},
    )
    html = response.content.decode()
    assert response.status_code == 400
    assert "n&#x27;a pas été envoyé" in html or "n'a pas été envoyé" in html
    assert "ailleurs.example" in html
    content = services.open_draft(Draft.objects.get(pk=draft.pk))
    assert content.text == "Texte gardé" and content.to == ["personne@ailleurs.example"]
    assert not Message.objects.exists()


def test_autosave_from_htmx_answers_a_status_and_saves(claire) -> None:
    user, box = claire
    client = login(user)
    draft = new_draft(client, box)
    response = client.post(
        reverse("webmail_draft_save", args=[draft.pk]),
        {
            "to": "a@hopital.mssante.test, b@hopital.mssante.test",
            "cc": "",
            "subject": "Brouillon",
            "text": "En cours",
        },
        headers={"HX-Request": "true"},
    )
    assert response.status_code == 200 and "Brouillon enregistré" in response.content.decode()
    content = services.open_draft(Draft.objects.get(pk=draft.pk))
    assert content.to == ["a@hopital.mssante.test", "b@hopital.mssante.test"]
    assert content.subject == "Brouillon" and content.text == "En cours"


def test_autosave_from_a_beacon_answers_no_content(claire) -> None:
    user, box = claire
    client = login(user)
    draft = new_draft(client, box)
    response = client.post(
        reverse("webmail_draft_save", args=[draft.pk]), {"subject": "Quitté", "text": "x"}
    )
    assert response.status_code == 204
    assert Draft.objects.get(pk=draft.pk).subject == "Quitté"


def test_the_beacon_needs_the_csrf_token_field(claire) -> None:
    user, box = claire
    client = login(user)
    draft = new_draft(client, box)
    strict = Client(enforce_csrf_checks=True)
    strict.cookies = client.cookies
    assert (
        strict.post(reverse("webmail_draft_save", args=[draft.pk]), {"subject": "x"}).status_code
        == 403
    )


def test_reply_prepares_a_quoted_answer_to_the_sender(claire, julien) -> None:
    (user, box), (_, nurse) = claire, julien
    message = send(nurse, [box.address], subject="Question", text="Pouvez-vous voir ?")
    entry = entry_of(box, message)
    client = login(user)
    content = services.open_draft(answer(client, entry, "reply"))
    assert content.to == [nurse.address]
    assert content.subject == "Re : Question"
    assert "> Pouvez-vous voir ?" in content.text
    assert content.in_reply_to_id == message.pk


def test_reply_all_keeps_everyone_but_me(claire, julien) -> None:
    (user, box), (_, nurse) = claire, julien
    _, other = person("Sophie", "Bernard")
    message = send(nurse, [box.address, other.address], cc=[])
    client = login(user)
    content = services.open_draft(answer(client, entry_of(box, message), "reply_all"))
    assert content.to == [nurse.address, other.address]


def test_forward_carries_the_attachments(claire, julien) -> None:
    (user, box), (_, nurse) = claire, julien
    message = send(
        nurse,
        [box.address],
        subject="Radio",
        attachments=[mime.Attachment("radio.pdf", "application/pdf", PDF)],
    )
    client = login(user)
    draft = answer(client, entry_of(box, message), "forward")
    assert draft.subject == "Tr : Radio"
    assert [f.filename for f in draft.files.all()] == ["radio.pdf"]


def test_a_sent_reply_joins_the_conversation(claire, julien) -> None:
    (_doctor, box), (nurse_user, nurse) = claire, julien
    first = send(box, [nurse.address], subject="Patient X")
    client = login(nurse_user)
    draft = answer(client, entry_of(nurse, first), "reply")
    committed(
        client.post,
        reverse("webmail_draft_send", args=[draft.pk]),
        {"to": box.address, "subject": "Re : Patient X", "text": "Vu."},
    )
    reply = Entry.objects.get(mailbox=box, folder__role=Folder.Role.INBOX)
    assert reply.message.thread_key == first.thread_key
    assert entry_of(nurse, first).answered


def test_removing_a_draft_attachment(claire) -> None:
    user, box = claire
    client = login(user)
    draft = new_draft(client, box)
    att = services.add_draft_attachment(draft, "a.txt", "text/plain", b"a", by=draft.author)
    client.post(reverse("webmail_draft_attachment_delete", args=[draft.pk, att.pk]))
    assert not draft.files.exists()


# --------------------------------------------------------------------------- outsiders

OUTSIDER_URLS: list[tuple[str, str, Callable[[dict[str, Any]], list[int]], dict[str, Any]]] = [
    ("get", "webmail_read", lambda o: [o["entry"].pk], {}),
    ("get", "webmail_conversation", lambda o: [o["entry"].pk], {}),
    ("get", "webmail_download", lambda o: [o["entry"].pk, o["index"]], {}),
    ("get", "webmail_preview", lambda o: [o["entry"].pk, o["index"]], {}),
    ("post", "webmail_flag", lambda o: [o["entry"].pk], {"flagged": "1"}),
    ("post", "webmail_mark_unread", lambda o: [o["entry"].pk], {}),
    ("post", "webmail_move", lambda o: [o["entry"].pk], {"folder": "ARCHIVE"}),
    ("post", "webmail_trash", lambda o: [o["entry"].pk], {}),
    ("post", "webmail_restore", lambda o: [o["entry"].pk], {}),
    ("post", "webmail_reply", lambda o: [o["entry"].pk], {"mode": "forward"}),
    ("get", "webmail_folder", lambda o: [o["inbox"].pk], {}),
    ("post", "webmail_folder_rename", lambda o: [o["custom"].pk], {"name": "Volé"}),
    ("post", "webmail_folder_delete", lambda o: [o["custom"].pk], {}),
    ("post", "webmail_folder_create", lambda o: [o["box"].pk], {"name": "Intrus"}),
    ("get", "webmail_search", lambda o: [o["box"].pk], {}),
    ("post", "webmail_search", lambda o: [o["box"].pk], {"q": "Secret"}),
    ("post", "webmail_empty_trash", lambda o: [o["box"].pk], {}),
    ("post", "webmail_compose", lambda o: [o["box"].pk], {}),
    ("get", "webmail_compose", lambda o: [o["box"].pk], {}),
    ("post", "webmail_compose_save", lambda o: [o["box"].pk], {"subject": "Volé"}),
    ("post", "webmail_compose_keep", lambda o: [o["box"].pk], {"subject": "Volé"}),
    ("post", "webmail_compose_send", lambda o: [o["box"].pk], {"to": "x@hopital.mssante.test"}),
    ("post", "webmail_compose_upload", lambda o: [o["box"].pk], {}),
    ("get", "webmail_draft", lambda o: [o["draft"].pk], {}),
    ("post", "webmail_draft", lambda o: [o["draft"].pk], {"subject": "Volé"}),
    ("post", "webmail_draft_save", lambda o: [o["draft"].pk], {"subject": "Volé"}),
    ("post", "webmail_draft_send", lambda o: [o["draft"].pk], {"to": "x@hopital.mssante.test"}),
    ("post", "webmail_draft_delete", lambda o: [o["draft"].pk], {}),
    ("post", "webmail_draft_upload", lambda o: [o["draft"].pk], {}),
    ("get", "webmail_draft_attachment", lambda o: [o["draft"].pk, o["att"].pk], {}),
    ("post", "webmail_draft_attachment_delete", lambda o: [o["draft"].pk, o["att"].pk], {}),
]


@pytest.mark.parametrize(
    ("method", "name", "args", "data"),
    OUTSIDER_URLS,
    ids=[f"{m}-{n}" for m, n, _a, _d in OUTSIDER_URLS],
)
def test_an_outsider_gets_404_on_every_url_of_another_persons_mail(
    claire, julien, method, name, args, data
) -> None:
    (owner, box), (_, nurse) = claire, julien
    message = send(
        nurse,
        [box.address],
        subject="Secret",
        attachments=[mime.Attachment("cr.pdf", "application/pdf", PDF)],
    )
    entry = entry_of(box, message)
    custom = services.create_folder(box, "Privé", by=owner)
    draft = services.save_draft(
        mailbox=box,
        author=owner,
        draft=None,
        to=[nurse.address],
        cc=[],
        subject="Brouillon secret",
        text="",
    )
    objects = {
        "entry": entry,
        "index": services.parse(message).attachments[0].index,
        "inbox": folder(box, Folder.Role.INBOX),
        "custom": custom,
        "box": box,
        "draft": draft,
        "att": services.add_draft_attachment(
            draft, "note.txt", "text/plain", b"secret", by=draft.author
        ),
    }
    if data.get("folder") == "ARCHIVE":
        data = {"folder": folder(box, Folder.Role.ARCHIVE).pk}
    outsider, _outsider_box = person("Paul", "Intrus")
    url = reverse(name, args=args(objects))
    response = getattr(login(outsider), method)(url, data)
    assert response.status_code == 404
    # Nothing changed for the owner.
    entry.refresh_from_db()
    assert (entry.folder.role, entry.seen, entry.flagged) == (Folder.Role.INBOX, False, False)
    assert Draft.objects.get(pk=draft.pk).subject == "Brouillon secret"
    assert Folder.objects.get(pk=custom.pk).name == "Privé"
    assert "Intrus" not in {f.name for f in Folder.objects.all()}
    # And the owner still gets a page (the matrix is not 404 for everyone).
    owner_response = login(owner).get(url) if method == "get" else None
    if owner_response is not None:
        assert owner_response.status_code == 200


def test_the_compose_page_keeps_the_blank_lines_before_a_quote(claire, julien) -> None:
    (user, box), (_, nurse) = claire, julien
    message = send(nurse, [box.address], text="Question")
    client = login(user)
    draft = answer(client, entry_of(box, message), "reply")
    html = client.get(reverse("webmail_draft", args=[draft.pk])).content.decode()
    # HTML drops one newline right after <textarea>: the template adds it back.
    assert "aria-describedby" not in html.split('id="id_text"', 1)[1].split(">", 1)[0]
    assert ">\n\n\nLe " in html.split('id="id_text"', 1)[1]
