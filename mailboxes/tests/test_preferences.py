"""A box's preferences through the path a user takes: signature, out-of-office reply, rules."""

from __future__ import annotations

from datetime import timedelta
from email.message import EmailMessage

import pytest
from django.urls import reverse
from django.utils import timezone

from mailboxes import services
from mailboxes.models import (
    AutoReply,
    AutoReplySent,
    Contact,
    Draft,
    Entry,
    Folder,
    Mailbox,
    Message,
    Rule,
    Signature,
)
from mailboxes.services.inbound import receive_message
from mssante.lib import mime
from tests import factories
from tests.personas import Lab, Person, committed, login, send

pytestmark = pytest.mark.django_db


def _set_out_of_office(person: Person, **overrides: str) -> None:
    today = timezone.localdate()
    data = {
        "enabled": "on",
        "start": (today - timedelta(days=1)).isoformat(),
        "end": (today + timedelta(days=6)).isoformat(),
        "text": "Je suis absente jusqu'au 12. En cas d'urgence : le secrétariat.",
        "interval_days": "4",
    }
    data.update(overrides)
    response = login(person.user).post(reverse("webmail_auto_reply", args=[person.box.pk]), data)
    assert response.status_code == 302, response.content


def _auto_replies(to: Mailbox) -> list[Message]:
    return list(
        Message.objects.filter(
            entries__mailbox=to, entries__folder__role=Folder.Role.INBOX, automatic=True
        ).exclude(null_return_path=True)
    )


def _inbox(box: Mailbox, message: Message) -> Entry:
    return Entry.objects.get(mailbox=box, message=message)


# --------------------------------------------------------------------------- signature


def test_a_signature_set_in_preferences_ends_a_new_message_and_tops_a_reply(
    claire: Person, julien: Person
) -> None:
    client = login(claire.user)
    response = client.post(
        reverse("webmail_signature", args=[claire.box.pk]),
        {"text": "Dr Claire Martin\r\nCardiologie — poste 4321"},
    )
    assert response.status_code == 302
    assert "Dr Claire Martin" in client.get(response.url).content.decode()

    # The compose page shows it (stores nothing until one types: no draft yet).
    page = client.get(reverse("webmail_compose", args=[claire.box.pk]))
    text = page.context["form"]["text"].value()
    assert text.endswith("-- \nDr Claire Martin\nCardiologie — poste 4321\n")
    assert not Draft.objects.filter(mailbox=claire.box).exists()

    message = send(julien.box, [claire.box.address], text="Pouvez-vous voir Mme B. ?")
    entry = _inbox(claire.box, message)
    page = client.post(reverse("webmail_reply", args=[entry.pk]), {"mode": "reply"}, follow=True)
    reply = page.context["form"]["text"].value()
    assert reply.index("Dr Claire Martin") < reply.index("> Pouvez-vous voir Mme B. ?")


def test_a_huge_signature_is_refused_and_nothing_is_written(claire: Person) -> None:
    response = login(claire.user).post(
        reverse("webmail_signature", args=[claire.box.pk]), {"text": "x" * 20_000}
    )
    assert response.status_code == 400
    assert "2000" in response.content.decode()
    assert not Signature.objects.exists()


def test_a_reader_of_a_shared_box_cannot_set_a_signature_there(
    secretariat: Mailbox, lea: Person
) -> None:
    response = login(lea.user).post(
        reverse("webmail_signature", args=[secretariat.pk]), {"text": "Léa"}
    )
    assert response.status_code == 403
    assert not Signature.objects.exists()


# --------------------------------------------------------------------------- out of office


def test_two_messages_of_one_sender_get_one_auto_reply(claire: Person, julien: Person) -> None:
    _set_out_of_office(claire)
    first = send(julien.box, [claire.box.address], subject="Patient B.")
    send(julien.box, [claire.box.address], subject="Patient B., suite")

    replies = _auto_replies(julien.box)
    assert len(replies) == 1
    reply = replies[0]
    assert reply.subject == "Réponse automatique : Patient B."
    assert reply.sender_mailbox_id == claire.box.pk
    parsed = mime.parse_message(services.read_raw(reply))
    assert parsed.in_reply_to == first.message_id
    assert any(first.message_id.strip("<>") in ref for ref in parsed.references)
    assert "Auto-Submitted: auto-replied" in services.read_raw(reply).decode()
    assert "le secrétariat" in (parsed.text or "")
    # Scanned and journaled like any message from the box; the original is not "answered".
    assert reply.scan_status != Message.ScanStatus.PENDING
    assert not _inbox(claire.box, first).answered
    assert AutoReplySent.objects.get().correspondent == julien.box.address


