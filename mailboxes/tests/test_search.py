"""The webmail search: keyed tokens (no word at rest), filters, order, and how results name people."""

from __future__ import annotations

import base64
import io
import os
from datetime import timedelta
from typing import Any

import pytest
from django.core.exceptions import FieldError
from django.core.management import call_command
from django.db import connection
from django.urls import reverse
from django.utils import timezone

from mailboxes import search, selectors
from mailboxes.models import Entry, Folder, Mailbox, Message
from mailboxes.tests.test_views import entry_of, folder, listed_entry
from mssante.lib import mime
from tests.personas import Person, after_commit, login, send, submit

pytestmark = pytest.mark.django_db


def test_search_results_name_the_correspondent_of_each_message(
    claire: Person, julien: Person
) -> None:
    (user, box), nurse = claire, julien.box
    send(box, [nurse.address], subject="Pour Julien")
    send(nurse, [box.address], subject="Pour Claire")
    response = login(user).post(
        reverse("webmail_search", args=[box.pk]), {"q": "Pour"}, follow=True
    )
    html = response.content.decode()
    assert '<th scope="col">Correspondant</th>' in html and ">Expéditeur<" not in html
    cells = {row.entry.message.subject: row for row in response.context["rows"]}
    assert cells["Pour Julien"].outgoing and cells["Pour Julien"].who == nurse.address
    assert not cells["Pour Claire"].outgoing and cells["Pour Claire"].who == "Julien Dupont"
    assert f'<span class="webmail-who-label">À :</span> {nurse.address}' in html
    assert '<span class="webmail-who-label">De :</span> Julien Dupont' in html


def test_a_sent_message_filed_in_the_archive_names_its_recipients(
    claire: Person, julien: Person
) -> None:
    (user, box), nurse = claire, julien.box
    entry = entry_of(box, send(box, [nurse.address], subject="Classé"))
    client = login(user)
    archive = folder(box, Folder.Role.ARCHIVE)
    client.post(reverse("webmail_move", args=[entry.pk]), {"folder": archive.pk})
    html = client.get(reverse("webmail_folder", args=[archive.pk])).content.decode()
    assert f'<span class="webmail-who-label">À :</span> {nurse.address}' in html


def results(client: Any, box: Mailbox, **form: object) -> list[str]:
    """The subjects the search page lists for this form, POSTed as a browser does."""
    response = client.post(reverse("webmail_search", args=[box.pk]), form, follow=True)
    assert response.status_code == 200, response.content.decode()[:2000]
    return [row.entry.message.subject for row in response.context["rows"]]


def indexed(box: Mailbox, **kwargs: object) -> Entry:
    """A listed entry (no blob) with its tokens, as the rebuild command makes them."""
    entry = listed_entry(box, **kwargs)
    search.reindex([Entry.objects.select_related("message").get(pk=entry.pk)])
    return entry


def test_a_word_only_in_the_body_is_found_and_stored_only_as_tokens(
    claire: Person, julien: Person
) -> None:
    (user, box), nurse = claire, julien.box
    message = send(nurse, [box.address], subject="Bilan", text="Diagnostic : syndrome zygomatique.")
    assert results(login(user), box, q="zygomatique") == ["Bilan"]
    entry = entry_of(box, message)
    assert entry.search_tokens and all(isinstance(t, int) for t in entry.search_tokens)
    with connection.cursor() as cursor:
        cursor.execute("SELECT subject FROM mailboxes_message WHERE id = %s", [message.pk])
        (stored,) = cursor.fetchone()
    assert b"Bilan" not in bytes(stored)
    assert Message.objects.get(pk=message.pk).subject == "Bilan"


def test_a_sealed_subject_cannot_be_filtered_in_sql() -> None:
    with pytest.raises(FieldError):
        Message.objects.filter(subject="Bilan").exists()


def test_the_last_word_is_a_prefix_and_every_word_must_match(
    claire: Person, julien: Person
) -> None:
    (user, box), nurse = claire, julien.box
    send(nurse, [box.address], subject="Un", text="Consultation de cardiologie pédiatrique")
    send(nurse, [box.address], subject="Deux", text="Consultation de pneumologie")
    client = login(user)
    assert results(client, box, q="cardio") == ["Un"]
    assert sorted(results(client, box, q="consultation")) == ["Deux", "Un"]
    assert results(client, box, q="consultation pneumo") == ["Deux"]
    # Not a prefix (the middle of a word), and a word found in neither with the other.
    assert results(client, box, q="ardiolog") == []
    assert results(client, box, q="pneumologie cardiologie") == []
    # Case and accents aside.
    assert results(client, box, q="PEDIATRIQUE") == ["Un"]


