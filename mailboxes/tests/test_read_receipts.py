"""Read receipts: asking for one in compose, the reader's preference, the sender's timeline."""

from __future__ import annotations

import json
import re
from html import unescape

import pytest
from django.test import Client
from django.urls import reverse

from mailboxes import services
from mailboxes.models import Delivery, Draft, Entry, Folder, Mailbox, Message, ReceiptPreference
from mailboxes.transport.timeline import timeline
from mssante.lib import mime
from tests import factories
from tests.personas import Lab, committed, login, start_draft

pytestmark = pytest.mark.django_db


def compose_and_send(client: Client, box: Mailbox, to: str, *, receipt: bool) -> Message:
    draft = start_draft(client, box)
    fields = {"to": to, "cc": "", "subject": "Compte rendu", "text": "Bonjour."}
    if receipt:
        fields["read_receipt"] = "1"
    # Autosave remembers the choice; the send posts the form again.
    response = client.post(reverse("webmail_draft_save", args=[draft.pk]), fields)
    assert response.status_code in (200, 204)
    assert services.open_draft(Draft.objects.get(pk=draft.pk)).read_receipt is receipt
    response = committed(client.post, reverse("webmail_draft_send", args=[draft.pk]), fields)
    assert response.status_code == 302, response.content
    return Message.objects.filter(sender_mailbox=box).latest("pk")


def text_of(content: bytes | str) -> str:
    """The page's text, tags removed and spaces collapsed."""
    html = content.decode() if isinstance(content, bytes) else content
    return re.sub(r"\s+", " ", unescape(re.sub(r"<[^>]+>", " ", html)))


def inbox_entry(box: Mailbox, message: Message) -> Entry:
    return Entry.objects.get(mailbox=box, message=message, folder__role=Folder.Role.INBOX)


def receipt_state(message: Message) -> str:
    """Where the read receipt of ``message``'s one delivery stands (none, asked, sent…)."""
    return Delivery.objects.get(message=message).receipt


def receipts_to(box: Mailbox) -> list[Message]:
    return list(
        Message.objects.filter(
            entries__mailbox=box, entries__folder__role=Folder.Role.INBOX, origin="system"
        )
    )


def test_compose_with_the_checkbox_sends_disposition_notification_to(claire, julien) -> None:
    (user, box), (_, nurse) = claire, julien
    message = compose_and_send(login(user), box, nurse.address, receipt=True)
    parsed = mime.parse_message(services.read_raw(message))
    assert parsed.disposition_notification_to == box.address


def test_the_draft_remembers_the_checkbox(claire, julien) -> None:
    (user, box), (_, nurse) = claire, julien
    client = login(user)
    draft = start_draft(client, box)
    client.post(
        reverse("webmail_draft_save", args=[draft.pk]),
        {"to": nurse.address, "subject": "S", "text": "T", "read_receipt": "1"},
    )
    html = client.get(reverse("webmail_draft", args=[draft.pk])).content.decode()
    assert 'id="read-receipt" name="read_receipt" value="1" checked' in html


def test_without_the_checkbox_no_receipt_is_asked(claire, julien) -> None:
    (user, box), (_, nurse) = claire, julien
    message = compose_and_send(login(user), box, nurse.address, receipt=False)
    assert mime.parse_message(services.read_raw(message)).disposition_notification_to is None


def test_automatic_receipt_and_the_timeline_says_delivered_then_read(claire, julien) -> None:
    (user, box), (nurse_user, nurse) = claire, julien
    message = compose_and_send(login(user), box, nurse.address, receipt=True)
    sender_entry = Entry.objects.get(mailbox=box, message=message)
    html = text_of(login(user).get(reverse("webmail_read", args=[sender_entry.pk])).content)
    assert "Distribué le" in html and "Lu le" not in html
    assert [s.state for s in timeline(message)[0].steps] == ["submitted", "scanned", "delivered"]

    committed(login(nurse_user).get, reverse("webmail_read", args=[inbox_entry(nurse, message).pk]))
    assert [s.state for s in timeline(message)[0].steps][-2:] == ["delivered", "read"]
    # The sending box holds the original: its timeline says "Lu", no receipt lands unread.
    assert receipts_to(box) == []
    assert Delivery.objects.get(message=message).receipt == Delivery.Receipt.SENT
    assert not Entry.objects.filter(mailbox=box, seen=False).exists()
    html = login(user).get(reverse("webmail_read", args=[sender_entry.pk])).content.decode()
    html = text_of(html)
    assert "Déposé le" in html and "Distribué le" in html and "Lu le" in html
    assert html.index("Distribué le") < html.index("Lu le")


def test_on_request_the_receipt_waits_for_the_reader(claire, julien) -> None:
    (user, box), (nurse_user, nurse) = claire, julien
    services.set_receipt_mode(nurse_user, ReceiptPreference.Mode.ON_REQUEST)
    message = compose_and_send(login(user), box, nurse.address, receipt=True)
    reader = login(nurse_user)
    entry = inbox_entry(nurse, message)
    html = text_of(committed(reader.get, reverse("webmail_read", args=[entry.pk])).content)
    assert "L'expéditeur demande un accusé de lecture" in html
    assert "Envoyer l'accusé de lecture" in html and "Ne pas envoyer" in html
    assert receipt_state(message) == Delivery.Receipt.ASKED
    # The sender does not learn of the opening before the reader decides.
    assert "read" not in [s.state for s in timeline(message)[0].steps]

    response = committed(
        reader.post, reverse("webmail_receipt", args=[entry.pk]), {"decision": "send"}
    )
    assert response.status_code == 302
    assert receipts_to(box) == []  # the timeline is the receipt (see above)
    assert Delivery.objects.get(message=message).receipt == Delivery.Receipt.SENT
    assert timeline(message)[0].current.state == "read"
    html = committed(reader.get, reverse("webmail_read", args=[entry.pk])).content.decode()
    assert "demande un accusé de lecture" not in html


