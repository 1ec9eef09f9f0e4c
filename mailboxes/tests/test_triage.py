"""Triage through the pages: a selection's actions, sorting, new mail, results by patient."""

from __future__ import annotations

from typing import Any

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from accounts.models import User
from audit.models import AuditEvent
from mailboxes import services
from mailboxes.models import AccessEvent, Delivery, Entry, Folder, FolderCounter, Mailbox, Message
from mailboxes.services import bulk
from mssante.lib import mime, xdm
from tests.personas import Lab, Person, login, send

pytestmark = pytest.mark.django_db

PDF = b"%PDF-1.4\n1 0 obj<<>>endobj\ntrailer<<>>\n%%EOF\n"


def _inbox(box: Mailbox) -> Folder:
    return Folder.objects.get(mailbox=box, role=Folder.Role.INBOX)


def _folder(box: Mailbox, role: str) -> Folder:
    return Folder.objects.get(mailbox=box, role=role)


def _received(sender: Mailbox, to: Mailbox, n: int, **kwargs: Any) -> list[Entry]:
    for i in range(n):
        send(sender, [to.address], subject=kwargs.pop("subject", None) or f"Résultat {i}", **kwargs)
    return list(Entry.objects.filter(mailbox=to, folder__role=Folder.Role.INBOX).order_by("pk"))


def _bulk(client: Client, box: Mailbox, action: str, ids: list[Any], **extra: Any) -> Any:
    return client.post(
        reverse("webmail_bulk", args=[box.pk]),
        {"action": action, "entries": [str(i) for i in ids], **extra},
    )


def _state(box: Mailbox) -> list[tuple[int, int, bool, bool]]:
    return list(
        Entry.objects.filter(mailbox=box)
        .order_by("pk")
        .values_list("pk", "folder_id", "seen", "flagged")
    )


def _unread(folder: Folder) -> int:
    return FolderCounter.objects.get(folder=folder).unread


# --------------------------------------------------------------------------- the selection


def test_the_doctor_marks_a_selection_read_in_one_request(claire: Person, julien: Person) -> None:
    entries = _received(julien.box, claire.box, 3)
    client = login(claire.user)
    response = _bulk(client, claire.box, "lu", [e.pk for e in entries[:2]])
    assert response.status_code == 302
    seen = dict(Entry.objects.filter(mailbox=claire.box).values_list("pk", "seen"))
    assert [seen[e.pk] for e in entries] == [True, True, False]
    # The counter follows (database trigger), and the sender's timeline says "Lu".
    assert _unread(_inbox(claire.box)) == 1
    assert Delivery.objects.filter(mailbox=claire.box, read_at__isnull=False).count() == 2
    page = client.get(response["Location"]).content.decode()
    assert "2 messages marqués comme lus." in page
    assert AuditEvent.objects.filter(action="entries.marked_read").count() == 1


def test_it_marks_unread_and_flags_a_selection(claire: Person, julien: Person) -> None:
    entries = _received(julien.box, claire.box, 2)
    client = login(claire.user)
    _bulk(client, claire.box, "lu", [e.pk for e in entries])
    _bulk(client, claire.box, "non-lu", [entries[0].pk])
    _bulk(client, claire.box, "suivi", [e.pk for e in entries])
    assert [
        (e.seen, e.flagged)
        for e in Entry.objects.filter(pk__in=[e.pk for e in entries]).order_by("pk")
    ] == [
        (False, True),
        (True, True),
    ]
    assert _unread(_inbox(claire.box)) == 1


def test_it_moves_archives_trashes_and_restores_a_selection(claire: Person, julien: Person) -> None:
    entries = _received(julien.box, claire.box, 4)
    ids = [e.pk for e in entries]
    client = login(claire.user)
    labo = services.create_folder(claire.box, "Biologie", by=claire.user)
    _bulk(client, claire.box, f"deplacer:{labo.pk}", ids[:2])
    _bulk(client, claire.box, "archiver", ids[2:3])
    _bulk(client, claire.box, "corbeille", ids[3:])
    folders = dict(Entry.objects.filter(pk__in=ids).values_list("pk", "folder_id"))
    archive, trash = _folder(claire.box, "archive"), _folder(claire.box, "trash")
    assert [folders[i] for i in ids] == [labo.pk, labo.pk, archive.pk, trash.pk]
    assert FolderCounter.objects.get(folder=labo).total == 2
    _bulk(client, claire.box, "restaurer", ids[3:])
    assert Entry.objects.get(pk=ids[3]).folder_id == _inbox(claire.box).pk