def test_a_new_absence_answers_the_same_correspondent_again(claire: Person, julien: Person) -> None:
    _set_out_of_office(claire)
    send(julien.box, [claire.box.address])
    today = timezone.localdate()
    _set_out_of_office(claire, end=(today + timedelta(days=9)).isoformat())
    send(julien.box, [claire.box.address])
    assert len(_auto_replies(julien.box)) == 2


@pytest.mark.parametrize(
    "headers",
    [
        {"Auto-Submitted": "auto-generated"},
        {"Auto-Submitted": "auto-replied"},
        {"List-Id": "<cardio.liste.test>"},
        {"Precedence": "bulk"},
    ],
)
def test_automatic_mail_is_never_answered(
    claire: Person, julien: Person, headers: dict[str, str]
) -> None:
    _set_out_of_office(claire)
    message = send(julien.box, [claire.box.address], extra_headers=headers)
    assert message.automatic
    assert _inbox(claire.box, message)
    assert _auto_replies(julien.box) == []


def test_two_boxes_away_do_not_answer_each_other_forever(claire: Person, julien: Person) -> None:
    _set_out_of_office(claire)
    _set_out_of_office(julien)
    send(julien.box, [claire.box.address])
    # Claire's reply reached Julien, whose own reply does not answer an automatic one.
    assert len(_auto_replies(julien.box)) == 1
    assert _auto_replies(claire.box) == []


def test_a_patient_is_not_answered_when_the_reply_is_for_professionals_only(
    claire: Person, lucie: Person
) -> None:
    _set_out_of_office(claire, professionals_only="on")
    send(claire.box, [lucie.box.address])
    thread = Entry.objects.get(mailbox=lucie.box).message
    send(lucie.box, [claire.box.address], in_reply_to=thread, author=lucie.user)
    assert _auto_replies(lucie.box) == []


def test_an_absence_ending_before_it_starts_is_refused(claire: Person) -> None:
    today = timezone.localdate()
    response = login(claire.user).post(
        reverse("webmail_auto_reply", args=[claire.box.pk]),
        {
            "enabled": "on",
            "start": today.isoformat(),
            "end": (today - timedelta(days=3)).isoformat(),
            "text": "Absente.",
            "interval_days": "4",
        },
    )
    assert response.status_code == 400
    assert "La date de fin doit suivre la date de début." in response.content.decode()
    assert not AutoReply.objects.exists()


@pytest.mark.parametrize(
    "field,value",
    [("start", "31/02/2026"), ("end", "pas une date"), ("interval_days", "100000"), ("text", "")],
)
def test_malformed_out_of_office_input_is_refused_clearly(
    claire: Person, field: str, value: str
) -> None:
    today = timezone.localdate()
    data = {
        "enabled": "on",
        "start": today.isoformat(),
        "end": today.isoformat(),
        "text": "Absente.",
        "interval_days": "4",
    }
    data[field] = value
    response = login(claire.user).post(reverse("webmail_auto_reply", args=[claire.box.pk]), data)
    assert response.status_code == 400
    assert not AutoReply.objects.exists()


def test_a_delivery_batch_without_rules_or_replies_asks_nothing_more(
    claire: Person, julien: Person, django_assert_max_num_queries
) -> None:
    # Another box's rule does not make Claire's deliveries look anything up.
    services.add_rule(julien.box, by=julien.user, condition="patient", value="", action="read")
    message = services.submit_message(
        mailbox=julien.box,
        author=julien.user,
        to=[claire.box.address],
        cc=[],
        subject="A",
        text="B",
    )
    with django_assert_max_num_queries(40) as captured:
        services.process([message.pk])
    # The claim query says which boxes have any (EXISTS); nothing reads the rules themselves.
    assert not any(
        q["sql"].startswith(('SELECT "mailboxes_rule"', 'SELECT "mailboxes_autoreply"'))
        for q in captured
    )
    assert Entry.objects.get(mailbox=claire.box, message=message)


