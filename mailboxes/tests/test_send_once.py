"""A draft is sent once, whatever happens between the message being stored and the answer.

Found by the fault-injection suite: with PostgreSQL restarted while people were
sending, a message was stored, the draft was not deleted (its deletion came in a
second transaction, which failed), the sender saw an error page and sent again:
the recipients got it twice.
"""

from __future__ import annotations

from typing import Any

import pytest
from django.db import OperationalError
from django.urls import reverse

from mailboxes import services
from mailboxes.models import Draft, Mailbox, Message
from mailboxes.services import drafts
from tests.personas import login, start_draft

pytestmark = pytest.mark.django_db


def test_a_send_retried_after_the_database_failed_midway_is_stored_once(
    doctor: Mailbox, nurse: Mailbox, monkeypatch: pytest.MonkeyPatch
) -> None:
    client = login(doctor.owner, raise_request_exception=False)
    draft = start_draft(client, doctor)
    fields = {"to": nurse.address, "subject": "Résultats", "text": "Texte"}

    def database_gone(*args: Any, **kwargs: Any) -> None:
        raise OperationalError("server closed the connection unexpectedly")

    # The database goes away after the message is stored, before the draft is deleted.
    monkeypatch.setattr(drafts, "delete_draft", database_gone)
    failed = client.post(reverse("webmail_draft_send", args=[draft.pk]), fields)
    monkeypatch.undo()
    # The sender saw an error and sends again.
    retried = client.post(reverse("webmail_draft_send", args=[draft.pk]), fields)
    assert [m.subject for m in Message.objects.all()].count("Résultats") == 1
    assert not Draft.objects.filter(pk=draft.pk).exists()
    # The error said "not now", and the second click went through.
    assert failed.status_code == 503 and "momentanément indisponible" in failed.content.decode()
    assert retried.status_code == 302


def test_a_draft_sent_by_another_request_is_neither_sent_again_nor_brought_back(
    doctor: Mailbox, nurse: Mailbox
) -> None:
    # Two clicks on "Envoyer": both requests loaded the draft before either sent it.
    draft = services.save_draft(
        mailbox=doctor, author=doctor.owner, draft=None, to=[nurse.address], cc=[],
        subject="Deux clics", text="Texte",
    )  # fmt: skip
    first, second = Draft.objects.get(pk=draft.pk), Draft.objects.get(pk=draft.pk)
    services.send_draft(first, by=doctor.owner)
    with pytest.raises(Draft.DoesNotExist):
        services.save_draft(
            mailbox=doctor, author=doctor.owner, draft=second, to=[nurse.address], cc=[],
            subject="Deux clics", text="Texte",
        )  # fmt: skip
    with pytest.raises(Draft.DoesNotExist):
        services.send_draft(second, by=doctor.owner)
    assert [m.subject for m in Message.objects.all()].count("Deux clics") == 1
    assert not Draft.objects.exists()
