"""The copies of a subject kept by a quarantine record and an abuse report: sealed on upgrade."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from django.db import connection

from charter.models import AbuseReport
from mailboxes.models import Quarantine
from tests.migrations import migrate, schema_at

BEFORE = [
    ("mailboxes", "0013_drafts_on_content_and_receipts"),
    ("charter", "0011_quarantine_moves_to_mailboxes"),
]
AFTER = [
    ("mailboxes", "0014_quarantine_subject_sealed"),
    ("charter", "0012_abuse_report_subject_sealed"),
]
SUBJECT = "Résultats de Mme Quiétude"


@pytest.fixture
def old_schema(transactional_db: None) -> Iterator[Any]:
    with schema_at(BEFORE) as apps:
        yield apps


def test_the_upgrade_seals_the_subject_copies_and_they_still_read(old_schema: Any) -> None:
    apps = old_schema
    apps.get_model("mailboxes", "Quarantine").objects.create(
        message_id_header="<m@x>", from_addr="a@b.fr", subject=SUBJECT,
        verdict="infected", quarantined_at="2025-01-01T00:00Z",
    )  # fmt: skip
    apps.get_model("charter", "AbuseReport").objects.create(
        message_id_header="<m@x>",
        sender_addr="a@b.fr",
        subject=SUBJECT,
        created_at="2025-01-01T00:00Z",
    )
    migrate(AFTER)  # still as the owner (the fixture's role until its teardown)
    for table in (Quarantine._meta.db_table, AbuseReport._meta.db_table):
        with connection.cursor() as cursor:
            cursor.execute(f"SELECT subject FROM {table}")  # noqa: S608 - our table names
            (stored,) = cursor.fetchone()
        assert "Quiétude".encode() not in bytes(stored)
    assert Quarantine.objects.get().subject == SUBJECT
    assert AbuseReport.objects.get().subject == SUBJECT