def test_deleting_for_good_asks_first_then_purges(claire: Person, julien: Person) -> None:
    entries = _received(julien.box, claire.box, 2)
    ids = [e.pk for e in entries]
    client = login(claire.user)
    _bulk(client, claire.box, "corbeille", ids)
    # Without the confirmation (no JavaScript): a page asks, nothing is deleted.
    page = _bulk(client, claire.box, "supprimer", ids)
    assert page.status_code == 200
    assert "irréversible" in page.content.decode()
    assert Entry.objects.filter(pk__in=ids).count() == 2
    done = _bulk(client, claire.box, "supprimer", ids, confirm="1")
    assert done.status_code == 302
    assert not Entry.objects.filter(pk__in=ids).exists()
    assert AuditEvent.objects.filter(action="entries.deleted").count() == 1


def test_it_deletes_for_good_only_from_the_trash(claire: Person, julien: Person) -> None:
    entries = _received(julien.box, claire.box, 2)
    client = login(claire.user)
    before = _state(claire.box)
    response = _bulk(client, claire.box, "supprimer", [e.pk for e in entries], confirm="1")
    assert response.status_code == 302
    assert _state(claire.box) == before
    assert "Seuls les messages de la corbeille" in client.get(response["Location"]).content.decode()


def test_it_moves_nothing_into_the_drafts(claire: Person, julien: Person) -> None:
    entries = _received(julien.box, claire.box, 1)
    client = login(claire.user)
    before = _state(claire.box)
    drafts = _folder(claire.box, "drafts")
    response = _bulk(client, claire.box, f"deplacer:{drafts.pk}", [entries[0].pk])
    assert response.status_code == 404
    assert _state(claire.box) == before


def test_all_read_marks_a_whole_folder_whatever_its_size(claire: Person, julien: Person) -> None:
    _received(julien.box, claire.box, 3)
    inbox = _inbox(claire.box)
    # Rows past the 500 a selection may hold are marked too: one statement, no id list.
    Entry.objects.filter(mailbox=claire.box).update(seen=False)
    client = login(claire.user)
    response = client.post(reverse("webmail_folder_read", args=[inbox.pk]))
    assert response.status_code == 302
    assert not Entry.objects.filter(folder=inbox, seen=False).exists()
    assert _unread(inbox) == 0
    assert AuditEvent.objects.filter(action="folder.marked_read").count() == 1


def test_the_list_offers_the_selection_without_javascript(claire: Person, julien: Person) -> None:
    entries = _received(julien.box, claire.box, 2)
    client = login(claire.user)
    page = client.get(reverse("webmail_folder", args=[_inbox(claire.box).pk])).content.decode()
    assert 'id="triage-form"' in page
    assert f'name="entries" value="{entries[0].pk}" form="triage-form"' in page
    assert "Tout marquer comme lu" in page
    # "Tout sélectionner" without script: the page comes back with every box ticked.
    ticked = client.get(reverse("webmail_folder", args=[_inbox(claire.box).pk]) + "?tout=1")
    assert ticked.content.decode().count('form="triage-form" checked') == 2
    # After the action, the list comes back unticked.
    assert ticked.context["back"] == reverse("webmail_folder", args=[_inbox(claire.box).pk])


