"""Family (issue 17): staff link a guardian to a minor child; the guardian acts in the child's space."""

from __future__ import annotations

from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
import time_machine
from django.core import mail
from django.test import Client
from django.urls import reverse

from accounts.models import ActivationLink, PatientIdentity, User
from audit.models import AuditEvent
from mailboxes.models import Entry, Mailbox, Message
from mssante.lib.identifiers import make_ins
from patients import family, services, tasks
from patients.models import NotificationPreference
from patients.models_family import GuardianLink
from patients.tests.conftest import Space
from tests import factories
from tests.personas import login

pytestmark = pytest.mark.django_db
PARIS = ZoneInfo("Europe/Paris")
_order = iter(range(700, 999))


def child(
    birth: date = date(2016, 3, 14), *, email: str = "", first: str = "Léo"
) -> PatientIdentity:
    """A child provisioned by staff: identity and box, no login (no activation sent)."""
    done = services.provision_patient(
        ins=make_ins(1, birth.year, birth.month, "75", "056", next(_order)),
        oid=PatientIdentity.Oid.TEST,
        birth_name="MOREAU",
        first_names=f"{first} Paul",
        birth_date=birth,
        sex="M",
        email=email,
        qualified=True,
        send_activation=False,
    )
    return PatientIdentity.objects.get(user=done.user)


def link(guardian: User, kid: PatientIdentity) -> GuardianLink:
    return family.provision_link(
        guardian=guardian, child=kid, reason="Livret de famille présenté au guichet", by=None
    )


def linked_child(space: Space) -> tuple[PatientIdentity, Mailbox, GuardianLink]:
    """A minor child with their own box, linked by staff to the space's patient."""
    kid = child()
    kid_box = services.patient_mailbox(kid.user)
    assert kid_box is not None
    return kid, kid_box, link(space.patient, kid)


def switch(client: Client, profile: str | int) -> None:
    response = client.post(reverse("patients:family_switch"), {"profile": str(profile)})
    assert response.status_code == 302


def admin_add(client: Client, guardian: User, kid: PatientIdentity, reason: str) -> str:
    response = client.post(
        reverse("admin:patients_guardianlink_add"),
        {
            "guardian_ins": guardian.username,
            "child_ins": kid.ins,
            "role": "parent",
            "reason": reason,
        },
    )
    return response.content.decode() if response.status_code == 200 else ""


# --- Staff provision and revoke through the admin ------------------------------------------


def test_staff_link_a_guardian_to_a_minor_child_with_a_reason(space: Space) -> None:
    staff = factories.staff()
    kid = child()
    errors = admin_add(login(staff), space.patient, kid, "Livret de famille présenté")
    assert errors == ""
    made = GuardianLink.objects.get()
    assert (made.guardian, made.child, made.created_by) == (space.patient, kid, staff)
    assert made.reason == "Livret de famille présenté" and made.active
    event = AuditEvent.objects.get(action="patient.family_link_created")
    assert event.actor == staff
    assert event.data["reason"] == "Livret de famille présenté"
    assert event.data["guardian"] == space.patient.pk and event.data["child"] == kid.user_id


def test_the_admin_refuses_an_adult_child(space: Space) -> None:
    adult = child(date(2000, 1, 5))
    errors = admin_add(login(factories.staff()), space.patient, adult, "Demande de la mère")
    assert "L&#x27;enfant est majeur" in errors
    assert not GuardianLink.objects.exists()


def test_the_admin_refuses_a_duplicate_link_and_a_link_without_reason(space: Space) -> None:
    client = login(factories.staff())
    kid = child()
    link(space.patient, kid)
    errors = admin_add(client, space.patient, kid, "Encore une fois")
    assert "déjà rattaché à cet enfant" in errors
    other = child(first="Emma")
    errors = admin_add(client, space.patient, other, "   ")
    assert "Ce champ est obligatoire" in errors or "Indiquez le motif" in errors
    assert GuardianLink.objects.count() == 1


def test_the_admin_refuses_a_guardian_who_is_not_a_patient(space: Space) -> None:
    kid = child()
    with pytest.raises(family.FamilyError, match="doit être un patient"):
        family.provision_link(guardian=space.doctor, child=kid, reason="x", by=None)
    staff = login(factories.staff())
    errors = admin_add(staff, kid.user, kid, "Soi-même")
    assert "rattaché à lui-même" in errors
    space.patient.status = User.Status.SUSPENDED
    space.patient.save()
    errors = admin_add(staff, space.patient, kid, "Livret de famille")
    assert "n&#x27;est pas actif" in errors
    assert not GuardianLink.objects.exists()


