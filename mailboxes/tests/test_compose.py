"""Compose (issue 14): drafts made only with content, Cci, rich text; reading: print, source,
no "Répondre" to the no-reply address, calendar invitations; the access journal's subjects."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
import time_machine
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from mailboxes import services
from mailboxes.models import Delivery, Draft, Entry, Mailbox, Message
from mailboxes.services import notices
from mailboxes.tasks import purge_empty_drafts
from mailboxes.tests.test_views import compose_fields, entry_of, open_compose
from mssante.lib import mime
from tests.personas import committed, login, person, send

pytestmark = pytest.mark.django_db

HX = {"HX-Request": "true"}


def page_fields(client: Client, box: Mailbox, **query: Any) -> dict[str, str]:
    url = reverse("webmail_compose", args=[box.pk])
    if query:
        from urllib.parse import urlencode

        url += "?" + urlencode(query)
    return open_compose(client, url)


# --------------------------------------------------------------------------- drafts


def test_writing_a_message_stores_no_draft_until_something_is_typed(claire) -> None:
    user, box = claire
    client = login(user)
    # "Écrire un message" (the side menu's button posts) shows the page, stores nothing.
    response = client.post(reverse("webmail_compose", args=[box.pk]), follow=True)
    assert response.status_code == 200
    fields = compose_fields(response.content.decode())
    assert fields["compose_key"] and not Draft.objects.exists()
    # An autosave of the empty page (a change of a checkbox): still nothing.
    empty = client.post(reverse("webmail_compose_save", args=[box.pk]), fields, headers=HX)
    assert empty.status_code == 204 and not Draft.objects.exists()
    # The first autosave with something typed makes the draft, and tells the page where it is.
    fields["subject"] = "Compte rendu"
    made = client.post(reverse("webmail_compose_save", args=[box.pk]), fields, headers=HX)
    draft = Draft.objects.get()
    assert made.status_code == 200 and "Brouillon enregistré" in made.content.decode()
    assert f"/brouillon/{draft.pk}/" in made["HX-Trigger"]
    # The next autosaves of the same page update that draft, never a second one.
    fields["text"] = "Suite"
    client.post(reverse("webmail_compose_save", args=[box.pk]), fields, headers=HX)
    assert Draft.objects.count() == 1
    assert services.open_draft(Draft.objects.get()).text == "Suite"


def test_abandoned_and_opened_pages_leave_no_draft(claire, julien) -> None:
    (user, box), (_, nurse) = claire, julien
    client = login(user)
    for _i in range(7):
        page_fields(client, box)
    message = send(nurse, [box.address], subject="Question")
    for mode in ("reply", "reply_all", "forward"):
        response = client.post(
            reverse("webmail_reply", args=[entry_of(box, message).pk]), {"mode": mode}
        )
        assert client.get(response["Location"]).status_code == 200
    assert not Draft.objects.exists()
    # The drafts folder is empty: no "(sans objet)".
    assert selectors_draft_count(box, user) == 0


def selectors_draft_count(box: Mailbox, user: Any) -> int:
    from mailboxes import selectors

    return selectors.draft_count(box, user)


def test_a_file_attached_makes_the_draft(claire) -> None:
    user, box = claire
    client = login(user)
    fields = page_fields(client, box)
    response = client.post(
        reverse("webmail_compose_upload", args=[box.pk]),
        {"compose_key": fields["compose_key"], "files": [SimpleUploadedFile("a.txt", b"a")]},
        headers={"X-Requested-With": "XMLHttpRequest"},
    )
    draft = Draft.objects.get()
    assert response.status_code == 200 and "a.txt" in response.content.decode()
    assert "draftCreated" in response["HX-Trigger"]
    # What was typed meanwhile goes into the same draft (the page's next autosave).
    fields["subject"] = "Avec pièce"
    client.post(reverse("webmail_compose_save", args=[box.pk]), fields, headers=HX)
    assert Draft.objects.get().pk == draft.pk and draft.files.count() == 1
    assert Draft.objects.get().subject == "Avec pièce"


def test_sending_from_a_new_page_and_a_late_autosave_is_harmless(claire, julien) -> None:
    (user, box), (_, nurse) = claire, julien
    client = login(user)
    fields = page_fields(client, box)
    fields.update(to=nurse.address, subject="Envoyé", text="Bonjour")
    client.post(reverse("webmail_compose_save", args=[box.pk]), fields, headers=HX)
    draft = Draft.objects.get()
    sent = committed(client.post, reverse("webmail_compose_send", args=[box.pk]), fields)
    assert sent.status_code == 302 and not Draft.objects.exists()
    assert _count("Envoyé") == 1
    # The page's autosave fired after Send: a harmless answer, no draft brought back.
    for url in (
        reverse("webmail_compose_save", args=[box.pk]),
        reverse("webmail_draft_save", args=[draft.pk]),
    ):
        late = client.post(url, fields, headers=HX)
        assert late.status_code == 200 and late["HX-Reswap"] == "none"
    beacon = client.post(reverse("webmail_draft_save", args=[draft.pk]), fields)
    assert beacon.status_code == 200
    assert not Draft.objects.exists()
    # Send clicked again (its answer lost): never a second message.
    again = client.post(reverse("webmail_compose_send", args=[box.pk]), fields)
    assert again.status_code == 302
    assert _count("Envoyé") == 1


def test_a_late_autosave_of_someone_elses_draft_is_still_a_404(claire, julien) -> None:
    (user, box), (other_user, _other) = claire, julien
    draft = services.save_draft(
        mailbox=box, author=user, draft=None, to=[], cc=[], subject="À moi", text=""
    )
    response = login(other_user).post(
        reverse("webmail_draft_save", args=[draft.pk]), {"subject": "x"}, headers=HX
    )
    assert response.status_code == 404


def test_a_refused_send_from_a_new_page_keeps_what_was_typed_as_a_draft(claire) -> None:
    user, box = claire
    client = login(user)
    fields = page_fields(client, box)
    fields.update(to="personne@ailleurs.example", subject="Refusé", text="Gardé")
    response = client.post(reverse("webmail_compose_send", args=[box.pk]), fields)
    assert response.status_code == 400
    assert "ailleurs.example" in response.content.decode()
    assert services.open_draft(Draft.objects.get()).text == "Gardé"


def test_an_empty_page_sent_is_refused_and_stores_nothing(claire) -> None:
    user, box = claire
    client = login(user)
    response = client.post(reverse("webmail_compose_send", args=[box.pk]), page_fields(client, box))
    assert response.status_code == 400 and "Indiquez au moins un destinataire" in (
        response.content.decode()
    )
    assert not Draft.objects.exists()


def test_a_reply_page_answers_only_a_message_of_its_own_box(claire, julien) -> None:
    (user, box), (_, nurse) = claire, julien
    theirs = send(box, [nurse.address], subject="À Julien")
    # Claire names Julien's entry as the message her page answers: 404, nothing stored.
    response = login(user).post(
        reverse("webmail_compose_save", args=[box.pk]),
        {"source": entry_of(nurse, theirs).pk, "mode": "reply", "subject": "x"},
        headers=HX,
    )
    assert response.status_code == 404 and not Draft.objects.exists()
    for bad in ("abc", "1" * 40, "-1"):
        response = login(user).get(reverse("webmail_compose", args=[box.pk]), {"source": bad})
        assert response.status_code == 404


def test_the_scheduled_task_removes_empty_drafts_older_than_a_day(claire) -> None:
    user, box = claire
    empty_old = services.save_draft(
        mailbox=box, author=user, draft=None, to=[], cc=[], subject="", text="  "
    )
    written_old = services.save_draft(
        mailbox=box, author=user, draft=None, to=[], cc=[], subject="", text="Important"
    )
    with_file = services.save_draft(
        mailbox=box, author=user, draft=None, to=[], cc=[], subject="", text=""
    )
    services.add_draft_attachment(with_file, "a.txt", "text/plain", b"a", by=user)
    Draft.objects.update(updated_at=timezone.now() - timedelta(days=2))
    empty_new = services.save_draft(
        mailbox=box, author=user, draft=None, to=[], cc=[], subject="", text=""
    )
    assert purge_empty_drafts.delay().get() == 1
    left = set(Draft.objects.values_list("pk", flat=True))
    assert left == {written_old.pk, with_file.pk, empty_new.pk}
    assert empty_old.pk not in left
    # A day later the new empty one goes too.
    with time_machine.travel(timezone.now() + timedelta(days=1, hours=1)):
        assert purge_empty_drafts.delay().get() == 1
    assert not Draft.objects.filter(pk=empty_new.pk).exists()


def test_the_cleaning_is_scheduled(settings: Any) -> None:
    assert any(
        entry["task"] == "mailboxes.tasks.purge_empty_drafts"
        for entry in settings.CELERY_BEAT_SCHEDULE.values()
    )


# --------------------------------------------------------------------------- Cci


def send_page(client: Client, box: Mailbox, **typed: str) -> Any:
    fields = page_fields(client, box)
    fields.update(typed)
    return committed(client.post, reverse("webmail_compose_send", args=[box.pk]), fields)


def test_cci_recipients_receive_it_and_no_header_names_them(claire, julien) -> None:
    (user, box), (_, nurse) = claire, julien
    _, hidden = person("Sophie", "Secret")
    client = login(user)
    response = send_page(
        client, box, to=nurse.address, bcc=hidden.address, subject="Avec Cci", text="Bonjour"
    )
    assert response.status_code == 302
    message = _message("Avec Cci")
    raw = services.read_raw(message)
    # Not in any header, not anywhere in the bytes every recipient receives.
    assert b"Bcc" not in raw and hidden.address.encode() not in raw.lower()
    assert hidden.address not in message.to_addrs + message.cc_addrs
    # Each recipient has it, the hidden one too.
    assert Entry.objects.filter(mailbox=hidden, message=message).exists()
    assert Delivery.objects.filter(message=message, recipient=hidden.address).exists()
    # The visible recipient's page does not name the hidden one…
    nurse_page = login(nurse.owner).get(reverse("webmail_read", args=[entry_of(nurse, message).pk]))
    assert hidden.address not in nurse_page.content.decode()
    # …nor the hidden one's own page (only the sender's copy shows them).
    hidden_page = login(hidden.owner).get(
        reverse("webmail_read", args=[entry_of(hidden, message).pk])
    )
    assert "webmail-headers__bcc" not in hidden_page.content.decode()
    sent = client.get(reverse("webmail_read", args=[entry_of(box, message).pk])).content.decode()
    assert "webmail-headers__bcc" in sent and hidden.address in sent


def test_cci_count_in_the_40_recipient_limit(claire) -> None:
    user, box = claire
    client = login(user)
    domain = box.address.split("@")[1]
    to = ", ".join(f"dest{i}@{domain}" for i in range(20))
    bcc = ", ".join(f"cache{i}@{domain}" for i in range(21))
    response = send_page(client, box, to=to, bcc=bcc, subject="Trop", text="x")
    assert response.status_code == 400 and "40" in response.content.decode()
    assert not Message.objects.exists()
    # The draft keeps the Cci typed.
    assert len(services.open_draft(Draft.objects.get()).bcc) == 21


def test_a_draft_remembers_its_cci(claire, julien) -> None:
    (user, box), (_, nurse) = claire, julien
    client = login(user)
    fields = page_fields(client, box)
    fields.update(bcc=nurse.address, subject="Cci gardée")
    client.post(reverse("webmail_compose_save", args=[box.pk]), fields, headers=HX)
    draft = Draft.objects.get()
    page = client.get(reverse("webmail_draft", args=[draft.pk])).content.decode()
    assert f'name="bcc" value="{nurse.address}"' in page


# --------------------------------------------------------------------------- no reply


def test_no_reply_on_a_notice_from_the_no_reply_address(claire) -> None:
    user, box = claire
    notice = committed(
        notices.deliver_system_notice, box, subject="Message mis en quarantaine", text="…"
    )
    assert notice.from_addr.startswith("ne-pas-repondre@")
    entry = entry_of(box, notice)
    client = login(user)
    page = client.get(reverse("webmail_read", args=[entry.pk])).content.decode()
    assert 'value="reply"' not in page and 'value="reply_all"' not in page
    assert 'value="forward"' in page
    # Posting the reply anyway: refused plainly, nothing prepared.
    response = client.post(reverse("webmail_reply", args=[entry.pk]), {"mode": "reply"})
    assert response.status_code == 302 and response["Location"].endswith(f"/message/{entry.pk}/")
    assert (
        client.get(
            reverse("webmail_compose", args=[box.pk]), {"source": entry.pk, "mode": "reply_all"}
        ).status_code
        == 404
    )
    assert not Draft.objects.exists()


def test_no_reply_to_the_configured_notice_address(claire, julien, settings: Any) -> None:
    (user, box), (_, nurse) = claire, julien
    settings.CHARTER_NOTICE_FROM = nurse.address
    message = send(nurse, [box.address], subject="Depuis l'adresse des avis")
    page = login(user).get(reverse("webmail_read", args=[entry_of(box, message).pk]))
    assert 'value="reply"' not in page.content.decode()


def test_a_colleagues_message_keeps_repondre(claire, julien) -> None:
    (user, box), (_, nurse) = claire, julien
    message = send(nurse, [box.address], subject="Question")
    page = login(user).get(reverse("webmail_read", args=[entry_of(box, message).pk]))
    assert 'value="reply"' in page.content.decode()


# --------------------------------------------------------------------------- print, source


PDF = b"%PDF-1.4\n1 0 obj<<>>endobj\ntrailer<<>>\n%%EOF\n"


def test_the_print_page_has_headers_body_and_attachment_list(claire, julien) -> None:
    (user, box), (_, nurse) = claire, julien
    message = send(
        nurse,
        [box.address],
        subject="Compte rendu opératoire",
        text="Intervention sans complication.",
        attachments=[mime.Attachment("cr.pdf", "application/pdf", PDF)],
    )
    entry = entry_of(box, message)
    page = login(user).get(reverse("webmail_print", args=[entry.pk]))
    html = page.content.decode()
    assert page.status_code == 200
    assert "Compte rendu opératoire" in html and "Intervention sans complication." in html
    assert nurse.address in html and "cr.pdf" in html
    # A page for paper: no side menu, no toolbar.
    assert "webmail-side" not in html and "webmail-toolbar" not in html
    entry.refresh_from_db()
    assert entry.seen
    read = login(user).get(reverse("webmail_read", args=[entry.pk])).content.decode()
    assert reverse("webmail_print", args=[entry.pk]) in read
    assert reverse("webmail_headers", args=[entry.pk]) in read


def test_the_headers_page_shows_the_source_as_stored(claire, julien) -> None:
    (user, box), (_, nurse) = claire, julien
    message = send(nurse, [box.address], subject="Source", text="<b>pas du HTML</b>")
    entry = entry_of(box, message)
    client = login(user)
    page = client.get(reverse("webmail_headers", args=[entry.pk]))
    html = page.content.decode()
    assert page.status_code == 200
    assert "Message-ID:" in html and message.message_id.strip("<>") in html
    # The body is shown as text, escaped: nothing of the message is interpreted.
    assert "&lt;b&gt;pas du HTML&lt;/b&gt;" in html and "<b>pas du HTML</b>" not in html
    text = client.get(reverse("webmail_headers", args=[entry.pk]), {"format": "texte"})
    assert text["Content-Type"].startswith("text/plain")
    assert "sandbox" in text["Content-Security-Policy"]
    assert text.content == services.read_raw(message)


def test_another_boxs_message_source_is_a_404(claire, julien) -> None:
    (user, box), (_, nurse) = claire, julien
    message = send(box, [nurse.address], subject="Pour Julien seulement")
    theirs = entry_of(nurse, message)
    client = login(user)
    for name in ("webmail_headers", "webmail_print"):
        assert client.get(reverse(name, args=[theirs.pk])).status_code == 404
        assert client.get(reverse(name, args=[theirs.pk]), {"format": "texte"}).status_code == 404
    assert client.get(reverse("webmail_headers", args=[10**12])).status_code == 404


def test_viewing_the_source_in_a_shared_box_is_journaled(secretariat, claire, julien) -> None:
    box = secretariat
    (_, sender_box), (nurse, _nurse_box) = claire, julien
    message = send(sender_box, [box.address], subject="Dossier partagé")
    entry = entry_of(box, message)
    from mailboxes.models import AccessEvent

    assert login(nurse).get(reverse("webmail_headers", args=[entry.pk])).status_code == 200
    event = AccessEvent.objects.get(mailbox=box, action=AccessEvent.Action.OPEN)
    assert (event.actor, event.message) == (nurse, message)


# --------------------------------------------------------------------------- rich text


HOSTILE_HTML = (
    "<p>Bonjour <b>confrère</b>, <i>voici</i> :</p><ul><li>point un</li><li>point deux</li></ul>"
    '<p><a href="https://exemple.fr/doc" onclick="steal()">le lien</a></p>'
    '<script>alert(1)</script><img src="https://traceur.example/x.png">'
    '<a href="javascript:alert(2)">piège</a><style>body{display:none}</style>'
)


def test_a_rich_text_message_is_sanitised_and_sent_as_text_and_html(claire, julien) -> None:
    (user, box), (_, nurse) = claire, julien
    client = login(user)
    fields = page_fields(client, box)
    fields.update(to=nurse.address, subject="Mis en forme", html=HOSTILE_HTML, format="html")
    client.post(reverse("webmail_compose_save", args=[box.pk]), fields, headers=HX)
    stored = services.open_draft(Draft.objects.get()).html or ""
    # Sanitised before it is stored: the draft never holds the script.
    assert "<b>confrère</b>" in stored and "<li>point un</li>" in stored
    for bad in ("script", "onclick", "javascript:", "traceur.example", "<style"):
        assert bad not in stored, bad
    response = committed(client.post, reverse("webmail_compose_send", args=[box.pk]), fields)
    assert response.status_code == 302
    message = _message("Mis en forme")
    raw = services.read_raw(message)
    assert b"multipart/alternative" in raw
    parsed = mime.parse_message(raw)
    assert parsed.html is not None and "<b>confrère</b>" in parsed.html
    for bad in ("script", "onclick", "javascript:", "traceur.example", "alert"):
        assert bad not in parsed.html, bad
    # The text part is made from the sanitised HTML, never taken from the page.
    assert parsed.text is not None
    assert "Bonjour confrère, voici :\n- point un\n- point deux\nle lien" in parsed.text
    assert "alert" not in parsed.text
    # The recipient reads it formatted.
    page = login(nurse.owner).get(reverse("webmail_read", args=[entry_of(nurse, message).pk]))
    assert "<b>confrère</b>" in page.content.decode()


def test_plain_text_stays_the_default(claire, julien) -> None:
    (user, box), (_, nurse) = claire, julien
    client = login(user)
    fields = page_fields(client, box)
    page = client.get(reverse("webmail_compose", args=[box.pk])).content.decode()
    assert 'id="format-text" name="format" value="text" checked' in page
    # HTML posted without choosing the format is ignored: a plain-text message.
    fields.update(to=nurse.address, subject="Simple", text="Texte seul", html="<b>x</b>")
    committed(client.post, reverse("webmail_compose_send", args=[box.pk]), fields)
    raw = services.read_raw(_message("Simple"))
    assert b"multipart/alternative" not in raw and b"text/html" not in raw


def test_an_empty_or_huge_editor_is_no_html(claire) -> None:
    assert services.clean_compose_html("<p><br></p>") is None
    assert services.clean_compose_html("<script>x</script>") is None
    assert services.clean_compose_html("<p>" + "a" * 2_100_000 + "</p>") is None


# --------------------------------------------------------------------------- invitations


def invitation(organizer: str, attendee: str, *, start: str = "20261210T140000Z") -> bytes:
    return (
        "BEGIN:VCALENDAR\r\nPRODID:-//Hôpital//FR\r\nVERSION:2.0\r\nMETHOD:REQUEST\r\n"
        "BEGIN:VEVENT\r\nUID:rcp-42@hopital\r\nSEQUENCE:1\r\nDTSTAMP:20261201T100000Z\r\n"
        f"DTSTART:{start}\r\nDTEND:20261210T150000Z\r\nSUMMARY:RCP cardiologie\r\n"
        "LOCATION:Salle 3\\, bâtiment B\r\n"
        f"ORGANIZER;CN=Dr Martin:mailto:{organizer}\r\n"
        f"ATTENDEE;PARTSTAT=NEEDS-ACTION;RSVP=TRUE:mailto:{attendee}\r\n"
        "END:VEVENT\r\nEND:VCALENDAR\r\n"
    ).encode()


def send_invitation(sender: Mailbox, to: Mailbox, ics: bytes, subject: str = "Invitation") -> Entry:
    message = send(
        sender,
        [to.address],
        subject=subject,
        text="Vous êtes invité.",
        attachments=[mime.Attachment("invitation.ics", "text/calendar", ics)],
    )
    return entry_of(to, message)


def test_an_invitation_is_a_card_and_accepting_sends_an_itip_reply(claire, julien) -> None:
    (organizer_user, organizer), (user, box) = claire, julien
    entry = send_invitation(organizer, box, invitation(organizer.address, box.address))
    client = login(user)
    page = client.get(reverse("webmail_read", args=[entry.pk])).content.decode()
    assert "Invitation : RCP cardiologie" in page
    assert "Salle 3, bâtiment B" in page and "Dr Martin" in page
    assert 'value="ACCEPTED"' in page and 'value="TENTATIVE"' in page and 'value="DECLINED"' in page
    response = committed(
        client.post, reverse("webmail_invitation_answer", args=[entry.pk]), {"answer": "ACCEPTED"}
    )
    assert response.status_code == 302
    reply = Message.objects.get(sender_mailbox=box)
    assert reply.to_addrs == [organizer.address] and reply.subject == "Accepté : RCP cardiologie"
    assert reply.thread_key == entry.message.thread_key
    parsed = mime.parse_message(services.read_raw(reply))
    (part,) = parsed.attachments
    ics = mime.get_part(services.read_raw(reply), part.index).data.decode()
    assert "METHOD:REPLY" in ics and "UID:rcp-42@hopital" in ics
    assert "PARTSTAT=ACCEPTED" in ics and box.address in ics.replace("\r\n ", "")
    # The organiser sees a card "X a accepté", and nothing else changes.
    organizer_page = login(organizer_user).get(
        reverse("webmail_read", args=[entry_of(organizer, reply).pk])
    )
    html = organizer_page.content.decode()
    assert "a accepté « RCP cardiologie »" in html and 'value="ACCEPTED"' not in html


def test_the_reply_goes_to_the_sender_not_to_an_organiser_the_file_names(claire, julien) -> None:
    (_, sender), (user, box) = claire, julien
    ics = invitation("victime@ailleurs.example", box.address)
    entry = send_invitation(sender, box, ics)
    committed(
        login(user).post,
        reverse("webmail_invitation_answer", args=[entry.pk]),
        {"answer": "DECLINED"},
    )
    reply = Message.objects.get(sender_mailbox=box)
    assert reply.to_addrs == [sender.address]


def test_a_read_only_member_cannot_answer(secretariat, claire, lea) -> None:
    (_, sender), reader = claire, lea.user
    entry = send_invitation(sender, secretariat, invitation(sender.address, secretariat.address))
    page = login(reader).get(reverse("webmail_read", args=[entry.pk])).content.decode()
    assert "Invitation : RCP cardiologie" in page and 'value="ACCEPTED"' not in page
    response = login(reader).post(
        reverse("webmail_invitation_answer", args=[entry.pk]), {"answer": "ACCEPTED"}
    )
    assert response.status_code in (403, 404)
    assert not Message.objects.filter(sender_mailbox=secretariat).exists()


HOSTILE_ICS = {
    "huge": invitation("a@b.fr", "c@d.fr").replace(
        b"SUMMARY:RCP", b"SUMMARY:" + b"x" * 300_000 + b" RCP"
    ),
    "deep": b"BEGIN:VCALENDAR\r\n" * 50 + b"END:VCALENDAR\r\n" * 50,
    "unbalanced": b"BEGIN:VCALENDAR\r\nBEGIN:VEVENT\r\nEND:VCALENDAR\r\n",
    "bad dates": invitation("a@b.fr", "c@d.fr", start="99999999T999999Z"),
    "year 9999": invitation("a@b.fr", "c@d.fr", start="99990101T000000Z"),
    "not a calendar": b"\x00\xff" * 1000,
    "many components": b"BEGIN:VCALENDAR\r\n"
    + b"BEGIN:VEVENT\r\nUID:x\r\nEND:VEVENT\r\n" * 500
    + b"END:VCALENDAR\r\n",
}


@pytest.mark.parametrize("name", sorted(HOSTILE_ICS))
def test_a_hostile_calendar_is_a_plain_attachment_never_an_error(claire, julien, name) -> None:
    (_, sender), (user, box) = claire, julien
    entry = send_invitation(sender, box, HOSTILE_ICS[name], subject="Piège")
    client = login(user)
    page = client.get(reverse("webmail_read", args=[entry.pk]))
    html = page.content.decode()
    assert page.status_code == 200
    assert "Invitation :" not in html and "invitation.ics" in html
    answer = client.post(
        reverse("webmail_invitation_answer", args=[entry.pk]), {"answer": "ACCEPTED"}, follow=True
    )
    assert (
        answer.status_code == 200 and "ne contient pas d&#x27;invitation" in answer.content.decode()
    )
    assert not Message.objects.filter(sender_mailbox=box).exists()


def test_an_unknown_answer_is_refused_plainly(claire, julien) -> None:
    (_, sender), (user, box) = claire, julien
    entry = send_invitation(sender, box, invitation(sender.address, box.address))
    response = login(user).post(
        reverse("webmail_invitation_answer", args=[entry.pk]),
        {"answer": "<script>"},
        follow=True,
    )
    assert response.status_code == 200 and "Réponse inconnue" in response.content.decode()
    assert not Message.objects.filter(sender_mailbox=box).exists()


def test_the_text_alternative_breaks_lines_where_the_editor_made_blocks() -> None:
    from mailboxes.views.compose import html_to_text

    # What Chromium's editor writes: a text, then a <div> holding a list.
    html = "Bonjour, <b>à lire</b><div><ul><li>un</li><li>deux &amp; trois</li></ul></div>"
    assert html_to_text(html) == "Bonjour, à lire\n- un\n- deux & trois\n"


def _message(subject: str) -> Message:
    """The message with this subject (subjects are sealed at rest: matched in Python)."""
    return next(m for m in Message.objects.all() if m.subject == subject)


def _count(subject: str) -> int:
    return sum(m.subject == subject for m in Message.objects.all())