# --------------------------------------------------------------------------- rules


def test_a_rule_files_lab_results_in_a_folder_marked_read(claire: Person, laboratoire: Lab) -> None:
    client = login(claire.user)
    folder = services.create_folder(claire.box, "Résultats", by=claire.user)
    response = client.post(
        reverse("webmail_rule_add", args=[claire.box.pk]),
        {"condition": "app", "value": "", "action": "move", "folder": str(folder.pk)},
    )
    assert response.status_code == 302, response.content
    client.post(
        reverse("webmail_rule_add", args=[claire.box.pk]),
        {"condition": "sender", "value": laboratoire.box.address, "action": "read"},
    )
    page = client.get(reverse("webmail_preferences") + f"?boite={claire.box.pk}")
    assert "Résultats" in page.content.decode()

    result = send(
        laboratoire.box,
        [claire.box.address],
        author=laboratoire.responsible,
        subject="Résultat NFS",
    )
    entry = _inbox(claire.box, result)
    assert entry.folder_id == folder.pk
    assert entry.seen
    # Every message of the applicative box is filed, whatever its subject.
    other = send(laboratoire.box, [claire.box.address], author=laboratoire.responsible)
    assert _inbox(claire.box, other).folder_id == folder.pk


def test_a_subject_rule_matches_in_python_and_flags(claire: Person, julien: Person) -> None:
    services.add_rule(
        claire.box, by=claire.user, condition="subject", value="urgent", action="flag"
    )
    flagged = send(julien.box, [claire.box.address], subject="Avis URGENT")
    plain = send(julien.box, [claire.box.address], subject="Avis")
    assert _inbox(claire.box, flagged).flagged
    assert not _inbox(claire.box, plain).flagged


def test_a_rule_on_a_folder_of_another_box_is_refused(claire: Person, julien: Person) -> None:
    theirs = services.create_folder(julien.box, "Perso", by=julien.user)
    response = login(claire.user).post(
        reverse("webmail_rule_add", args=[claire.box.pk]),
        {"condition": "patient", "action": "move", "folder": str(theirs.pk)},
    )
    assert response.status_code == 400
    with pytest.raises(services.PreferencesError):
        services.add_rule(
            claire.box,
            by=claire.user,
            condition="patient",
            value="",
            action="move",
            folder_id=theirs.pk,
        )
    assert not Rule.objects.exists()


@pytest.mark.parametrize("value", ["", "a" * 5000, "pas une adresse", "x@@y"])
def test_a_malformed_sender_rule_is_refused(claire: Person, value: str) -> None:
    response = login(claire.user).post(
        reverse("webmail_rule_add", args=[claire.box.pk]),
        {"condition": "sender", "value": value, "action": "read"},
    )
    assert response.status_code == 400
    assert not Rule.objects.exists()


def test_rules_are_reordered_deleted_and_applied_to_the_inbox(
    claire: Person, julien: Person
) -> None:
    client = login(claire.user)
    archive = Folder.objects.get(mailbox=claire.box, role=Folder.Role.ARCHIVE)
    old = send(julien.box, [claire.box.address], subject="Ancien bilan")
    first = services.add_rule(
        claire.box, by=claire.user, condition="subject", value="bilan", action="flag"
    )
    second = services.add_rule(
        claire.box,
        by=claire.user,
        condition="subject",
        value="bilan",
        action="move",
        folder_id=archive.pk,
    )
    client.post(reverse("webmail_rule_move", args=[claire.box.pk, second.pk]), {"direction": "up"})
    assert list(Rule.objects.values_list("pk", flat=True)) == [second.pk, first.pk]
    client.post(reverse("webmail_rule_delete", args=[claire.box.pk, first.pk]))
    assert list(Rule.objects.values_list("pk", flat=True)) == [second.pk]

    response = client.post(reverse("webmail_rules_apply", args=[claire.box.pk]))
    assert response.status_code == 302
    entry = _inbox(claire.box, old)
    assert entry.folder_id == archive.pk
    assert not entry.flagged