def test_staff_revoke_a_link_with_a_reason_in_the_admin(space: Space) -> None:
    staff = factories.staff()
    made = link(space.patient, child())
    url = reverse("admin:patients_guardianlink_change", args=[made.pk])
    client = login(staff)
    assert client.get(url).status_code == 200
    response = client.post(url, {"revoke_reason": "Jugement retirant l'autorité parentale"})
    assert response.status_code == 302
    made.refresh_from_db()
    assert made.end_cause == GuardianLink.EndCause.REVOKED and made.ended_by == staff
    assert made.end_reason == "Jugement retirant l'autorité parentale"
    event = AuditEvent.objects.get(action="patient.family_link_revoked")
    assert event.actor == staff and event.data["reason"] == made.end_reason
    # Nobody deletes a link: its history stays.
    assert client.post(
        reverse("admin:patients_guardianlink_delete", args=[made.pk]), {"post": "yes"}
    ).status_code in (403, 302)
    assert GuardianLink.objects.filter(pk=made.pk).exists()


def test_a_managed_minor_gets_no_activation_link_of_their_own_until_majority(
    space: Space, django_capture_on_commit_callbacks
) -> None:
    staff = login(factories.staff())
    kid = child(email="leo.moreau@example.org")
    changelist = reverse("admin:patients_patient_changelist")
    # Before any link, staff may send one (a minor may hold their own space)...
    with django_capture_on_commit_callbacks(execute=True):
        staff.post(changelist, {"action": "send_activation", "_selected_action": [kid.pk]})
    assert [m.to for m in mail.outbox] == [["leo.moreau@example.org"]]
    pending = ActivationLink.objects.get(user=kid.user, used_at__isnull=True)

    # ...but once a guardian manages the space, that link stops working...
    made = link(space.patient, kid)
    pending.refresh_from_db()
    assert pending.used_at is not None
    event = AuditEvent.objects.get(action="patient.family_link_created", object_id=str(made.pk))
    assert event.data["activation_links_ended"] == 1

    # ...and staff cannot send another: the admin says why, nothing is issued or sent.
    mail.outbox.clear()
    with django_capture_on_commit_callbacks(execute=True):
        response = staff.post(
            changelist, {"action": "send_activation", "_selected_action": [kid.pk]}, follow=True
        )
    assert "géré par son représentant légal" in response.content.decode()
    assert mail.outbox == []
    assert not ActivationLink.objects.filter(user=kid.user, used_at__isnull=True).exists()


# --- The guardian in the child's space ------------------------------------------------------


def test_the_guardian_switches_reads_replies_and_sets_preferences_as_the_child(
    space: Space,
) -> None:
    kid, kid_box, made = linked_child(space)
    message = space.send(
        space.doctor_box, [kid_box.address], subject="Rappel de vaccination", text="Le ROR."
    )
    entry = Entry.objects.get(mailbox=kid_box, message=message)
    client = login(space.patient)

    # In her own space: her own messages only, the switcher offers Léo's.
    home = client.get(reverse("patient_home")).content.decode()
    assert "Rappel de vaccination" not in home
    assert "Espace de Léo" in home and "Vous consultez l" not in home
    assert client.get(reverse("patients:conversation", args=[entry.pk])).status_code == 404

    switch(client, made.pk)
    home = client.get(reverse("patient_home")).content.decode()
    assert "Vous consultez l'espace de Léo" in home
    assert "Rappel de vaccination" in home
    page = client.get(reverse("patients:conversation", args=[entry.pk]))
    assert page.status_code == 200 and "Le ROR." in page.content.decode()
    entry.refresh_from_db()
    assert entry.seen

    response = space.run(
        client.post, reverse("patients:reply", args=[entry.pk]), {"text": "Merci, c'est noté."}
    )
    assert response.status_code == 302
    answer = Message.objects.get(sender_mailbox=kid_box)
    assert answer.to_addrs == [space.doctor_box.address]

    # The child's notification preferences, not hers; no way to change the child's address.
    prefs = client.get(reverse("patients:preferences")).content.decode()
    assert "est enregistrée par l'équipe" in prefs and "new_email" not in prefs
    client.post(reverse("patients:preferences"), {"frequency": "daily"})
    assert NotificationPreference.objects.get(user=kid.user).frequency == "daily"
    assert not NotificationPreference.objects.filter(user=space.patient).exists()

    # Back to her own space.
    switch(client, "moi")
    assert "Rappel de vaccination" not in client.get(reverse("patient_home")).content.decode()
    assert client.get(reverse("patients:conversation", args=[entry.pk])).status_code == 404


