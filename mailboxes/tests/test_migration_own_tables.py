"""Migration 0007 on a deployment's data: the quarantine keeps its rows, the directory is repaired."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from tests.migrations import migrate, schema_at

BEFORE = [
    ("mailboxes", "0006_inbound_resend_key"),
    ("charter", "0008_audit_keys_seal_and_restricted_role"),
    ("directory", "0002_postgresql_search_indexes"),
]
AFTER = [
    ("mailboxes", "0007_mailboxes_own_their_tables"),
    ("charter", "0011_quarantine_moves_to_mailboxes"),
    ("directory", "0003_withheld_addresses"),
]


@pytest.fixture
def old_schema(transactional_db: None) -> Iterator[Any]:
    """The schema before issue 12 (as its owner, who alone may change it), then today's."""
    with schema_at(BEFORE) as apps:
        yield apps


def test_the_upgrade_keeps_the_quarantine_and_withdraws_unpublished_boxes(old_schema: Any) -> None:
    apps = old_schema
    ContentType = apps.get_model("contenttypes", "ContentType")
    Permission = apps.get_model("auth", "Permission")
    Domain = apps.get_model("mailboxes", "HostedDomain")
    Mailbox = apps.get_model("mailboxes", "Mailbox")
    Entry = apps.get_model("directory", "DirectoryEntry")
    Quarantine = apps.get_model("charter", "Quarantine")

    ContentType.objects.filter(model="quarantine").delete()
    kind = ContentType.objects.create(app_label="charter", model="quarantine")
    Permission.objects.create(content_type=kind, codename="change_quarantine", name="x")
    domain = Domain.objects.create(name="medecin.mssante.fr")
    boxes = {
        name: Mailbox.objects.create(
            address=f"{name}@medecin.mssante.fr", domain=domain, kind=k, **v
        )
        for name, k, v in [
            ("ouverte", "PER", {}),
            ("discrete", "PER", {"liste_rouge": True}),
            ("fermee", "PER", {"status": "closed"}),
            ("patient", "PAT", {"status": "closed"}),
        ]
    }
    for box in boxes.values():  # as the bug left them: every box listed
        Entry.objects.create(address=box.address, kind="PER", source="local")
    Quarantine.objects.create(
        message_id_header="<x@y>",
        from_addr="a@b.fr",
        verdict="infected",
        quarantined_at="2025-01-01T00:00Z",
    )

    apps = migrate(AFTER)

    assert apps.get_model("mailboxes", "Quarantine").objects.get().message_id_header == "<x@y>"
    kind = apps.get_model("contenttypes", "ContentType").objects.get(model="quarantine")
    assert kind.app_label == "mailboxes"
    assert apps.get_model("auth", "Permission").objects.filter(content_type=kind).count() == 1
    listed = apps.get_model("directory", "DirectoryEntry").objects.values_list("address", flat=True)
    assert list(listed) == ["ouverte@medecin.mssante.fr"]
    withheld = apps.get_model("directory", "WithheldAddress").objects.values_list(
        "address", flat=True
    )
    assert sorted(withheld) == ["discrete@medecin.mssante.fr", "fermee@medecin.mssante.fr"]