def test_another_users_rule_is_not_found(claire: Person, julien: Person) -> None:
    rule = services.add_rule(
        julien.box, by=julien.user, condition="patient", value="", action="read"
    )
    client = login(claire.user)
    for url in (
        reverse("webmail_rule_delete", args=[claire.box.pk, rule.pk]),
        reverse("webmail_rule_delete", args=[julien.box.pk, rule.pk]),
    ):
        assert client.post(url).status_code == 404
    assert Rule.objects.filter(pk=rule.pk).exists()


def test_is_automatic_follows_rfc_3834() -> None:
    assert not mime.is_automatic(None)
    assert not mime.is_automatic("no")
    assert not mime.is_automatic("No; comment")
    assert mime.is_automatic("auto-generated")
    assert mime.is_automatic("auto-notified; owner-email=x@y")
    assert mime.is_automatic(None, "<liste.example>")
    assert mime.is_automatic(None, None, "junk")
    assert not mime.is_automatic(None, None, "first-class")


# --------------------------------------------------------------------------- new-mail alert


def test_the_new_mail_alert_is_content_free_and_sent_at_most_once_an_hour(
    claire: Person, julien: Person, mailoutbox, time_machine
) -> None:
    time_machine.move_to(timezone.now(), tick=False)
    claire.user.email = "claire.perso@example.org"
    claire.user.save(update_fields=["email"])
    response = login(claire.user).post(reverse("webmail_mail_alert"), {"alert": "1"})
    assert response.status_code == 302
    time_machine.shift(timedelta(seconds=1))

    send(julien.box, [claire.box.address], subject="Mme B., bilan", text="Créatinine 180")
    time_machine.shift(timedelta(minutes=5))
    send(julien.box, [claire.box.address], subject="Mme B., suite")
    assert len(mailoutbox) == 1
    alert = mailoutbox[0]
    assert alert.to == ["claire.perso@example.org"]
    assert "Vous avez 1 nouveau message sur votre messagerie MSSanté" in alert.body
    for secret in ("Mme B.", "bilan", "Créatinine", julien.box.address, "Dupont"):
        assert secret not in alert.body and secret not in alert.subject

    time_machine.shift(timedelta(minutes=61))
    send(julien.box, [claire.box.address], subject="Mme B., encore")
    assert len(mailoutbox) == 2
    # The second counts what came since the first: the two messages after it.
    assert "Vous avez 2 nouveaux messages" in mailoutbox[1].body


def test_the_alert_needs_a_personal_address_and_is_never_sent_when_off(
    claire: Person, julien: Person, mailoutbox
) -> None:
    claire.user.email = ""
    claire.user.save(update_fields=["email"])
    client = login(claire.user)
    client.post(reverse("webmail_mail_alert"), {"alert": "1"})
    assert "adresse personnelle" in client.get(reverse("webmail_preferences")).content.decode()
    send(julien.box, [claire.box.address])
    assert mailoutbox == []


# --------------------------------------------------------------------------- contacts


def test_a_recent_correspondent_is_starred_and_written_to(claire: Person, julien: Person) -> None:
    client = login(claire.user)
    services.set_signature(claire.user, claire.box, "Dr Martin")
    send(claire.box, [julien.box.address])
    page = client.get(reverse("webmail_contacts")).content.decode()
    assert julien.box.address in page
    client.post(reverse("webmail_contact_star"), {"address": julien.box.address.upper()})
    assert list(Contact.objects.values_list("address", flat=True)) == [julien.box.address]
    page = client.get(reverse("webmail_contacts")).content.decode()
    assert "Retirer des favoris" in page

    response = client.post(reverse("webmail_write_to"), {"to": julien.box.address})
    assert response.status_code == 302
    draft = Draft.objects.filter(mailbox=claire.box).latest("pk")
    content = services.open_draft(draft)
    assert content.to == [julien.box.address]
    assert content.text.endswith("-- \nDr Martin\n")

    client.post(reverse("webmail_contact_unstar"), {"address": julien.box.address})
    assert not Contact.objects.exists()