def test_search_results_are_selected_and_filed_in_one_request(
    claire: Person, julien: Person
) -> None:
    """Search a word of the body, tick every result, file them: no per-message click."""
    for i in range(3):
        send(julien.box, [claire.box.address], subject=f"Bilan {i}", text="Hémoglobine glyquée")
    send(julien.box, [claire.box.address], subject="Autre", text="Rien à voir")
    client = login(claire.user)
    diabete = services.create_folder(claire.box, "Diabète", by=claire.user)
    found = client.post(
        reverse("webmail_search", args=[claire.box.pk]), {"q": "glyquee"}, follow=True
    )
    results_url = found.redirect_chain[-1][0]
    assert "glyqu" not in results_url  # the words stay out of the URL
    page = found.content.decode()
    assert 'id="triage-form"' in page
    ids = [r.entry.pk for r in found.context["rows"]]
    assert len(ids) == 3
    ticked = client.get(results_url + "?tout=1").content.decode()
    assert ticked.count('form="triage-form" checked') == 3
    response = _bulk(client, claire.box, f"deplacer:{diabete.pk}", ids, next=results_url)
    assert response.status_code == 302 and response["Location"] == results_url
    filed = Entry.objects.filter(mailbox=claire.box, folder=diabete)
    assert sorted(filed.values_list("pk", flat=True)) == sorted(ids)
    assert Entry.objects.filter(mailbox=claire.box, folder=_inbox(claire.box)).count() == 1
    # Back on the results, still found (the search covers every folder but the trash).
    again = client.get(results_url)
    assert "3 messages déplacés" in again.content.decode()
    assert sorted(r.entry.pk for r in again.context["rows"]) == sorted(ids)


# --------------------------------------------------------------------------- the attacker


def test_an_id_of_another_box_refuses_the_whole_selection(
    claire: Person, julien: Person, paul: Person
) -> None:
    mine = _received(julien.box, claire.box, 2)
    theirs = _received(julien.box, paul.box, 1)
    client = login(claire.user)
    before, before_paul = _state(claire.box), _state(paul.box)
    response = _bulk(client, claire.box, "corbeille", [mine[0].pk, theirs[0].pk, mine[1].pk])
    assert response.status_code == 404
    assert _state(claire.box) == before
    assert _state(paul.box) == before_paul


def test_a_stranger_cannot_act_in_a_box(claire: Person, julien: Person, paul: Person) -> None:
    entries = _received(julien.box, claire.box, 1)
    before = _state(claire.box)
    response = _bulk(login(paul.user), claire.box, "corbeille", [entries[0].pk])
    assert response.status_code == 404
    assert _state(claire.box) == before
    inbox = _inbox(claire.box)
    assert login(paul.user).post(reverse("webmail_folder_read", args=[inbox.pk])).status_code == 404
    assert _state(claire.box) == before


def test_a_folder_of_another_box_is_not_a_target(
    claire: Person, julien: Person, paul: Person
) -> None:
    entries = _received(julien.box, claire.box, 1)
    before = _state(claire.box)
    other = _inbox(paul.box)
    response = _bulk(login(claire.user), claire.box, f"deplacer:{other.pk}", [entries[0].pk])
    assert response.status_code == 404
    assert _state(claire.box) == before


@pytest.mark.parametrize(
    "ids",
    [["abc"], ["1 OR 1=1"], ["-1"], ["\uff11\uff12"], ["9" * 40], []],
    ids=["letters", "sql", "negative", "fullwidth-digits", "huge", "none"],
)
def test_garbage_ids_change_nothing_and_say_why(
    claire: Person, julien: Person, ids: list[str]
) -> None:
    _received(julien.box, claire.box, 1)
    client = login(claire.user)
    before = _state(claire.box)
    response = _bulk(client, claire.box, "lu", ids)
    assert response.status_code == 302
    assert _state(claire.box) == before
    page = client.get(response["Location"]).content.decode()
    assert "La sélection est invalide" in page or "Sélectionnez au moins un message" in page


def test_more_than_500_ids_are_refused_whole(claire: Person, julien: Person) -> None:
    entries = _received(julien.box, claire.box, 2)
    client = login(claire.user)
    before = _state(claire.box)
    ids = [e.pk for e in entries] + list(range(10**6, 10**6 + bulk.MAX_SELECTION))
    response = _bulk(client, claire.box, "lu", ids)
    assert response.status_code == 302
    assert _state(claire.box) == before
    assert "Trop de messages sélectionnés" in client.get(response["Location"]).content.decode()


