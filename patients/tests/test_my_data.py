"""Mes données: the archive of everything in the space, and closing the space."""

from __future__ import annotations

import csv
import io
import json
import zipfile
from collections.abc import Iterator
from datetime import timedelta
from unittest import mock

import icalendar
import pytest
import time_machine
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from accounts.models import User
from audit.models import AuditEvent
from mailboxes import blobs
from mailboxes import services as mailbox_services
from mailboxes.models import Entry, Mailbox, Message
from mssante.lib import crypto, mime
from patients import archive, tasks
from patients.archive import ArchiveContext, add_archive_section
from patients.models_documents import PatientDocument
from patients.tests.conftest import PDF, Space
from patients.tests.test_agenda import ics
from patients.tests.test_documents import PNG, _add
from tests import factories
from tests.personas import Lab, login

pytestmark = pytest.mark.django_db


def download(user: User) -> zipfile.ZipFile:
    response = login(user).get(reverse("patients:archive"))
    assert response.status_code == 200
    assert response["Content-Type"] == "application/zip"
    assert response["Content-Disposition"].startswith('attachment; filename="mon-espace-sante-')
    return zipfile.ZipFile(io.BytesIO(b"".join(response.streaming_content)))


def conversation(space: Space) -> list[Message]:
    """Two messages from the doctor, one with a PDF, and the patient's answer."""
    first = space.send(
        space.doctor_box,
        [space.patient_box.address],
        subject="Résultats de prise de sang",
        attachments=[mime.Attachment("bilan.pdf", "application/pdf", PDF)],
    )
    second = space.send(space.nurse_box, [space.patient_box.address], subject="Rendez-vous")
    entry = space.entry(space.patient_box, first)
    space.run(
        login(space.patient).post,
        reverse("patients:reply", args=[entry.pk]),
        {"text": "Merci docteur."},
    )
    answer = Message.objects.get(sender_mailbox=space.patient_box)
    return [first, second, answer]


def test_the_archive_holds_every_message_of_the_box_and_nothing_of_another_patient(
    space: Space,
) -> None:
    mine = conversation(space)
    space.send(space.doctor_box, [space.other_box.address], subject="Secret de l'autre patient")
    zf = download(space.patient)
    names = zf.namelist()
    emls = sorted(n for n in names if n.endswith(".eml"))
    assert len(emls) == Entry.objects.filter(mailbox=space.patient_box).count() == 3
    # Each .eml is the message as stored (decrypted raw MIME), in date order.
    raws = {mailbox_services.read_raw(m) for m in mine}
    assert {zf.read(n) for n in emls} == raws
    index = json.loads(zf.read("messages/index.json"))
    assert [i["objet"] for i in index] == [m.subject for m in mine]
    assert index[2]["sens"] == "envoyé" and index[0]["sens"] == "reçu"
    rows = list(
        csv.reader(io.StringIO(zf.read("messages/index.csv").decode("utf-8-sig")), delimiter=";")
    )
    assert rows[0][0] == "numero" and len(rows) == 4
    exchanges = zf.read("echanges/echanges.csv").decode("utf-8-sig")
    assert "Résultats de prise de sang" in exchanges and "Vous avez répondu" in exchanges
    readme = zf.read("README.txt").decode()
    assert "messages/" in readme and "echanges/" in readme
    for name in names:
        assert b"Secret de l'autre patient" not in zf.read(name), name


def test_each_download_is_journaled_without_content(space: Space) -> None:
    conversation(space)
    download(space.patient)
    event = AuditEvent.objects.get(action="patient.archive_downloaded")
    assert event.actor_id == space.patient.pk
    assert "Résultats" not in json.dumps(event.data, ensure_ascii=False)


def test_a_message_held_by_the_antivirus_is_listed_not_joined(space: Space) -> None:
    held = space.send(space.doctor_box, [space.patient_box.address], subject="Piégé")
    Message.objects.filter(pk=held.pk).update(scan_status=Message.ScanStatus.INFECTED)
    zf = download(space.patient)
    assert not [n for n in zf.namelist() if n.endswith(".eml")]
    index = json.loads(zf.read("messages/index.json"))
    assert index[0]["retenu_par_antivirus"] is True and index[0]["fichier"] == ""


def test_the_services_choices_are_in_the_archive(space: Space, laboratoire: Lab) -> None:
    login(space.patient).post(
        reverse("patients:service_change", args=[laboratoire.box.pk]), {"allow": "0"}
    )
    zf = download(space.patient)
    choices = zf.read("echanges/services-connectes.csv").decode("utf-8-sig")
    assert laboratoire.box.address in choices and "retiré" in choices


