"""Staff changes made in the admin reach the audit journal, without values."""

import pytest

from charter import audit
from charter.models import AuditEvent
from mailboxes.models import HostedDomain
from tests import factories as f
from tests.personas import logged_in

pytestmark = pytest.mark.django_db


def test_a_change_in_the_admin_is_journaled_with_field_names_only():
    boss = f.staff()
    domain = HostedDomain.objects.create(name="clinique-test.mssante.fr", description="Avant")
    client = logged_in(boss)
    response = client.post(
        f"/admin/mailboxes/hosteddomain/{domain.pk}/change/",
        {
            "name": domain.name,
            "description": "Clinique du Parc",
            "kind": domain.kind,
            "active": "on",
        },
    )
    assert response.status_code == 302
    event = AuditEvent.objects.filter(action="admin.changed").latest("id")
    assert event.actor == boss
    assert event.object_type == "mailboxes.hosteddomain" and event.object_id == str(domain.pk)
    assert event.data["fields"]
    assert "Clinique du Parc" not in str(event.data)
    assert audit.verify_chain() is None