def test_ten_thousand_ids_are_a_bad_request(claire: Person, julien: Person) -> None:
    entries = _received(julien.box, claire.box, 1)
    before = _state(claire.box)
    response = _bulk(login(claire.user), claire.box, "lu", [entries[0].pk] * 10_000)
    assert response.status_code == 400
    assert _state(claire.box) == before


def test_an_unknown_action_changes_nothing(claire: Person, julien: Person) -> None:
    entries = _received(julien.box, claire.box, 1)
    client = login(claire.user)
    before = _state(claire.box)
    for action in ["", "drop table", "lu:3", "deplacer:", "deplacer:abc"]:
        response = _bulk(client, claire.box, action, [entries[0].pk])
        assert response.status_code in (302, 404), action
    assert _state(claire.box) == before


def test_the_selection_needs_its_csrf_token(claire: Person, julien: Person) -> None:
    entries = _received(julien.box, claire.box, 1)
    client = login(claire.user, enforce_csrf_checks=True)
    before = _state(claire.box)
    assert _bulk(client, claire.box, "lu", [entries[0].pk]).status_code == 403
    assert _state(claire.box) == before


def test_a_reader_files_but_cannot_delete_for_good(
    claire: Person, julien: Person, lea: Person, secretariat: Mailbox
) -> None:
    entries = _received(julien.box, secretariat, 2)
    ids = [e.pk for e in entries]
    client = login(lea.user)
    # The role "Lecture" reads, files and marks (as one by one): a selection does no more.
    assert _bulk(client, secretariat, "corbeille", ids).status_code == 302
    before = _state(secretariat)
    assert _bulk(client, secretariat, "supprimer", ids).status_code == 403
    assert _bulk(client, secretariat, "supprimer", ids, confirm="1").status_code == 403
    assert _state(secretariat) == before


def test_a_shared_box_journals_who_moved_and_deleted(
    claire: Person, julien: Person, secretariat: Mailbox
) -> None:
    entries = _received(claire.box, secretariat, 3)
    ids = [e.pk for e in entries]
    client = login(julien.user)
    _bulk(client, secretariat, "archiver", ids[:2])
    _bulk(client, secretariat, "corbeille", ids[2:])
    events = AccessEvent.objects.filter(mailbox=secretariat, actor=julien.user)
    assert events.filter(action=AccessEvent.Action.MOVE).count() == 2
    assert events.filter(action=AccessEvent.Action.DELETE).count() == 1


# --------------------------------------------------------------------------- sorting


def test_the_list_sorts_by_size_and_correspondent_never_by_the_sealed_subject(
    claire: Person, julien: Person, paul: Person
) -> None:
    send(julien.box, [claire.box.address], subject="Bravo", text="x" * 5000)
    send(paul.box, [claire.box.address], subject="alpha", text="court")
    send(julien.box, [claire.box.address], subject="Charlie", text="moyen" * 100)
    url = reverse("webmail_folder", args=[_inbox(claire.box).pk])
    client = login(claire.user)

    def order(query: str) -> list[str]:
        rows = client.get(url + query).context["rows"]
        return [r.entry.message.subject for r in rows]

    assert order("") == ["Charlie", "alpha", "Bravo"]
    assert order("?tri=taille") == ["Bravo", "Charlie", "alpha"]
    assert order("?tri=taille&ordre=asc") == ["alpha", "Charlie", "Bravo"]
    assert order("?tri=correspondant")[-1] == "alpha"  # Paul Durand after Julien Dupont
    # Subjects are sealed at rest: no order by subject, the default one instead.
    assert order("?tri=objet") == order("")
    page = client.get(url + "?tri=taille&ordre=asc").content.decode()
    assert 'aria-sort="ascending"' in page