def test_the_sent_copy_is_found_by_its_body_and_names_its_recipients(
    claire: Person, julien: Person
) -> None:
    (user, box), nurse = claire, julien.box
    send(box, [nurse.address], subject="Pour Julien", text="Protocole xylophage")
    response = login(user).post(
        reverse("webmail_search", args=[box.pk]), {"q": "xylophage"}, follow=True
    )
    (row,) = response.context["rows"]
    assert row.outgoing and row.who == nurse.address
    assert (
        f'<span class="webmail-who-label">À :</span> {nurse.address}' in response.content.decode()
    )


def test_the_text_of_readable_attachments_is_found(claire: Person, julien: Person) -> None:
    (user, box), nurse = claire, julien.box
    cda = (
        b'<?xml version="1.0"?><ClinicalDocument xmlns="urn:hl7-org:v3"><component>'
        b"<section><title>Conclusion</title><text>Hypokali\xc3\xa9mie s\xc3\xa9v\xc3\xa8re</text>"
        b"</section></component></ClinicalDocument>"
    )
    send(
        nurse,
        [box.address],
        subject="Pièces",
        text="Voir les pièces jointes.",
        attachments=[
            mime.Attachment("notes.txt", "text/plain", b"Tachycardie nocturne"),
            mime.Attachment("cr.xml", "application/xml", cda),
        ],
    )
    client = login(user)
    assert results(client, box, q="tachycardie") == ["Pièces"]
    assert results(client, box, q="hypokaliemie severe") == ["Pièces"]
    assert results(client, box, q="notes") == ["Pièces"]  # the attachment's name


def test_the_filters_narrow_the_results(claire: Person, julien: Person) -> None:
    (user, box), nurse = claire, julien.box
    old = send(nurse, [box.address], subject="Ancien", text="dossier commun")
    with_file = send(
        nurse,
        [box.address],
        subject="Avec fichier",
        text="dossier commun",
        attachments=[mime.Attachment("a.pdf", "application/pdf", b"%PDF-1.4 test")],
    )
    mine = send(box, [nurse.address], subject="Envoyé", text="dossier commun")
    Entry.objects.filter(mailbox=box, message=old).update(
        received_at=timezone.now() - timedelta(days=40), seen=True
    )
    Entry.objects.filter(mailbox=box, message=with_file).update(seen=True)
    client = login(user)
    everything = ["Ancien", "Avec fichier", "Envoyé"]
    assert sorted(results(client, box, q="commun")) == everything
    assert results(client, box, q="commun", with_attachments="on") == ["Avec fichier"]
    unread = results(client, box, q="commun", unread="on")
    assert "Ancien" not in unread and "Avec fichier" not in unread
    recent = (timezone.localdate() - timedelta(days=2)).isoformat()
    assert sorted(results(client, box, q="commun", since=recent)) == ["Avec fichier", "Envoyé"]
    assert results(client, box, q="commun", until=recent) == ["Ancien"]
    sent = folder(box, Folder.Role.SENT)
    assert results(client, box, q="commun", folder=sent.pk) == ["Envoyé"]
    # From and to: the nurse wrote two, the doctor wrote one (to the nurse).
    assert sorted(results(client, box, sender="Julien")) == ["Ancien", "Avec fichier"]
    assert results(client, box, sender="claire.martin") == ["Envoyé"]
    assert results(client, box, recipient="dupont") == ["Envoyé"]
    # Filters alone, without a word.
    assert results(client, box, with_attachments="on") == ["Avec fichier"]
    assert mine.pk  # (sent through the same path as the others)


