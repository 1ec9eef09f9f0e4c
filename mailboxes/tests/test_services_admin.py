"""Staff create mailboxes in the admin through the service; address and type stay fixed."""

from __future__ import annotations

import pytest
from django.test import Client

from mailboxes.models import Folder, Mailbox
from tests import factories

pytestmark = pytest.mark.django_db


def test_staff_create_a_personal_mailbox_with_the_proposed_address(staff_client: Client) -> None:
    domain = factories.hosted_domain("hopital.mssante.test")
    doctor = factories.professional(first_name="Zoé", last_name="Lemaître", enrol=False)
    response = staff_client.post(
        "/admin/mailboxes/mailbox/add/",
        {"kind": "PER", "domain": domain.pk, "address": "", "owner": doctor.pk, "display_name": ""},
    )
    assert response.status_code == 302, response.content.decode()[:2000]
    box = Mailbox.objects.get(owner=doctor)
    assert box.address == "zoe.lemaitre@hopital.mssante.test"
    assert box.folders.filter(role=Folder.Role.INBOX).exists()


def test_the_admin_shows_service_refusals_as_form_errors(staff_client: Client) -> None:
    domain = factories.hosted_domain("hopital.mssante.test")
    aide = factories.professional(profession="35", enrol=False)
    response = staff_client.post(
        "/admin/mailboxes/mailbox/add/",
        {"kind": "PER", "domain": domain.pk, "address": "", "owner": aide.pk},
    )
    assert response.status_code == 200
    assert "ne donne pas droit" in response.content.decode()
    assert not Mailbox.objects.exists()


def test_the_admin_never_edits_address_or_type(staff_client: Client) -> None:
    box = factories.mailbox()
    page = staff_client.get(f"/admin/mailboxes/mailbox/{box.pk}/change/").content.decode()
    assert 'name="address"' not in page
    assert 'name="kind"' not in page
