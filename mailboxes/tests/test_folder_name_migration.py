"""Migration 0016 on a deployment's data: folder names sealed, still unique and found."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from django.core.management import call_command
from django.db import connection

from mailboxes import selectors, services
from mailboxes.models import Folder, Mailbox
from mailboxes.services.errors import FolderError
from tests.migrations import migrate, schema_at

BEFORE = [("mailboxes", "0015_entry_tokens_out_of_line")]
AFTER = [("mailboxes", "0016_folder_name_sealed")]


@pytest.fixture
def old_schema(transactional_db: None) -> Iterator[Any]:
    with schema_at(BEFORE) as apps:
        yield apps


def test_the_upgrade_seals_folder_names_and_keeps_them_unique_and_found(
    old_schema: Any,
) -> None:
    apps = old_schema
    Domain = apps.get_model("mailboxes", "HostedDomain")
    OldMailbox = apps.get_model("mailboxes", "Mailbox")
    OldFolder = apps.get_model("mailboxes", "Folder")
    domain = Domain.objects.create(name="medecin.mssante.fr")
    box = OldMailbox.objects.create(address="a@medecin.mssante.fr", domain=domain, kind="ORG")
    other = OldMailbox.objects.create(address="b@medecin.mssante.fr", domain=domain, kind="ORG")
    OldFolder.objects.create(mailbox=box, role="inbox", name="Boîte de réception")
    OldFolder.objects.create(mailbox=box, role="custom", name="Quiétude Marie")
    # Two names the old, case-sensitive constraint let live side by side.
    OldFolder.objects.create(mailbox=box, role="custom", name="quiétude marie")
    OldFolder.objects.create(mailbox=other, role="custom", name="Quiétude Marie")

    migrate(AFTER)
    call_command("migrate", verbosity=0)  # the models below are today's

    with connection.cursor() as cursor:
        cursor.execute("SELECT name, name_key FROM mailboxes_folder")
        rows = cursor.fetchall()
    for sealed, key in rows:
        assert "quiétude".encode() not in bytes(sealed).lower()
        assert "quiétude" not in key.lower()
    mailbox, other_box = Mailbox.objects.get(pk=box.pk), Mailbox.objects.get(pk=other.pk)
    names = sorted(f.name for f in Folder.objects.filter(mailbox=mailbox))
    assert names == ["Boîte de réception", "Quiétude Marie", "quiétude marie (2)"]
    # Found by name whatever the case and the blanks; each box has its own.
    found = selectors.folder_by_name(mailbox, "  QUIÉTUDE   marie ")
    assert found is not None and found.mailbox == mailbox and found.name == "Quiétude Marie"
    assert selectors.folder_by_name(other_box, "quiétude marie").mailbox == other_box
    # The same name in two boxes gives two different digests: nothing links them.
    assert len({key for _sealed, key in rows}) == len(rows)
    with pytest.raises(FolderError):
        services.create_folder(mailbox, "QUIÉTUDE MARIE", by=None)