@pytest.fixture
def extra_section() -> Iterator[None]:
    def write(ctx: ArchiveContext) -> None:
        ctx.write_text("essai/essai.txt", f"X-OWNER:{ctx.patient.pk}\n")

    add_archive_section("essai", write, readme="essai/ : une partie de plus.")
    yield
    archive._sections.pop("essai")


def test_another_part_of_the_space_plugs_its_section_in(space: Space, extra_section: None) -> None:
    zf = download(space.patient)
    assert zf.read("essai/essai.txt").decode() == f"X-OWNER:{space.patient.pk}\n"
    assert "essai/ : une partie de plus." in zf.read("README.txt").decode()


def test_the_archive_holds_the_documents_and_the_agenda(space: Space) -> None:
    invitation = ics(space.doctor_box.address, space.patient_box.address)
    space.send(
        space.doctor_box,
        [space.patient_box.address],
        subject="Votre rendez-vous et votre compte rendu",
        attachments=[
            mime.Attachment("invitation.ics", "text/calendar", invitation),
            mime.Attachment("compte-rendu.pdf", "application/pdf", PDF),
        ],
    )
    client = login(space.patient)
    assert _add(client, "../scan?.png", PNG, "image/png", title="Mon ordonnance").status_code == 302
    hidden = PatientDocument.objects.get(patient=space.patient, message__isnull=False)
    hidden.hidden_at = timezone.now()
    hidden.save(update_fields=["hidden_at"])

    zf = download(space.patient)
    names = zf.namelist()
    files = sorted(n for n in names if n.startswith("documents/") and n != "documents/index.csv")
    assert len(files) == 2 and all("/" not in n.removeprefix("documents/") for n in files)
    assert {zf.read(n) for n in files} == {PDF, PNG}
    index = zf.read("documents/index.csv").decode("utf-8-sig")
    assert "Mon ordonnance" in index and "Ajouté par vous" in index and ";oui;" in index
    calendar = icalendar.Calendar.from_ical(zf.read("agenda/agenda.ics"))
    (event,) = calendar.walk("VEVENT")
    assert str(event["UID"]) == "rdv-17@cabinet-martin"
    assert "Consultation de suivi diabète" in zf.read("agenda/index.csv").decode("utf-8-sig")
    readme = zf.read("README.txt").decode()
    assert "documents/" in readme and "agenda/" in readme


def test_only_a_patient_gets_an_archive(space: Space) -> None:
    assert login(space.doctor).get(reverse("patients:archive")).status_code == 404
    assert Client().get(reverse("patients:archive")).status_code == 302
    assert not AuditEvent.objects.filter(action="patient.archive_downloaded").exists()


# --- Closing the space ---------------------------------------------------------------------


def close(client: Client, password: str = factories.PASSWORD, confirm: bool = True) -> object:
    data = {"password": password}
    if confirm:
        data["confirm"] = "on"
    return client.post(reverse("patients:close_space"), data)


def test_closing_the_space_closes_the_box_and_the_account_and_signs_out(space: Space) -> None:
    conversation(space)
    client = login(space.patient)
    response = close(client)
    assert response.status_code == 200
    assert "Votre espace est fermé" in response.content.decode()
    space.patient.refresh_from_db()
    space.patient_box.refresh_from_db()
    assert space.patient.status == User.Status.CLOSED
    assert space.patient_box.status == Mailbox.Status.CLOSED
    # Signed out: the space asks to sign in again.
    assert client.get(reverse("patient_home")).status_code == 302
    # The messages are kept (sealed), not deleted.
    assert Entry.objects.filter(mailbox=space.patient_box).count() == 3
    actions = set(AuditEvent.objects.values_list("action", flat=True))
    assert {"patient.space_closed", "account.closed", "mailbox.closed"} <= actions
    assert AuditEvent.objects.get(action="patient.space_closed").actor_id == space.patient.pk


def test_after_closing_login_is_refused_and_professionals_are_told(space: Space) -> None:
    close(login(space.patient))
    before = Message.objects.count()
    page = Client().post(
        reverse("accounts:login"),
        {"identifier": space.patient.username, "password": factories.PASSWORD},
    )
    assert page.status_code == 403 and "clôturé" in page.content.decode()
    with pytest.raises(mailbox_services.SubmissionError, match="cette boîte est fermée"):
        space.send(space.doctor_box, [space.patient_box.address], subject="Après la fermeture")
    assert Message.objects.count() == before


