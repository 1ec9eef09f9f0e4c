"""Shared and delegated mailboxes: who may see and do what, the journal, the Sender header."""

from __future__ import annotations

from datetime import timedelta
from email import message_from_bytes
from typing import Any

import pytest
from django.urls import reverse
from django.utils import timezone

from accounts.models import User
from audit.models import AuditEvent
from mailboxes import selectors, services
from mailboxes.models import AccessEvent, Entry, Mailbox, Membership
from mssante.lib import mime
from tests import factories
from tests.personas import login, person, send

pytestmark = pytest.mark.django_db

PDF = b"%PDF-1.4\n1 0 obj<<>>endobj\ntrailer<<>>\n%%EOF\n"


def own_box(user: User) -> Mailbox:
    return Mailbox.objects.get(owner=user, kind=Mailbox.Kind.PERSONAL)


@pytest.fixture
def cardio(secretariat, claire, julien, lea, paul) -> dict[str, Any]:
    """The cardiology secretariat (ORG) run by Dr Martin, with a nurse who may send."""
    return {
        "box": secretariat,
        "doctor": claire.user,
        "nurse": julien.user,
        "reader": lea.user,
        "outsider": paul.user,
    }


# --------------------------------------------------------------------------- selectors


def test_members_see_the_shared_box_and_outsiders_do_not(cardio) -> None:
    box = cardio["box"]
    for key in ("doctor", "nurse", "reader"):
        assert box in selectors.accessible_mailboxes(cardio[key]), key
    assert box not in selectors.accessible_mailboxes(cardio["outsider"])


def test_a_revoked_member_loses_the_box_at_the_next_request(cardio) -> None:
    box, nurse = cardio["box"], cardio["nurse"]
    sender = person("Marc", "Roux").user
    entry = Entry.objects.get(mailbox=box, message=send(own_box(sender), [box.address]))
    client = login(nurse)
    url = reverse("webmail_read", args=[entry.pk])
    assert client.get(url).status_code == 200
    services.revoke_membership(Membership.objects.get(user=nurse), by=cardio["doctor"])
    assert client.get(url).status_code == 404


def test_an_expired_delegation_no_longer_opens_the_box(cardio, anne) -> None:
    holder = cardio["doctor"]
    secretary = anne
    box = own_box(holder)
    grant = services.grant_membership(
        box,
        secretary,
        Membership.Role.READ,
        by=holder,
        expires_at=timezone.now() + timedelta(days=1),
    )
    assert box in selectors.accessible_mailboxes(secretary)
    Membership.objects.filter(pk=grant.pk).update(expires_at=timezone.now() - timedelta(seconds=1))
    assert box not in selectors.accessible_mailboxes(secretary)


def test_a_nominative_box_cannot_be_delegated_with_the_manage_role(cardio) -> None:
    holder = cardio["doctor"]
    with pytest.raises(services.MembershipError):
        services.grant_membership(
            own_box(holder), cardio["nurse"], Membership.Role.MANAGE, by=holder
        )


def test_a_second_live_grant_to_the_same_person_is_refused(cardio) -> None:
    with pytest.raises(services.MembershipError):
        factories.member(cardio["box"], cardio["nurse"], Membership.Role.READ)


def test_the_switcher_lists_own_box_first_with_unread_counts(cardio) -> None:
    box, nurse = cardio["box"], cardio["nurse"]
    send(own_box(cardio["outsider"]), [box.address])
    items = selectors.switcher(nurse)
    assert [i.mailbox for i in items] == [own_box(nurse), box]
    assert [i.unread for i in items] == [0, 1]


# --------------------------------------------------------------------------- sending


def test_a_delegate_sends_with_from_the_box_and_sender_themselves(cardio) -> None:
    box, nurse = cardio["box"], cardio["nurse"]
    to = own_box(cardio["outsider"])
    message = send(box, [to.address], author=nurse)
    raw = message_from_bytes(services.read_raw(message))
    assert box.address in raw["From"]
    assert own_box(nurse).address in raw["Sender"]
    assert message.sender_addr == own_box(nurse).address