def test_on_request_the_reader_may_decline(claire, julien) -> None:
    (user, box), (nurse_user, nurse) = claire, julien
    services.set_receipt_mode(nurse_user, ReceiptPreference.Mode.ON_REQUEST)
    message = compose_and_send(login(user), box, nurse.address, receipt=True)
    reader = login(nurse_user)
    entry = inbox_entry(nurse, message)
    committed(reader.get, reverse("webmail_read", args=[entry.pk]))
    committed(reader.post, reverse("webmail_receipt", args=[entry.pk]), {"decision": "decline"})
    assert receipt_state(message) == Delivery.Receipt.DECLINED
    assert Delivery.objects.get(message=message).receipt == Delivery.Receipt.DECLINED
    assert "read" not in [s.state for s in timeline(message)[0].steps]
    # Sending later is no longer offered and does nothing.
    committed(reader.post, reverse("webmail_receipt", args=[entry.pk]), {"decision": "send"})
    assert receipt_state(message) == Delivery.Receipt.DECLINED


def test_on_request_without_a_request_nothing_is_asked(claire, julien) -> None:
    (user, box), (nurse_user, nurse) = claire, julien
    services.set_receipt_mode(nurse_user, ReceiptPreference.Mode.ON_REQUEST)
    message = compose_and_send(login(user), box, nurse.address, receipt=False)
    entry = inbox_entry(nurse, message)
    html = committed(login(nurse_user).get, reverse("webmail_read", args=[entry.pk])).content
    assert "demande un accusé de lecture" not in html.decode()
    assert timeline(message)[0].current.state == "read"


def test_the_preferences_page_sets_the_mode(claire) -> None:
    user, _box = claire
    client = login(user)
    html = client.get(reverse("webmail_preferences")).content.decode()
    assert "Accusés de lecture" in html and 'value="auto" checked' in html
    # Reachable from the webmail's side menu.
    home = client.get(reverse("webmail_home")).content.decode()
    assert reverse("webmail_preferences") in home
    response = client.post(reverse("webmail_preferences"), {"read_receipts": "ask"})
    assert response.status_code == 302
    assert services.receipt_mode(user) == ReceiptPreference.Mode.ON_REQUEST
    assert client.post(reverse("webmail_preferences"), {"read_receipts": "x"}).status_code == 400


def test_the_api_returns_the_timeline(claire, laboratoire: Lab) -> None:
    reader_user, reader_box = claire
    raw = laboratoire.raw
    client = Client()
    headers = {"Authorization": f"Bearer {raw}"}
    body = {"to": [reader_box.address], "subject": "Résultats", "text": "Résultats."}
    response = committed(
        client.post,
        "/api/v1/messages",
        data=json.dumps(body),
        content_type="application/json",
        headers=headers,
    )
    assert response.status_code == 201, response.content
    public_id = response.json()["id"]
    detail = client.get(f"/api/v1/messages/{public_id}", headers=headers).json()
    delivery = detail["deliveries"][0]
    assert delivery["status"] == "delivered" and delivery["read_at"] is None
    assert [s["step"] for s in delivery["timeline"]] == ["submitted", "scanned", "delivered"]
    assert all(set(s) == {"step", "label", "at", "detail"} for s in delivery["timeline"])

    message = Message.objects.get(public_id=public_id)
    committed(services.open_entry, inbox_entry(reader_box, message), by=reader_user)
    detail = client.get(f"/api/v1/messages/{public_id}", headers=headers).json()
    delivery = detail["deliveries"][0]
    assert delivery["timeline"][-1]["step"] == "read"
    assert delivery["timeline"][-1]["at"] == delivery["read_at"] is not None


def test_a_read_only_delegate_opening_sends_no_receipt_the_holder_decides(claire, julien) -> None:
    (user, box), (nurse_user, nurse) = claire, julien
    secretary = factories.professional(first_name="Anne", last_name="Lecture")
    services.grant_membership(nurse, secretary, "read", by=nurse_user)
    message = compose_and_send(login(user), box, nurse.address, receipt=True)
    entry = inbox_entry(nurse, message)
    reader = login(secretary)
    html = text_of(committed(reader.get, reverse("webmail_read", args=[entry.pk])).content)
    # Nothing leaves from the holder's box on a reader's opening, and no choice is offered.
    assert receipt_state(message) == Delivery.Receipt.ASKED
    assert "L'expéditeur demande un accusé de lecture" not in html
    assert (
        committed(
            reader.post, reverse("webmail_receipt", args=[entry.pk]), {"decision": "send"}
        ).status_code
        == 403
    )
    assert receipt_state(message) == Delivery.Receipt.ASKED
    # The holder, who may send, is asked and answers.
    holder = login(nurse_user)
    html = text_of(committed(holder.get, reverse("webmail_read", args=[entry.pk])).content)
    assert "L'expéditeur demande un accusé de lecture" in html
    committed(holder.post, reverse("webmail_receipt", args=[entry.pk]), {"decision": "send"})
    assert receipt_state(message) == Delivery.Receipt.SENT
    assert receipts_to(box) == []
