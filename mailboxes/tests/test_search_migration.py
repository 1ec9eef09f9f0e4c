"""Migration 0010 on a deployment's data: subjects sealed, then the index rebuilt by the command."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from django.core.management import call_command
from django.db import connection

from mailboxes import selectors
from mailboxes.models import Draft, Entry, Mailbox, Message
from tests.migrations import migrate, schema_at

BEFORE = [("mailboxes", "0009_folder_counters_and_search")]
AFTER = [("mailboxes", "0010_keyed_search_and_sealed_subjects")]


@pytest.fixture
def old_schema(transactional_db: None) -> Iterator[Any]:
    with schema_at(BEFORE) as apps:
        yield apps


def test_the_upgrade_seals_subjects_and_the_rebuild_makes_them_searchable(
    old_schema: Any,
) -> None:
    apps = old_schema
    Domain = apps.get_model("mailboxes", "HostedDomain")
    OldMailbox = apps.get_model("mailboxes", "Mailbox")
    OldFolder = apps.get_model("mailboxes", "Folder")
    OldMessage = apps.get_model("mailboxes", "Message")
    OldEntry = apps.get_model("mailboxes", "Entry")
    domain = Domain.objects.create(name="medecin.mssante.fr")
    box = OldMailbox.objects.create(address="a@medecin.mssante.fr", domain=domain, kind="ORG")
    inbox = OldFolder.objects.create(mailbox=box, role="inbox", name="Boîte de réception")
    message = OldMessage.objects.create(
        message_id="<m@x>",
        thread_key="m@x",
        from_addr="labo@biologie.mssante.fr",
        subject="Résultats de Mme Quiétude",
        date="2025-01-01T00:00Z",
        size=10,
        attachments=[{"index": 2, "filename": "bilan.pdf", "content_type": "x", "size": 1}],
        blob_name="none/1",
        key_id="k",
        wrapped_key=b"k",
    )
    OldEntry.objects.create(mailbox=box, message=message, folder=inbox)

    migrate(AFTER)
    call_command("migrate", verbosity=0)

    with connection.cursor() as cursor:
        cursor.execute("SELECT subject, attachments FROM mailboxes_message")
        (subject, attachments) = cursor.fetchone()
    assert "quiétude".encode() not in bytes(subject).lower()
    assert b"bilan" not in bytes(attachments)
    stored = Message.objects.get()
    assert stored.subject == "Résultats de Mme Quiétude"
    assert stored.attachments[0]["filename"] == "bilan.pdf"
    assert not Draft.objects.exists()
    mailbox = Mailbox.objects.get()
    # Until the rebuild, found by no search; then by its subject and attachment name.
    assert selectors.search(mailbox, "quietude").entries == []
    call_command("rebuild_search_index", "--manquants", verbosity=0)
    entry = Entry.objects.get()
    assert [e.pk for e in selectors.search(mailbox, "quietude").entries] == [entry.pk]
    assert [e.pk for e in selectors.search(mailbox, "bilan").entries] == [entry.pk]
