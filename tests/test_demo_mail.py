"""`make demo`'s living demo: seed_demo on a fresh database, then seen through the webmail."""

from __future__ import annotations

import io
from typing import Any

import pytest
from django.core.management import call_command
from django.urls import reverse

from mailboxes.models import Entry, Folder, Mailbox, Message, Quarantine
from mssante import demo, demo_mail
from tests.personas import login

# The pipeline runs when each message's transaction commits (eager tasks), as in `make demo`.
pytestmark = pytest.mark.django_db(transaction=True)


def seeded() -> dict[str, Any]:
    out = io.StringIO()
    call_command("seed_demo", stdout=out)
    return {"out": out.getvalue(), "users": {k: user(k) for k in ("doctor", "patient")}}


def user(key: str) -> Any:
    if key == "patient":
        return demo.patient_identity().user
    return demo.professional_identity(key).user


def inbox_of(address: str) -> Folder:
    return Folder.objects.get(mailbox__address=address, role=Folder.Role.INBOX)


def test_the_demo_doctor_finds_a_living_inbox() -> None:
    world = seeded()
    assert "Claire Martin" in world["out"] and "Demo-Medecin-2026!" in world["out"]
    # Nothing but the logins on the console: no task log, no e-mail printed.
    assert "Content-Type" not in world["out"]
    client = login(world["users"]["doctor"])
    home = client.get(reverse("webmail_home"), follow=True).content.decode()
    for subject in (
        "Résultats de biologie — LEFEBVRE Jean — INR (traitement par AVK)",
        "Résultats de biologie — DURAND Marie — Ferritine",
        "Lettre de liaison de sortie — LEFEBVRE Jean",
        "Rendez-vous de contrôle — LEFEBVRE Jean",  # from another operator
        "Re : Vos résultats de bilan sanguin",  # the patient's answer
        "Message non distribué",  # the quarantine notice
    ):
        assert subject in home, subject
    inbox = inbox_of("claire.martin@hopital-demo.mssante.fr")
    results = Entry.objects.filter(folder=inbox, message__from_addr__startswith="laboratoire@")
    assert results.count() == 12
    assert 3 <= results.filter(seen=False).count() < 12
    # Several results per patient, spread over the last days.
    assert len({e.received_at.date() for e in results}) >= 5
    by_subject = [e.message.subject for e in results]
    assert sum("LEFEBVRE Jean" in s for s in by_subject) == 4
    assert sum("DURAND Marie" in s for s in by_subject) == 4


def test_the_lab_results_carry_their_patient_in_an_xdm_package() -> None:
    seeded()
    result = Message.objects.filter(from_addr__startswith="laboratoire@").first()
    entry = Entry.objects.get(message=result, mailbox__kind=Mailbox.Kind.PERSONAL)
    page = login(user("doctor")).get(reverse("webmail_read", args=[entry.pk])).content.decode()
    # The reader opens the package: its document type and its patient, by INS.
    assert "IHE_XDM.ZIP" in page and "LOINC 11502-2" in page
    assert f"INS {demo.patient_identity().ins}" in page


def test_the_discharge_letter_opens_as_a_structured_document_from_another_operator() -> None:
    seeded()
    # Found by its sender: subjects may be sealed in the database.
    letter = Message.objects.get(from_addr=demo_mail.CARDIOLOGIST[0])
    assert letter.origin == Message.Origin.SMTP and letter.peer_domain == demo_mail.PEER_DOMAIN
    entry = Entry.objects.get(message=letter)
    page = login(user("doctor")).get(reverse("webmail_read", args=[entry.pk])).content.decode()
    assert "Lettre de liaison à la sortie" in page
    assert "LEFEBVRE" in page and "Dr Antoine Leroy" in page
    # The liste blanche lists the peer for its domain: no "via".
    assert "via mx.operateur-voisin.fr" not in page


