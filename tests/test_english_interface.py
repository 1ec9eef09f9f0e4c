"""What the platform writes for a user comes in their interface's language (issue 12).

Delivery failures are stored as codes and written in words when shown, so a reader with
the English interface reads them in English, whatever language the failure was recorded
in; an archive refused on reading says why in the reader's language; the report about
an undelivered message comes back in the language its sender wrote in.
"""

from __future__ import annotations

import io
import zipfile
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager
from html import unescape
from typing import Any
from unittest import mock

import pytest
from django.test import Client
from django.urls import reverse

from mailboxes import services
from mailboxes.models import Delivery, Entry, Mailbox, Message
from mailboxes.services import queue
from mssante.lib import mime, xdm
from tests import factories
from tests.personas import client_for, start_draft

pytestmark = pytest.mark.django_db

DOMAIN = "hopital.mssante.test"
CLOSED_EN = "The recipient's mailbox no longer exists or is closed."
CLOSED_FR = "La boîte du destinataire n'existe plus ou est fermée."


@pytest.fixture
def people() -> dict[str, Any]:
    domain = factories.hosted_domain(DOMAIN)
    doctor = factories.professional(first_name="Claire", last_name="Martin")
    nurse = factories.professional(first_name="Julien", last_name="Petit")
    return {
        "doctor": doctor,
        "box": factories.mailbox(doctor, domain=domain),
        "nurse": nurse,
        "nurse_box": factories.mailbox(nurse, domain=domain),
    }


@pytest.fixture
def on_commit(
    django_capture_on_commit_callbacks: Callable[..., AbstractContextManager[Any]],
) -> Callable[..., AbstractContextManager[Any]]:
    return django_capture_on_commit_callbacks


def in_english(client: Client) -> Client:
    """The language switch every page offers, as a reader uses it."""
    client.post(reverse("set_language"), {"language": "en", "next": "/"})
    return client


@pytest.fixture
def closed_before_delivery(
    people: dict[str, Any], on_commit: Callable[..., AbstractContextManager[Any]]
) -> Iterator[Callable[[Callable[[], Message]], Message]]:
    """Submit with ``submit``, close the recipient's box, then let the pipeline run."""

    def run(submit: Callable[[], Message]) -> Message:
        queued: list[tuple[str, Any]] = []
        with (
            mock.patch.object(queue, "enqueue", lambda task, ids: queued.append((task, ids))),
            on_commit(execute=True),
        ):
            message = submit()
        Mailbox.objects.filter(pk=people["nurse_box"].pk).update(status=Mailbox.Status.CLOSED)
        # The worker runs in no one's language.
        with on_commit(execute=True):
            for task, ids in queued:
                queue.enqueue(task, ids)
        return message

    yield run


def _send(people: dict[str, Any], **extra: Any) -> Message:
    return services.submit_message(
        mailbox=people["box"],
        author=people["doctor"],
        to=[people["nurse_box"].address],
        cc=[],
        subject="Compte rendu",
        text="Bonjour.",
        **extra,
    )


def test_a_failed_delivery_reads_in_english_in_the_english_interface(
    people: dict[str, Any], closed_before_delivery: Callable[..., Message]
) -> None:
    message = closed_before_delivery(lambda: _send(people))
    assert Delivery.objects.get(message=message).status == Delivery.Status.BOUNCED
    read = reverse(
        "webmail_read", args=[Entry.objects.get(mailbox=people["box"], message=message).pk]
    )

    page = unescape(in_english(client_for(people["doctor"])).get(read).content.decode())
    assert f"Not delivered: {CLOSED_EN}" in page
    assert CLOSED_FR not in page
    # The same row, read in French, is in French.
    page = unescape(client_for(people["doctor"]).get(read).content.decode())
    assert f"Non distribué : {CLOSED_FR}" in page

    _token, raw = factories.api_token(people["box"])
    answer = Client().get(
        f"/api/v1/messages/{message.public_id}",
        HTTP_AUTHORIZATION=f"Bearer {raw}",
        HTTP_ACCEPT_LANGUAGE="en",
    )
    assert answer.status_code == 200
    (delivery,) = answer.json()["deliveries"]
    assert delivery["error"] == CLOSED_EN
    assert delivery["timeline"][-1]["label"] == f"Not delivered: {CLOSED_EN}"


def test_the_report_on_an_undelivered_message_comes_back_in_the_senders_language(
    people: dict[str, Any], closed_before_delivery: Callable[..., Message]
) -> None:
    doctor = in_english(client_for(people["doctor"]))
    draft = start_draft(doctor, people["box"])
    fields = {"to": people["nurse_box"].address, "cc": "", "subject": "Results", "text": "Hello."}

    closed_before_delivery(
        lambda: (
            doctor.post(reverse("webmail_draft_send", args=[draft.pk]), fields),
            Message.objects.get(sender_mailbox=people["box"]),
        )[1]
    )

    report = Message.objects.get(origin=Message.Origin.SYSTEM, entries__mailbox=people["box"])
    assert report.subject == "Not delivered: Results"
    text = mime.parse_message(services.read_raw(report)).text or ""
    assert "could not be delivered" in text and CLOSED_EN in text
    # Its machine part stays what RFC 3464 says, in no one's language.
    assert b"Status: 5.2.1" in services.read_raw(report)


def _archive_without_metadata() -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("README.TXT", "Documents")
    return buffer.getvalue()


def test_an_archive_refused_on_reading_says_why_in_english(
    people: dict[str, Any], on_commit: Callable[..., AbstractContextManager[Any]]
) -> None:
    with on_commit(execute=True):
        message = _send(
            people,
            attachments=[
                mime.Attachment(xdm.FILENAME, "application/zip", _archive_without_metadata())
            ],
        )
    entry = Entry.objects.get(mailbox=people["nurse_box"], message=message)
    read = reverse("webmail_read", args=[entry.pk])

    page = unescape(in_english(client_for(people["nurse"])).get(read).content.decode())
    assert "Structured documents" in page
    assert "The archive IHE_XDM.ZIP was not opened: IHE_XDM/SUBSET01/METADATA.XML missing." in page
    assert "absent" not in page
    page = unescape(client_for(people["nurse"]).get(read).content.decode())
    assert (
        "L'archive IHE_XDM.ZIP n'a pas été ouverte : IHE_XDM/SUBSET01/METADATA.XML absent." in page
    )