def test_what_the_guardian_does_in_the_childs_space_is_journaled_with_the_guardian_as_actor(
    space: Space,
) -> None:
    kid, kid_box, made = linked_child(space)
    message = space.send(space.doctor_box, [kid_box.address], subject="Rappel de vaccination")
    entry = Entry.objects.get(mailbox=kid_box, message=message)
    client = login(space.patient)
    switch(client, made.pk)
    switched = AuditEvent.objects.get(action="patient.family_switched")
    assert switched.actor == space.patient and switched.object_id == str(kid.user_id)
    client.get(reverse("patients:conversation", args=[entry.pk]))
    space.run(client.post, reverse("patients:reply", args=[entry.pk]), {"text": "Bien reçu."})
    acted = AuditEvent.objects.filter(action="patient.family_acted").order_by("id")
    assert {e.actor for e in acted} == {space.patient}
    assert {e.object_id for e in acted} == {str(kid.user_id)}
    views = [(e.data["view"], e.data["method"], e.data.get("url_entry_id")) for e in acted]
    assert ("patients:conversation", "GET", entry.pk) in views
    assert ("patients:reply", "POST", entry.pk) in views
    # Ids only: no subject, no word of the answer.
    for event in acted:
        assert "vaccination" not in str(event.data) and "reçu" not in str(event.data)


def test_a_patient_without_a_link_cannot_switch_to_someone_elses_child(space: Space) -> None:
    _kid, kid_box, made = linked_child(space)
    message = space.send(space.doctor_box, [kid_box.address], subject="Rappel de vaccination")
    entry = Entry.objects.get(mailbox=kid_box, message=message)
    intruder = login(space.other)

    # The forged switch: refused, with a French message; the space stays hers.
    response = intruder.post(reverse("patients:family_switch"), {"profile": str(made.pk)})
    assert response.status_code == 302
    home = intruder.get(reverse("patient_home")).content.decode()
    assert "Vous ne pouvez pas consulter cet espace." in home
    assert "Rappel de vaccination" not in home
    assert family.SESSION_KEY not in intruder.session
    for forged in ("abc", "-1", "99999", "", "9" * 20, "\uff11\uff12"):
        intruder.post(reverse("patients:family_switch"), {"profile": forged})
        assert family.SESSION_KEY not in intruder.session

    # A forged session holding the link id: checked again, refused.
    session = intruder.session
    session[family.SESSION_KEY] = made.pk
    session.save()
    assert intruder.get(reverse("patients:conversation", args=[entry.pk])).status_code == 404
    assert family.SESSION_KEY not in intruder.session
    assert not AuditEvent.objects.filter(action="patient.family_acted").exists()

    # A professional has no switch at all.
    assert (
        login(space.doctor)
        .post(reverse("patients:family_switch"), {"profile": str(made.pk)})
        .status_code
        == 404
    )


def test_the_switch_needs_a_post_with_the_csrf_token(space: Space) -> None:
    made = link(space.patient, child())
    client = login(space.patient)
    assert client.get(reverse("patients:family_switch")).status_code == 405
    strict = login(space.patient, enforce_csrf_checks=True)
    response = strict.post(reverse("patients:family_switch"), {"profile": str(made.pk)})
    assert response.status_code == 403
    assert family.SESSION_KEY not in strict.session


def test_after_revocation_the_guardian_is_back_in_her_space_and_the_childs_ids_answer_404(
    space: Space,
) -> None:
    _kid, kid_box, made = linked_child(space)
    message = space.send(space.doctor_box, [kid_box.address], subject="Rappel de vaccination")
    entry = Entry.objects.get(mailbox=kid_box, message=message)
    client = login(space.patient)
    switch(client, made.pk)
    assert client.get(reverse("patients:conversation", args=[entry.pk])).status_code == 200

    family.revoke_link(made, by=factories.staff(), reason="Décision du juge")
    assert client.get(reverse("patients:conversation", args=[entry.pk])).status_code == 404
    home = client.get(reverse("patient_home")).content.decode()
    assert "Vous ne pouvez plus consulter cet espace" in home
    assert "Rappel de vaccination" not in home and "Espace de Léo" not in home
    switch(client, made.pk)
    assert family.SESSION_KEY not in client.session
    for url in (
        reverse("patients:conversation", args=[entry.pk]),
        reverse("patients:source", args=[entry.pk]),
        reverse("patients:download", args=[entry.pk, 1]),
    ):
        assert client.get(url).status_code == 404, url
    assert client.post(reverse("patients:reply", args=[entry.pk]), {"text": "x"}).status_code == 404


# --- Majority -------------------------------------------------------------------------------