@pytest.mark.parametrize("address", ["", "x" * 400 + "@a.fr", "a@b", "a,b@c.fr", "<a@b.fr>"])
def test_a_malformed_address_is_refused_for_favourites_and_writing(
    claire: Person, address: str
) -> None:
    client = login(claire.user)
    assert client.post(reverse("webmail_contact_star"), {"address": address}).status_code == 302
    assert client.post(reverse("webmail_write_to"), {"to": address}).status_code == 302
    assert not Contact.objects.exists()
    assert not Draft.objects.exists()


def test_writing_from_a_box_one_may_only_read_is_refused(
    secretariat: Mailbox, lea: Person, claire: Person
) -> None:
    response = login(lea.user).post(
        reverse("webmail_write_to"), {"to": claire.box.address, "mailbox": str(secretariat.pk)}
    )
    assert response.status_code == 403
    assert not Draft.objects.filter(mailbox=secretariat).exists()


def test_a_patient_is_found_by_name_only_among_those_exchanged_with(
    claire: Person, paul: Person, lucie: Person
) -> None:
    send(claire.box, [lucie.box.address])
    identity = lucie.user.patient
    client = login(claire.user)
    suggestions = client.get(
        reverse("webmail_recipient_suggestions"), {"q": identity.birth_name[:4]}
    ).json()
    assert any(s["address"] == lucie.box.address and s["type"] == "patient" for s in suggestions)
    page = client.get(reverse("webmail_contacts"), {"patient": identity.birth_name}).content
    assert lucie.box.address.encode() in page

    # Paul never wrote to her: her name finds nothing for him.
    other = login(paul.user)
    suggestions = other.get(
        reverse("webmail_recipient_suggestions"), {"q": identity.birth_name}
    ).json()
    assert all(s["address"] != lucie.box.address for s in suggestions)
    assert (
        lucie.box.address.encode()
        not in other.get(reverse("webmail_contacts"), {"patient": identity.birth_name}).content
    )


def test_the_directory_offers_write_to(claire: Person, julien: Person) -> None:
    client = login(claire.user)
    response = client.post(reverse("directory:search"), {"q": "Dupont"}, follow=True)
    page = response.content.decode()
    assert reverse("webmail_write_to") in page


def test_mail_from_another_operator_keeps_only_an_automatic_flag_and_is_not_answered(
    claire: Person,
) -> None:
    _set_out_of_office(claire)
    msg = EmailMessage()
    msg["From"], msg["To"], msg["Subject"] = "robot@clinique.peer.test", claire.box.address, "Avis"
    msg["Auto-Submitted"] = "auto-generated"
    msg.set_content("Votre patient est sorti.")
    raw = msg.as_bytes(policy=msg.policy.clone(linesep="\r\n"))
    message = committed(receive_message, raw, "robot@clinique.peer.test", [claire.box.address])
    assert message.automatic
    assert Entry.objects.filter(mailbox=claire.box, message=message).exists()
    assert not AutoReplySent.objects.exists()
    assert not [m for m in Message.objects.all() if m.subject.startswith("Réponse automatique")]


def test_write_to_without_a_box_to_write_from_says_so(secretariat: Mailbox, anne) -> None:
    # Anne has no box of her own and may only read the secretariat.
    factories.member(secretariat, anne, "read")
    response = login(anne).post(reverse("webmail_write_to"), {"to": "a@b.fr"}, follow=True)
    assert response.status_code == 200
    assert "Aucune de vos boîtes ne vous permet" in response.content.decode()
    assert not Draft.objects.exists()


def test_an_out_of_office_reply_outside_its_dates_answers_nobody(
    claire: Person, julien: Person
) -> None:
    today = timezone.localdate()
    _set_out_of_office(
        claire,
        start=(today + timedelta(days=2)).isoformat(),
        end=(today + timedelta(days=5)).isoformat(),
    )
    send(julien.box, [claire.box.address])
    assert _auto_replies(julien.box) == []


def test_the_rules_of_a_box_are_bounded(claire: Person) -> None:
    for n in range(50):
        services.add_rule(
            claire.box, by=claire.user, condition="subject", value=f"mot{n}", action="read"
        )
    response = login(claire.user).post(
        reverse("webmail_rule_add", args=[claire.box.pk]),
        {"condition": "subject", "value": "encore", "action": "read"},
    )
    assert response.status_code == 400
    assert "Au plus 50 règles par boîte." in response.content.decode()
    assert Rule.objects.count() == 50