def test_the_sent_copy_is_indexed_once_by_the_worker_with_the_recipients(
    claire: Person, julien: Person, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The web request does not parse what it just wrote: the worker reads the message
    once, after the scan, and indexes the sender's copy and the recipients' entries."""
    (user, box), nurse = claire, julien.box
    parsed: list[int] = []
    document = search.document

    def counted(raw: bytes) -> Any:
        parsed.append(len(raw))
        return document(raw)

    monkeypatch.setattr(search, "document", counted)
    with after_commit():
        message = submit(box, [nurse.address], subject="Échographie", text="hépatomégalie")
        assert message.scan_status == Message.ScanStatus.PENDING
        copy = Entry.objects.get(mailbox=box, message=message)
        assert copy.search_tokens == [] and parsed == []
    # Once delivered: one parse for both boxes, and both find it by a word of its body.
    assert len(parsed) == 1
    assert results(login(user), box, q="hepatomegalie") == ["Échographie"]
    assert Entry.objects.get(mailbox=nurse, message=message).search_tokens


def test_a_stranger_never_finds_another_box_s_message(claire: Person, julien: Person) -> None:
    (user, box), (nurse_user, nurse) = claire, julien
    send(nurse, [box.address], subject="Confidentiel", text="Quetiapine prescrite")
    assert results(login(user), box, q="quetiapine") == ["Confidentiel"]
    # The nurse's own box has no such word (her Sent copy is hers: leave it out of the way).
    Entry.objects.filter(mailbox=nurse).delete()
    assert results(login(nurse_user), nurse, q="quetiapine") == []
    # Nor can she search the doctor's box: 404, never a result.
    response = login(nurse_user).post(reverse("webmail_search", args=[box.pk]), {"q": "quetiapine"})
    assert response.status_code == 404
    # The same word has other tokens in another box: each box its own key.
    assert search.terms_tokens(box.pk, {"w:quetiapine"}) != search.terms_tokens(
        nurse.pk, {"w:quetiapine"}
    )


@pytest.mark.parametrize(
    ("form", "message"),
    [
        ({"q": "x" * 10_000}, "200 caractères"),
        ({"q": " ".join(f"mot{i}" for i in range(1000))}, "200 caractères"),
        ({"q": " ".join(f"m{i}" for i in range(30))}, "20 mots au plus"),
        ({"q": "bilan\x00nul"}, "caractère nul"),
        ({"q": "!!! ??? ..."}, "au moins deux lettres"),
        ({"q": "bilan", "since": "2026-99-99"}, "date"),
        ({"q": "bilan", "since": "0001-01-01"}, "entre 1900 et 2200"),
        ({"q": "bilan", "since": "2026-05-02", "until": "2026-05-01"}, "précède"),
        ({"q": "bilan", "folder": "999999999"}, "choix"),
        ({}, "au moins un mot"),
    ],
)
def test_hostile_queries_get_a_clear_refusal_not_an_error(
    claire: Person, form: dict[str, str], message: str
) -> None:
    user, box = claire
    response = login(user).post(reverse("webmail_search", args=[box.pk]), form)
    assert response.status_code == 400
    assert message.lower() in response.content.decode().lower()


@pytest.mark.parametrize(
    "query",
    [
        "\u202eevil\u202c",
        "🩺🩺 bilan",
        "Z̸̢̛a̵l̴g̶o̷",
        "\ufb01chier \uff26\uff35\uff2c\uff2c",
        "日本語テキスト",
        "\ufeffbom",
    ],
)
def test_weird_unicode_is_searched_not_a_500(claire: Person, query: str) -> None:
    user, box = claire
    response = login(user).post(reverse("webmail_search", args=[box.pk]), {"q": query}, follow=True)
    assert response.status_code in (200, 400)
    assert "Erreur" not in response.content.decode()[:200]


def test_a_foreign_folder_in_the_form_is_refused(claire: Person, julien: Person) -> None:
    (user, box), nurse = claire, julien.box
    other = folder(nurse, Folder.Role.INBOX)
    response = login(user).post(
        reverse("webmail_search", args=[box.pk]), {"q": "bilan", "folder": other.pk}
    )
    assert response.status_code == 400


def test_results_come_in_pages_with_a_cursor(
    claire: Person, monkeypatch: pytest.MonkeyPatch
) -> None:
    user, box = claire
    monkeypatch.setattr(selectors, "SEARCH_LIMIT", 2)
    now = timezone.now()
    for i in range(5):
        indexed(box, subject="Page", when=now - timedelta(minutes=i))
    client = login(user)
    response = client.post(reverse("webmail_search", args=[box.pk]), {"q": "page"}, follow=True)
    first = [r.entry.pk for r in response.context["rows"]]
    cursor = response.context["next_cursor"]
    assert len(first) == 2 and cursor
    html = response.content.decode()
    assert "Résultats plus anciens" in html
    url = response.redirect_chain[-1][0]
    second = client.get(url, {"avant": cursor}).context["rows"]
    assert len(second) == 2 and not {r.entry.pk for r in second} & set(first)


def _newest_first(box: Mailbox, words: list[str]) -> list[Entry]:
    now = timezone.now()
    return [
        indexed(box, subject=word, when=now - timedelta(minutes=i)) for i, word in enumerate(words)
    ]


@pytest.mark.parametrize(
    ("words", "query", "expected"),
    [
        # Found often enough among the newest entries: those are the results.
        (["commun"] * 8, "commun", [0, 1]),
        # Only in the oldest entry: found in the whole box.
        (["autre"] * 7 + ["rare"], "rare", [7]),
        # Once among the newest, once far behind: both, newest first.
        (["mot"] + ["autre"] * 6 + ["mot"], "mot", [0, 7]),
        # Nowhere.
        (["autre"] * 8, "absent", []),
    ],
)
def test_search_finds_common_and_rare_words_newest_first(
    claire: Person,
    monkeypatch: pytest.MonkeyPatch,
    words: list[str],
    query: str,
    expected: list[int],
) -> None:
    _user, box = claire
    monkeypatch.setattr(search, "PROBE", 3)
    made = _newest_first(box, words)
    found = selectors.search(box, query, limit=2).entries
    assert [e.pk for e in found] == [made[i].pk for i in expected]


def test_search_leaves_the_trash_out_in_both_steps(
    claire: Person, monkeypatch: pytest.MonkeyPatch
) -> None:
    _user, box = claire
    monkeypatch.setattr(search, "PROBE", 2)
    made = _newest_first(box, ["mot", "mot", "autre", "mot", "mot"])
    trash = folder(box, Folder.Role.TRASH)
    Entry.objects.filter(pk__in=[made[0].pk, made[4].pk]).update(folder=trash)
    assert [e.pk for e in selectors.search(box, "mot", limit=5).entries] == [
        made[1].pk,
        made[3].pk,
    ]
    assert [e.pk for e in selectors.search(box, "mot", limit=1).entries] == [made[1].pk]
    # Asked for, the trash is searched.
    found = selectors.search(box, search.Criteria(text="mot", folder_id=trash.pk)).entries
    assert [e.pk for e in found] == [made[0].pk, made[4].pk]


def test_search_survives_a_master_key_rotation_and_the_rebuild_frees_the_old_key(
    claire: Person, julien: Person, settings: Any
) -> None:
    (_user, box), nurse = claire, julien.box
    old = settings.MSSANTE_MASTER_KEYS  # (the personas' second factors are sealed with it)
    new = "k-new:" + base64.b64encode(os.urandom(32)).decode()
    message = send(nurse, [box.address], subject="Avant", text="Rotation ostéopathique")
    before = entry_of(box, message).search_tokens
    settings.MSSANTE_MASTER_KEYS = f"{new},{old}"
    # Indexed under the old key, found while that key is still in the ring.
    assert [e.message_id for e in selectors.search(box, "osteopathique").entries] == [message.pk]
    call_command("rotate_master_key", stdout=io.StringIO())
    call_command("rebuild_search_index", stdout=io.StringIO())
    assert entry_of(box, message).search_tokens != before
    settings.MSSANTE_MASTER_KEYS = new  # the old key is gone
    assert [e.message_id for e in selectors.search(box, "osteopathique").entries] == [message.pk]
    assert Message.objects.get(pk=message.pk).subject == "Avant"


def test_the_list_shows_a_sealed_preview_of_the_body(claire: Person, julien: Person) -> None:
    (user, box), nurse = claire, julien.box
    long_text = "Bonjour Claire,\n\n  le bilan est normal. " + "Détail du dosage. " * 20
    message = send(nurse, [box.address], subject="Bilan", text=long_text)
    stored = Message.objects.get(pk=message.pk)
    assert stored.preview.startswith("Bonjour Claire, le bilan est normal.")
    assert len(stored.preview) <= search.PREVIEW_LENGTH
    with connection.cursor() as cursor:
        cursor.execute("SELECT preview FROM mailboxes_message WHERE id = %s", [message.pk])
        (sealed,) = cursor.fetchone()
    assert b"bilan" not in bytes(sealed).lower()
    inbox = folder(box, Folder.Role.INBOX)
    html = login(user).get(reverse("webmail_folder", args=[inbox.pk])).content.decode()
    assert '<span class="fr-hint-text webmail-preview">Bonjour Claire, le bilan est normal.' in html


def test_the_words_of_a_sealed_folder_name_find_the_messages_filed_there(
    claire: Person, julien: Person
) -> None:
    """Folder names are sealed; a search for a patient's name still finds the messages filed
    in the folder named after them, with the other criteria still applied."""
    (user, box), (_nurse_user, nurse) = claire, julien
    client = login(user)
    kept = send(nurse, [box.address], subject="Compte rendu", text="Rien de nominatif.")
    other = send(nurse, [box.address], subject="Planning", text="Garde de samedi.")
    send(nurse, [box.address], subject="Ailleurs", text="Sans rapport.")
    client.post(reverse("webmail_folder_create", args=[box.pk]), {"name": "Suivi Quiétude Marie"})
    filed = selectors.folder_by_name(box, "suivi quiétude marie")
    assert filed is not None
    for message in (kept, other):
        client.post(reverse("webmail_move", args=[entry_of(box, message).pk]), {"folder": filed.pk})
    # Every word must be in the name, the last one as a prefix; accents and case aside.
    assert sorted(results(client, box, q="quietude")) == ["Compte rendu", "Planning"]
    assert sorted(results(client, box, q="Marie QUIÉT")) == ["Compte rendu", "Planning"]
    assert results(client, box, q="quietude absent") == []
    # The other criteria still apply to what the folder holds.
    assert results(client, box, q="quietude", sender="personne") == []
    # Another box's folder of the same name finds nothing here.
    assert results(login(julien.user), nurse, q="quietude") == []