@pytest.mark.parametrize(
    "query",
    [
        "?tri=message__subject",
        "?tri=objet&ordre=sideways",
        "?tri=objet&page=-3",
        "?page=999999999",
    ],
)
def test_an_unknown_sort_falls_back_to_the_default(
    claire: Person, julien: Person, query: str
) -> None:
    _received(julien.box, claire.box, 2)
    response = login(claire.user).get(
        reverse("webmail_folder", args=[_inbox(claire.box).pk]) + query
    )
    assert response.status_code == 200
    assert len(response.context["rows"]) == 2


# --------------------------------------------------------------------------- new mail


def test_the_list_hears_of_new_mail_since_the_newest_shown(claire: Person, julien: Person) -> None:
    _received(julien.box, claire.box, 1)
    client = login(claire.user)
    inbox = _inbox(claire.box)
    page = client.get(reverse("webmail_folder", args=[inbox.pk]))
    probe = page.context["new_mail_url"]
    assert client.get(probe).json() == {"count": 0, "text": ""}
    send(julien.box, [claire.box.address], subject="Nouveau")
    send(julien.box, [claire.box.address], subject="Nouveau 2")
    answer = client.get(probe).json()
    assert answer == {"count": 2, "text": "2 nouveaux messages"}


def test_the_new_mail_probe_is_confined_and_bounded(
    claire: Person, julien: Person, paul: Person
) -> None:
    _received(julien.box, claire.box, 1)
    url = reverse("webmail_new_mail", args=[_inbox(claire.box).pk])
    assert login(paul.user).get(url + "?depuis=0-0").status_code == 404
    client = login(claire.user)
    for cursor in ["", "abc", "1-", "-1", "9" * 30 + "-1", "0-0' OR 1=1"]:
        response = client.get(url, {"depuis": cursor})
        assert response.status_code == 200
    assert client.get(url, {"depuis": "0-0"}).json()["count"] == 1


# --------------------------------------------------------------------------- results by patient


def _patient(user: User) -> xdm.Patient:
    identity = user.patient
    return xdm.Patient(
        ins=identity.ins,
        oid=identity.oid,
        birth_name=identity.birth_name,
        first_names=identity.first_names,
        birth_date=identity.birth_date.strftime("%Y%m%d"),
        sex=identity.sex,
    )


def _lab_result(lab: Lab, to: Mailbox, patient: xdm.Patient, subject: str = "Résultats") -> Message:
    package = xdm.build(
        [xdm.Document("cr.pdf", "application/pdf", PDF, "11502-2", "Compte rendu de biologie")],
        patient=patient,
        author=xdm.Author("810000000001", "BERNARD", "Sophie"),
        source_oid="2.25.1",
    )
    attachment = mime.Attachment(xdm.FILENAME, "application/zip", package)
    return send(lab.box, [to.address], subject=subject, attachments=[attachment])


def test_a_lab_result_is_grouped_by_the_patient_its_package_names(
    claire: Person, lucie: Person, laboratoire: Lab
) -> None:
    message = _lab_result(laboratoire, claire.box, _patient(lucie.user))
    ins = lucie.user.patient.ins
    assert message.patient_ins == ins
    client = login(claire.user)
    page = client.get(reverse("webmail_folder", args=[_inbox(claire.box).pk])).content.decode()
    # The chip names the patient the database knows, and leads to all her results.
    assert "MOREAU" in page
    assert reverse("webmail_patient_results", args=[claire.box.pk, ins]) in page


def test_results_by_patient_count_and_filter(
    claire: Person, julien: Person, lucie: Person, laboratoire: Lab
) -> None:
    first = _lab_result(laboratoire, claire.box, _patient(lucie.user), "NFS")
    _lab_result(laboratoire, claire.box, _patient(lucie.user), "Ionogramme")
    send(julien.box, [claire.box.address], subject="Sans patient")
    entry = Entry.objects.get(mailbox=claire.box, message=first)
    services.set_flags([entry], by=claire.user, seen=True)
    client = login(claire.user)
    ins = lucie.user.patient.ins
    listing = client.get(reverse("webmail_patients", args=[claire.box.pk]))
    assert listing.status_code == 200
    (patient,) = listing.context["patients"]
    assert (patient.ins, patient.total, patient.unread) == (ins, 2, 1)
    assert "MOREAU" in patient.label
    results = client.get(reverse("webmail_patient_results", args=[claire.box.pk, ins]))
    assert [r.entry.message.subject for r in results.context["rows"]] == ["Ionogramme", "NFS"]
    # With the selection's actions: all her results marked read in one request.
    ids = [r.entry.pk for r in results.context["rows"]]
    _bulk(client, claire.box, "lu", ids)
    assert not Entry.objects.filter(pk__in=ids, seen=False).exists()