def test_at_majority_the_guardian_falls_back_and_the_task_ends_the_link_and_starts_activation(
    space: Space,
) -> None:
    eve = datetime(2026, 6, 9, 23, 50, tzinfo=PARIS)
    with time_machine.travel(eve, tick=False) as traveller:
        kid = child(date(2008, 6, 10), email="leo.moreau@example.org")  # 18 tomorrow
        kid_box = services.patient_mailbox(kid.user)
        assert kid_box is not None
        made = link(space.patient, kid)
        message = space.send(space.doctor_box, [kid_box.address], subject="Rappel de vaccination")
        entry = Entry.objects.get(mailbox=kid_box, message=message)
        client = login(space.patient)
        switch(client, made.pk)
        assert client.get(reverse("patients:conversation", args=[entry.pk])).status_code == 200

        traveller.shift(timedelta(minutes=20))  # 00:10 on his 18th birthday
        # Before the nightly task: the guardian's session already falls back.
        assert client.get(reverse("patients:conversation", args=[entry.pk])).status_code == 404
        assert "Rappel de vaccination" not in client.get(reverse("patient_home")).content.decode()

        mail.outbox.clear()
        space.run(tasks.end_family_links_at_majority.delay)
        made.refresh_from_db()
        assert made.end_cause == GuardianLink.EndCause.MAJORITY and made.ended_at is not None
        assert made.activation == GuardianLink.Activation.SENT
        assert [m.to for m in mail.outbox] == [["leo.moreau@example.org"]]
        assert "/activation/" in mail.outbox[0].body
        event = AuditEvent.objects.get(action="patient.family_link_ended")
        assert event.object_id == str(made.pk) and event.data["activation"] == "sent"
        # The child's space stays, with his messages.
        assert Entry.objects.filter(mailbox=kid_box, message=message).exists()
        assert User.objects.get(pk=kid.user_id).is_open
        # Twice is once.
        space.run(tasks.end_family_links_at_majority.delay)
        assert len(mail.outbox) == 1


def test_at_majority_without_a_personal_address_staff_are_told_in_the_admin(space: Space) -> None:
    with time_machine.travel(datetime(2026, 6, 9, 12, 0, tzinfo=PARIS), tick=False) as traveller:
        kid = child(date(2008, 6, 10))
        younger = child(date(2015, 1, 1), first="Emma")
        made, stays = link(space.patient, kid), link(space.patient, younger)
        traveller.move_to(datetime(2026, 6, 10, 3, 0, tzinfo=PARIS))
        outcome = family.end_links_at_majority()
    assert (outcome.ended, outcome.activations_sent, outcome.left_to_staff) == (1, 0, 1)
    made.refresh_from_db()
    stays.refresh_from_db()
    assert made.activation == GuardianLink.Activation.STAFF and stays.active
    listing = login(factories.staff()).get(
        reverse("admin:patients_guardianlink_changelist") + "?activation=staff"
    )
    assert "À faire par l&#x27;équipe" in listing.content.decode()
    assert "à activer par l&#x27;équipe" in listing.content.decode()
    assert kid.ins in listing.content.decode()


def test_majority_falls_on_1_march_for_a_child_born_on_29_february() -> None:
    assert family.majority_date(date(2008, 2, 29)) == date(2026, 3, 1)
    assert family.majority_date(date(2010, 6, 10)) == date(2028, 6, 10)


@pytest.mark.django_db(transaction=True)
def test_the_demo_patient_switches_to_her_sons_space_and_reads_his_doctors_message() -> None:
    from mssante import demo, demo_family

    accounts = demo.seed()
    first = demo_family.seed(accounts)
    again = demo_family.seed(accounts)  # idempotent: the same link, no message twice
    assert again.pk == first.pk and GuardianLink.objects.count() == 1
    box = services.patient_mailbox(first.child.user)
    assert box is not None and Entry.objects.filter(mailbox=box).count() == 2
    assert first.reason == demo_family.REASON and first.created_by is not None
    assert not first.child.user.has_usable_password()  # no login of his own
    client = login(demo.patient_identity().user)
    switch(client, first.pk)
    home = client.get(reverse("patient_home")).content.decode()
    assert "Vous consultez l'espace de Léo" in home and "Rappel de vaccination — Léo" in home


def test_a_message_in_the_childs_box_tells_the_guardian_without_content(space: Space) -> None:
    kid = child()
    kid_box = services.patient_mailbox(kid.user)
    assert kid_box is not None
    link(space.patient, kid)
    mail.outbox.clear()
    space.send(space.doctor_box, [kid_box.address], subject="Rappel de vaccination", text="ROR")
    assert [m.to for m in mail.outbox] == [[space.patient.email]]
    notice = mail.outbox[0]
    for secret in ("vaccination", "ROR", "Martin", space.doctor_box.address):
        assert secret.lower() not in f"{notice.subject} {notice.body}".lower()
    # Which child's space to open: the first name only.
    assert "l'espace de Léo, que vous gérez" in notice.body
    # Revoked: no longer told.
    family.revoke_link(GuardianLink.objects.get(), by=None, reason="Décision du juge")
    NotificationPreference.objects.filter(user=kid.user).update(last_notified_at=None)
    mail.outbox.clear()
    space.send(space.doctor_box, [kid_box.address], subject="Autre")
    assert mail.outbox == []