def test_a_wrong_password_or_no_confirmation_closes_nothing(space: Space) -> None:
    client = login(space.patient)
    wrong = close(client, password="pas-le-bon")
    assert wrong.status_code == 400 and "Mot de passe incorrect" in wrong.content.decode()
    unconfirmed = close(client, confirm=False)
    assert unconfirmed.status_code == 400
    assert "Cochez cette case" in unconfirmed.content.decode()
    space.patient.refresh_from_db()
    assert space.patient.status == User.Status.ACTIVE
    assert not AuditEvent.objects.filter(action="patient.space_closed").exists()


def test_guessing_the_password_locks_like_the_login_page(space: Space) -> None:
    client = login(space.patient)
    for _ in range(5):
        close(client, password="devine")
    locked = close(client)
    assert locked.status_code == 429
    space.patient.refresh_from_db()
    assert space.patient.status == User.Status.ACTIVE


def test_a_forged_close_without_csrf_is_refused(space: Space) -> None:
    response = close(login(space.patient, enforce_csrf_checks=True))
    assert response.status_code == 403
    space.patient.refresh_from_db()
    assert space.patient.status == User.Status.ACTIVE


def test_a_get_of_the_close_url_changes_nothing(space: Space) -> None:
    client = login(space.patient)
    assert client.get(reverse("patients:close_space")).status_code == 405
    page = client.get(reverse("patients:my_data"))
    assert page.status_code == 200 and "Fermer définitivement mon espace" in page.content.decode()


def test_an_unreadable_message_is_listed_and_the_rest_is_still_given(space: Space) -> None:
    mine = conversation(space)
    broken = mine[1]
    real = mailbox_services.read_raw

    def read(message: Message) -> bytes:
        if message.pk == broken.pk:
            raise crypto.BlobIntegrityError("altered")
        return real(message)

    with mock.patch.object(mailbox_services, "read_raw", read):
        zf = download(space.patient)
    assert len([n for n in zf.namelist() if n.endswith(".eml")]) == 2
    index = json.loads(zf.read("messages/index.json"))
    assert [i["illisible"] for i in index] == [False, True, False]


def test_seeding_the_demo_again_gives_the_demo_patient_her_space_back() -> None:
    from mssante import demo
    from patients import closing, connected_services

    demo.seed()
    patient = demo.patient_identity().user
    box = Mailbox.objects.get(owner=patient, kind=Mailbox.Kind.PATIENT)
    lab = Mailbox.objects.get(address="laboratoire@hopital-demo.mssante.fr")
    connected_services.set_allowed(box, lab, allowed=False, by=patient)
    closing.close_space(patient, by=patient)
    demo.seed()
    patient.refresh_from_db()
    box.refresh_from_db()
    assert patient.status == User.Status.ACTIVE and box.status == Mailbox.Status.ACTIVE
    assert all(s.allowed for s in connected_services.catalogue(box))


def test_a_closed_space_is_erased_once_its_retention_period_ends(space: Space) -> None:
    first, second, answer = conversation(space)
    client = login(space.patient)
    added = _add(client, "scan.png", PNG, "image/png", title="Ordonnance du Dr Petit")
    assert added.status_code == 302
    document = PatientDocument.objects.get(patient=space.patient, message__isnull=True)
    assert blobs.storage().exists(document.blob_name)
    assert PatientDocument.objects.filter(patient=space.patient, message=first).exists()
    close(client)

    # Within the period nothing goes: the space is sealed and unreachable, not erased.
    with time_machine.travel(timezone.now() + timedelta(days=89)):
        assert space.run(tasks.erase_closed_spaces) == 0
    assert Entry.objects.filter(mailbox=space.patient_box).count() == 3

    with time_machine.travel(timezone.now() + timedelta(days=91)):
        assert space.run(tasks.erase_closed_spaces) == 1
        # Run again (tomorrow's beat): nothing left to find.
        assert space.run(tasks.erase_closed_spaces) == 0
    assert not Entry.objects.filter(mailbox=space.patient_box).exists()
    assert not PatientDocument.objects.filter(patient=space.patient).exists()
    assert not blobs.storage().exists(document.blob_name)
    # The professionals' own copies stay theirs; the patient's answer was only hers.
    assert Entry.objects.filter(mailbox=space.doctor_box, message=first).exists()
    assert Entry.objects.filter(mailbox=space.nurse_box, message=second).exists()
    assert Entry.objects.filter(mailbox=space.doctor_box, message=answer).exists()
    event = AuditEvent.objects.get(action="patient.space_erased")
    assert event.data["entries"] == 3 and event.data["retention_days"] == 90
    # The address is never handed to another patient: the closed box and account remain.
    space.patient_box.refresh_from_db()
    assert space.patient_box.status == Mailbox.Status.CLOSED


def test_an_open_box_is_never_erased(space: Space) -> None:
    with pytest.raises(mailbox_services.FolderError):
        mailbox_services.erase_closed_mailbox(space.patient_box)