def test_the_recipient_sees_sent_by_x_for_y(cardio) -> None:
    box, nurse, outsider = cardio["box"], cardio["nurse"], cardio["outsider"]
    message = send(box, [own_box(outsider).address], author=nurse)
    entry = Entry.objects.get(mailbox=own_box(outsider), message=message)
    page = login(outsider).get(reverse("webmail_read", args=[entry.pk])).content.decode()
    assert "Envoyé par" in page
    assert f"Julien Dupont &lt;{own_box(nurse).address}&gt; pour Secrétariat de cardiologie" in page


def test_the_holder_sending_from_their_own_box_has_no_sender_header(cardio) -> None:
    holder = cardio["doctor"]
    message = send(own_box(holder), [own_box(cardio["nurse"]).address], author=holder)
    assert message_from_bytes(services.read_raw(message))["Sender"] is None
    assert message.sender_addr == ""


def test_a_reader_cannot_send_from_the_box(cardio) -> None:
    box, reader = cardio["box"], cardio["reader"]
    client = login(reader)
    assert client.post(reverse("webmail_compose", args=[box.pk])).status_code == 403


# --------------------------------------------------------------------------- journal


def test_a_download_by_a_member_is_journaled_and_shown_to_the_responsible(cardio) -> None:
    box, nurse, doctor = cardio["box"], cardio["nurse"], cardio["doctor"]
    message = send(
        own_box(cardio["outsider"]),
        [box.address],
        subject="ECG de contrôle",
        attachments=[mime.Attachment("ecg.pdf", "application/pdf", PDF)],
    )
    entry = Entry.objects.get(mailbox=box, message=message)
    index = message.attachments[0]["index"]
    assert login(nurse).get(reverse("webmail_download", args=[entry.pk, index])).status_code == 200
    event = AccessEvent.objects.get(mailbox=box, action=AccessEvent.Action.DOWNLOAD)
    assert (event.actor, event.message) == (nurse, message)
    client = login(doctor)
    page = client.get(reverse("webmail_read", args=[entry.pk])).content.decode()
    assert "Pièce jointe téléchargée par Julien Dupont le" in page
    journal = client.get(
        reverse("webmail_journal", args=[box.pk]), {"action": "download"}
    ).content.decode()
    # The subject people know, not the Message-ID they do not (issue 14).
    assert "Julien Dupont" in journal and "ECG de contrôle" in journal
    assert message.message_id.strip("<>")[:20] not in journal


def test_the_journal_holds_no_content(cardio) -> None:
    box, nurse = cardio["box"], cardio["nurse"]
    message = send(own_box(cardio["outsider"]), [box.address], subject="Secret médical")
    entry = Entry.objects.get(mailbox=box, message=message)
    login(nurse).get(reverse("webmail_read", args=[entry.pk]))
    row = AccessEvent.objects.values().get(mailbox=box)
    assert "Secret" not in str(row)


def test_the_holder_opening_their_own_box_is_not_journaled(cardio) -> None:
    holder = cardio["doctor"]
    message = send(own_box(cardio["outsider"]), [own_box(holder).address])
    entry = Entry.objects.get(mailbox=own_box(holder), message=message)
    login(holder).get(reverse("webmail_read", args=[entry.pk]))
    assert not AccessEvent.objects.exists()


def test_a_delegate_opening_the_holders_box_is_journaled(cardio, anne) -> None:
    holder = cardio["doctor"]
    secretary = anne
    services.grant_membership(own_box(holder), secretary, Membership.Role.READ, by=holder)
    message = send(own_box(cardio["outsider"]), [own_box(holder).address])
    entry = Entry.objects.get(mailbox=own_box(holder), message=message)
    assert login(secretary).get(reverse("webmail_read", args=[entry.pk])).status_code == 200
    assert AccessEvent.objects.get().actor == secretary


def test_only_the_holder_sees_the_journal(cardio) -> None:
    url = reverse("webmail_journal", args=[cardio["box"].pk])
    assert login(cardio["doctor"]).get(url).status_code == 200
    assert login(cardio["nurse"]).get(url).status_code == 403
    assert login(cardio["outsider"]).get(url).status_code == 404


# --------------------------------------------------------------------------- members page


def test_the_responsible_adds_a_member_by_rpps(cardio) -> None:
    box, doctor = cardio["box"], cardio["doctor"]
    newcomer = person("Inès", "Garcia").user
    client = login(doctor)
    response = client.post(
        reverse("webmail_members", args=[box.pk]),
        {"identifier": newcomer.professional.id_number, "role": "send"},
    )
    assert response.status_code == 302
    assert Membership.objects.get(mailbox=box, user=newcomer).role == "send"