def test_an_unknown_patient_shows_as_a_formatted_ins(claire: Person, laboratoire: Lab) -> None:
    unknown = xdm.Patient("284127512345678", "1.2.250.1.213.1.4.10", "INCONNU", "Jeanne")
    _lab_result(laboratoire, claire.box, unknown)
    page = login(claire.user).get(reverse("webmail_patients", args=[claire.box.pk]))
    (patient,) = page.context["patients"]
    assert patient.label == "2 84 12 75 123 456 78"
    assert "INCONNU" not in page.content.decode()


def test_a_package_under_another_oid_names_no_patient(claire: Person, laboratoire: Lab) -> None:
    other = xdm.Patient("284127512345678", "1.2.3.4", "AUTRE", "Jeanne")
    assert _lab_result(laboratoire, claire.box, other).patient_ins == ""


def test_results_by_patient_are_confined_to_the_box(
    claire: Person, paul: Person, lucie: Person, laboratoire: Lab
) -> None:
    _lab_result(laboratoire, claire.box, _patient(lucie.user))
    ins = lucie.user.patient.ins
    # Paul has no result of hers: his own box shows none, and Claire's box is not his.
    other = login(paul.user)
    assert other.get(reverse("webmail_patients", args=[claire.box.pk])).status_code == 404
    assert (
        other.get(reverse("webmail_patient_results", args=[claire.box.pk, ins])).status_code == 404
    )
    assert other.get(reverse("webmail_patient_results", args=[paul.box.pk, ins])).status_code == 404
    assert other.get(reverse("webmail_patients", args=[paul.box.pk])).context["patients"] == []


@pytest.mark.parametrize("ins", ["x", "1" * 16, "<script>", "%2e%2e", "2841275123456 7"])
def test_a_malformed_ins_is_not_found(claire: Person, ins: str) -> None:
    url = reverse("webmail_patients", args=[claire.box.pk]) + ins + "/"
    assert login(claire.user).get(url).status_code == 404


def test_results_by_patient_cost_the_same_queries_for_more_patients(
    claire: Person, lucie: Person, laboratoire: Lab
) -> None:
    client = login(claire.user)
    url = reverse("webmail_patients", args=[claire.box.pk])
    _lab_result(laboratoire, claire.box, _patient(lucie.user))
    client.get(url)  # the session's first request does more (the login's own work)
    with CaptureQueriesContext(connection) as few:
        client.get(url)
    for n in range(4):
        ins = f"28412751234{n:04d}"
        _lab_result(laboratoire, claire.box, xdm.Patient(ins, "1.2.250.1.213.1.4.10", "X", "Y"))
    with CaptureQueriesContext(connection) as more:
        page = client.get(url)
    assert len(page.context["patients"]) == 5
    assert len(more.captured_queries) == len(few.captured_queries)


@pytest.mark.parametrize(
    "target", ["-99999999999999999999999", "https://evil.example/", "//evil.example/x"]
)
def test_a_hostile_next_goes_back_to_the_list(claire: Person, julien: Person, target: str) -> None:
    entries = _received(julien.box, claire.box, 1)
    client = login(claire.user)
    response = _bulk(client, claire.box, "lu", [entries[0].pk], next=target)
    assert response.status_code == 302
    assert response["Location"] == reverse("webmail_folder", args=[_inbox(claire.box).pk])
    inbox = _inbox(claire.box)
    response = client.post(reverse("webmail_folder_read", args=[inbox.pk]), {"next": target})
    assert response["Location"] == reverse("webmail_folder", args=[inbox.pk])
