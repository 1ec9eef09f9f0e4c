"""Staff changes made in the admin reach the audit journal, without values."""

import pytest
from django.contrib.auth.models import Group

from audit import journal
from audit.models import AuditEvent
from tests import factories as f
from tests.personas import logged_in

pytestmark = pytest.mark.django_db


def test_a_change_in_the_admin_is_journaled_with_field_names_only():
    # Any ModelAdmin, ours or Django's: the journal listens to the admin's own log.
    boss = f.staff()
    group = Group.objects.create(name="Secrétariat")
    client = logged_in(boss)
    response = client.post(
        f"/admin/auth/group/{group.pk}/change/", {"name": "Secrétariat de la clinique du Parc"}
    )
    assert response.status_code == 302
    event = AuditEvent.objects.filter(action="admin.changed").latest("id")
    assert event.actor == boss
    assert event.object_type == "auth.group" and event.object_id == str(group.pk)
    assert event.data["fields"]
    assert "Parc" not in str(event.data)
    assert journal.verify_chain() is None