def test_an_unknown_identifier_is_refused_with_a_message(cardio) -> None:
    client = login(cardio["doctor"])
    response = client.post(
        reverse("webmail_members", args=[cardio["box"].pk]),
        {"identifier": factories.rpps(), "role": "read"},
    )
    assert response.status_code == 400
    assert "Aucun professionnel" in response.content.decode()


def test_role_change_and_revocation_from_the_webmail(cardio) -> None:
    box, doctor, nurse = cardio["box"], cardio["doctor"], cardio["nurse"]
    grant = Membership.objects.get(mailbox=box, user=nurse)
    client = login(doctor)
    client.post(reverse("webmail_member_change", args=[box.pk, grant.pk]), {"role": "read"})
    grant.refresh_from_db()
    assert grant.role == "read"
    client.post(reverse("webmail_member_revoke", args=[box.pk, grant.pk]))
    grant.refresh_from_db()
    assert grant.revoked_at is not None


def test_a_send_member_cannot_manage_members(cardio) -> None:
    url = reverse("webmail_members", args=[cardio["box"].pk])
    assert login(cardio["nurse"]).get(url).status_code == 403


# --------------------------------------------------------------------------- demo


def test_the_demo_has_a_cardiology_secretariat_and_a_lab_with_a_token() -> None:
    from django.core.management import call_command

    from mssante import demo

    demo.seed()
    accounts = {a["key"]: a for a in demo.seed()}  # twice: seeding is repeatable
    doctor = accounts["doctor"]["shared_mailboxes"]
    assert [(b["address"], b["role"]) for b in doctor] == [
        ("cardiologie@hopital-demo.mssante.fr", "responsible")
    ]
    assert [b["role"] for b in accounts["nurse"]["shared_mailboxes"]] == ["send"]
    lab = accounts["pharmacist"]["shared_mailboxes"][0]
    assert lab["kind"] == "APP" and lab["api_token"] == demo.DEMO_API_TOKEN
    assert services.authenticate_token(demo.DEMO_API_TOKEN).mailbox.address == lab["address"]
    assert Mailbox.objects.get(address=lab["address"]).liste_rouge
    import io

    out = io.StringIO()
    # Without the demo's mail: it needs commits (tests/test_demo_mail.py), this test has none.
    call_command("seed_demo", "--json", "--sans-courrier", stdout=out)
    assert "cardiologie@hopital-demo.mssante.fr" in out.getvalue()


def test_staff_create_an_org_box_for_an_organisation_with_a_responsible(cardio) -> None:
    staff = factories.staff()
    client = login(staff)
    domain = factories.hosted_domain("hopital.mssante.test")
    base = {"kind": "ORG", "domain": domain.pk, "address": "urgences@hopital.mssante.test"}
    response = client.post("/admin/mailboxes/mailbox/add/", base)
    assert "appartient à une organisation" in response.content.decode()
    organisation = factories.organisation("Urgences")
    response = client.post(
        "/admin/mailboxes/mailbox/add/",
        {**base, "organisation": organisation.pk, "responsible": cardio["doctor"].pk},
    )
    assert response.status_code == 302
    box = Mailbox.objects.get(address="urgences@hopital.mssante.test")
    assert (box.kind, box.organisation, box.responsible) == ("ORG", organisation, cardio["doctor"])
    assert box in selectors.accessible_mailboxes(cardio["doctor"])


def test_first_opening_and_downloads_reach_the_audit_journal_of_any_box(claire, julien):
    doctor_box, (nurse, nurse_box) = claire.box, julien
    attachment = mime.Attachment("bilan.pdf", "application/pdf", PDF)
    send(doctor_box, [nurse_box.address], attachments=[attachment])
    entry = Entry.objects.get(mailbox=nurse_box)
    services.open_entry(entry, by=nurse)
    services.open_entry(entry, by=nurse)
    services.record_download(entry, 0, by=nurse)
    assert AuditEvent.objects.filter(action="message.first_opened", actor=nurse).count() == 1
    assert AuditEvent.objects.filter(action="attachment.downloaded", actor=nurse).count() == 1