def test_the_shared_secretariat_has_unread_mail_for_the_doctor() -> None:
    seeded()
    client = login(user("doctor"))
    box = Mailbox.objects.get(address="cardiologie@hopital-demo.mssante.fr")
    page = client.get(reverse("webmail_mailbox", args=[box.pk]), follow=True).content.decode()
    assert "Demande de consultation — LEFEBVRE Jean" in page
    assert "Question sur une ordonnance de fluindione" in page
    unread = Entry.objects.filter(folder=inbox_of(box.address), seen=False).count()
    assert unread >= 3
    # The switcher of her own inbox shows the secretariat's unread count.
    home = client.get(reverse("webmail_home"), follow=True).content.decode()
    assert f'{unread}<span class="fr-sr-only"> non lus</span>' in home


def test_one_message_is_held_in_quarantine_and_its_sender_told(staff_client: Any) -> None:
    seeded()
    (held,) = Quarantine.objects.all()
    assert held.status == Quarantine.Status.HELD and held.verdict == Quarantine.Verdict.INFECTED
    sent = Entry.objects.get(message=held.message, mailbox__address__startswith="claire.martin@")
    client = login(user("doctor"))
    page = client.get(reverse("webmail_read", args=[sent.pk])).content.decode()
    assert "mis en quarantaine" in page
    # Never delivered to the nurse.
    assert not Entry.objects.filter(message=held.message, mailbox__address__startswith="julien")
    # Her notice is in her inbox; staff find the message in their quarantine review.
    notice = Entry.objects.get(
        folder=inbox_of(sent.mailbox.address), message__origin=Message.Origin.SYSTEM
    )
    assert "virus détecté" in client.get(reverse("webmail_read", args=[notice.pk])).content.decode()
    review = staff_client.get(f"/admin/mailboxes/quarantine/{held.pk}/change/").content.decode()
    assert "EICAR-Test-File" in review


def test_the_patient_sees_her_conversation_with_her_doctor() -> None:
    world = seeded()
    client = login(world["users"]["patient"])
    home = client.get(reverse("patients:home")).content.decode()
    assert "Claire Martin" in home
    # Her doctor also sent her documents (Mes documents): the conversation is the other one.
    entry = next(
        e
        for e in Entry.objects.filter(
            mailbox__kind=Mailbox.Kind.PATIENT,
            mailbox__owner=world["users"]["patient"],  # not her son Léo's box (family)
            message__from_addr="claire.martin@hopital-demo.mssante.fr",
        )
        if e.message.subject == "Vos résultats de bilan sanguin"
    )
    assert entry is not None
    page = client.get(reverse("patients:conversation", args=[entry.pk])).content.decode()
    assert "Le cholestérol LDL est un peu élevé" in page
    assert "je marche trente minutes" in page


def test_seeding_twice_sends_nothing_twice() -> None:
    seeded()
    messages, entries = Message.objects.count(), Entry.objects.count()
    out = io.StringIO()
    call_command("seed_demo", stdout=out)
    assert (Message.objects.count(), Entry.objects.count()) == (messages, entries)
    assert "messages de démonstration envoyés" not in out.getvalue()


def test_without_mail_the_boxes_stay_empty() -> None:
    call_command("seed_demo", "--sans-courrier", stdout=io.StringIO())
    assert not Message.objects.exists()


def test_inside_a_transaction_it_refuses_before_sending_anything() -> None:
    from django.db import transaction

    accounts = demo.seed()
    with pytest.raises(RuntimeError), transaction.atomic():
        demo_mail.populate(accounts)
    assert not Message.objects.exists()


def test_a_message_a_service_refuses_is_skipped_with_its_reason() -> None:
    from mailboxes import services

    call_command("seed_demo", "--sans-courrier", stdout=io.StringIO())
    nurse = Mailbox.objects.get(address="julien.dupont@cabinet-demo.mssante.fr")
    services.close_mailbox(nurse, by=None, reason="Départ")
    err = io.StringIO()
    call_command("seed_demo", stdout=io.StringIO(), stderr=err)
    # Her two messages (hers to the secretariat, the doctor's to her) are refused, in French.
    assert err.getvalue().count("Message de démonstration non envoyé") == 2
    assert "fermée" in err.getvalue()
    assert Message.objects.filter(from_addr__startswith="laboratoire@").count() == 13
