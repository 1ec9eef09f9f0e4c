"""Mailboxes, submission, delivery, folders, flags and drafts through the services."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from django.core.exceptions import ValidationError
from django.utils import timezone

from accounts.models import User
from audit import journal
from audit.models import AuditEvent
from mailboxes import blobs, reasons, services
from mailboxes.models import Delivery, Draft, DraftAttachment, Entry, Folder, Mailbox, Message
from mailboxes.services import queue
from mssante.lib import mime
from tests import factories
from tests.personas import committed, send, submit

pytestmark = pytest.mark.django_db


def stored_nothing() -> bool:
    return not (Message.objects.exists() or Delivery.objects.exists() or _blob_files())


def _blob_files() -> list[str]:
    root = blobs.storage().path("")
    import os

    return [f for _d, _s, files in os.walk(root) for f in files]


# --------------------------------------------------------------------------- mailboxes


def test_it_proposes_an_address_without_accents() -> None:
    domain = factories.hosted_domain("hopital.mssante.test")
    assert (
        services.propose_address("Hélène", "Lefèvre-Dœuf", domain)
        == "helene.lefevre-doeuf@hopital.mssante.test"
    )


def test_it_numbers_colliding_addresses() -> None:
    domain = factories.hosted_domain("hopital.mssante.test")
    first = factories.mailbox(
        factories.professional(first_name="Anne", last_name="Roy", enrol=False), domain=domain
    )
    second = factories.mailbox(
        factories.professional(first_name="Anne", last_name="Roy", enrol=False), domain=domain
    )
    third = factories.mailbox(
        factories.professional(first_name="Anne", last_name="Roy", enrol=False), domain=domain
    )
    assert [first.address, second.address, third.address] == [
        "anne.roy@hopital.mssante.test",
        "anne.roy.2@hopital.mssante.test",
        "anne.roy.3@hopital.mssante.test",
    ]


def test_a_personal_mailbox_gets_the_five_system_folders_and_an_audit_event(
    doctor: Mailbox,
) -> None:
    roles = set(doctor.folders.values_list("role", flat=True))
    assert roles == {"inbox", "sent", "drafts", "trash", "archive"}
    assert AuditEvent.objects.filter(action="mailbox.created", object_id=str(doctor.pk)).exists()


def test_staff_may_choose_another_address() -> None:
    user = factories.professional(enrol=False)
    box = factories.mailbox(user, address="Dr.Lefevre@hopital.mssante.test")
    assert box.address == "dr.lefevre@hopital.mssante.test"


def test_it_refuses_a_mailbox_to_an_ineligible_professional() -> None:
    # 35, aide-soignant, is not in the professions the trust space admits.
    user = factories.professional(profession="35", enrol=False)
    with pytest.raises(services.MailboxError, match="ne donne pas droit"):
        factories.mailbox(user)
    assert not Mailbox.objects.exists()


def test_it_refuses_a_mailbox_to_a_patient() -> None:
    with pytest.raises(services.MailboxError, match="professionnel"):
        services.create_personal_mailbox(factories.patient(enrol=False), factories.hosted_domain())


def test_it_refuses_an_address_already_taken(doctor: Mailbox) -> None:
    with pytest.raises(services.MailboxError, match="déjà prise"):
        factories.mailbox(address=doctor.address)


def test_the_address_and_type_of_a_mailbox_never_change(doctor: Mailbox) -> None:
    doctor.address = "autre@hopital.mssante.test"
    with pytest.raises(ValidationError):
        doctor.save()


# --------------------------------------------------------------------------- submission


def test_a_message_reaches_the_recipient_inbox_unread(doctor: Mailbox, nurse: Mailbox) -> None:
    message = send(doctor, [nurse.address])
    entry = Entry.objects.get(mailbox=nurse, message=message)
    assert entry.folder.role == Folder.Role.INBOX
    assert not entry.seen
    assert Delivery.objects.get(message=message).status == Delivery.Status.DELIVERED


def test_the_sender_keeps_a_seen_copy_in_sent(doctor: Mailbox, nurse: Mailbox) -> None:
    message = send(doctor, [nurse.address])
    entry = Entry.objects.get(mailbox=doctor, message=message)
    assert entry.folder.role == Folder.Role.SENT
    assert entry.seen


def test_no_antivirus_yet_means_not_scanned_never_clean(doctor: Mailbox, nurse: Mailbox) -> None:
    message = send(doctor, [nurse.address])
    message.refresh_from_db()
    assert message.scan_status == Message.ScanStatus.NOT_SCANNED


def test_recipients_are_deduplicated_case_insensitively(doctor: Mailbox, nurse: Mailbox) -> None:
    message = send(doctor, [nurse.address, nurse.address.upper()], cc=[f"  {nurse.address} "])
    assert Delivery.objects.filter(message=message).count() == 1
    assert message.to_addrs == [nurse.address]
    assert message.cc_addrs == []
    assert Entry.objects.filter(mailbox=nurse).count() == 1


def test_a_reply_joins_the_thread_and_marks_the_original_answered(
    doctor: Mailbox, nurse: Mailbox
) -> None:
    first = send(doctor, [nurse.address])
    reply = send(nurse, [doctor.address], subject="RE: Compte rendu", in_reply_to=first)
    assert reply.thread_key == first.thread_key
    assert reply.in_reply_to == first.message_id
    assert services.parse(reply).references == [first.message_id]
    assert Entry.objects.get(mailbox=nurse, message=first).answered
    third = send(doctor, [nurse.address], in_reply_to=reply)
    assert services.parse(third).references == [first.message_id, reply.message_id]
    assert third.thread_key == first.thread_key


def test_submission_is_audited_without_content(doctor: Mailbox, nurse: Mailbox) -> None:
    message = send(doctor, [nurse.address], subject="Secret-sujet", text="Secret-corps")
    event = AuditEvent.objects.get(action="message.submitted", object_id=str(message.pk))
    assert "Secret" not in str(event.data)
    assert AuditEvent.objects.filter(action="message.delivered").exists()


@pytest.mark.parametrize(
    ("to", "cc", "words"),
    [
        ([], [], "au moins un destinataire"),
        (["  "], [""], "au moins un destinataire"),
        (["pas-une-adresse"], [], "« pas-une-adresse » n'est pas une adresse valide"),
        (["a@b@hopital.mssante.test"], [], "n'est pas une adresse valide"),
        (["personne@hopital.mssante.test"], [], "Aucune boîte aux lettres"),
        (["quelquun@autre-operateur.fr"], [], "hors de l'espace de confiance"),
        (["a" * 250 + "@hopital.mssante.test"], [], "n'est pas une adresse valide"),
    ],
)
def test_bad_recipients_are_refused_with_a_message_naming_the_problem(
    doctor: Mailbox, to: list[str], cc: list[str], words: str
) -> None:
    with pytest.raises(services.SubmissionError, match=words):
        submit(doctor, to, cc=cc)
    assert stored_nothing()


def test_a_closed_recipient_mailbox_is_refused(doctor: Mailbox, nurse: Mailbox) -> None:
    Mailbox.objects.filter(pk=nurse.pk).update(status=Mailbox.Status.CLOSED)
    with pytest.raises(services.SubmissionError, match="est fermée"):
        submit(doctor, [nurse.address])
    assert stored_nothing()


def test_an_oversize_message_is_refused_and_nothing_is_stored(
    doctor: Mailbox, nurse: Mailbox, settings: Any
) -> None:
    settings.MESSAGE_MAX_BYTES = 50_000
    big = mime.Attachment("scanner.dcm", "application/dicom", b"x" * 45_000)
    with pytest.raises(services.SubmissionError, match="trop volumineux"):
        submit(doctor, [nurse.address], attachments=[big])
    assert stored_nothing()


def test_a_21st_attachment_is_refused_and_nothing_is_stored(
    doctor: Mailbox, nurse: Mailbox
) -> None:
    files = [mime.Attachment(f"f{i}.txt", "text/plain", b"x") for i in range(21)]
    with pytest.raises(services.SubmissionError, match="Trop de pièces jointes : 21"):
        submit(doctor, [nurse.address], attachments=files)
    assert stored_nothing()


def test_a_failed_transaction_leaves_no_orphan_blob(
    doctor: Mailbox, nurse: Mailbox, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(*args: Any, **kwargs: Any) -> None:
        raise RuntimeError("database gone")

    monkeypatch.setattr(journal, "record", broken)
    with pytest.raises(RuntimeError):
        submit(doctor, [nurse.address])
    assert stored_nothing()


# --------------------------------------------------------------------------- pipeline


def test_delivering_twice_gives_one_entry(doctor: Mailbox, nurse: Mailbox) -> None:
    message = send(doctor, [nurse.address])
    delivery = Delivery.objects.get(message=message)
    services.deliver(delivery.pk)
    Delivery.objects.filter(pk=delivery.pk).update(status=Delivery.Status.QUEUED)
    services.deliver(delivery.pk)
    assert Entry.objects.filter(mailbox=nurse, message=message).count() == 1


def test_a_batch_delivers_every_recipient_with_one_journal_event(
    doctor: Mailbox, nurse: Mailbox, monkeypatch: pytest.MonkeyPatch
) -> None:
    others = [factories.mailbox() for _ in range(3)]
    monkeypatch.setattr(queue, "enqueue", lambda *a: None)
    message = submit(doctor, [nurse.address, *(b.address for b in others)])
    ids = list(Delivery.objects.filter(message=message).values_list("pk", flat=True))
    # One task scans the message and delivers all its recipients in one transaction.
    assert services.process([message.pk]) == 4
    assert services.process([message.pk]) == 0  # a second run finds nothing left to do
    assert services.deliver_many(ids) == 0
    assert Entry.objects.filter(message=message, folder__role=Folder.Role.INBOX).count() == 4
    (event,) = AuditEvent.objects.filter(action="message.delivered")
    assert sorted(event.data["deliveries"]) == sorted(ids)


def test_a_delivery_waits_for_the_scan(
    doctor: Mailbox, nurse: Mailbox, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(queue, "enqueue", lambda *a: None)
    message = submit(doctor, [nurse.address])
    services.deliver(Delivery.objects.get(message=message).pk)
    assert not Entry.objects.filter(mailbox=nurse).exists()
    assert Delivery.objects.get(message=message).status == Delivery.Status.QUEUED


def test_the_sweeper_recovers_a_lost_scan_and_its_deliveries(
    doctor: Mailbox, nurse: Mailbox, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The broker lost the first scan: nothing is enqueued at commit.
    monkeypatch.setattr(queue, "enqueue", lambda *a: None)
    message = send(doctor, [nurse.address])
    monkeypatch.undo()
    assert services.sweep() == 0  # not stuck yet: within the retry delay
    later = timezone.now() + timedelta(minutes=2)
    assert committed(services.sweep, now=later) >= 1
    assert Entry.objects.filter(mailbox=nurse, message=message).count() == 1
    assert Delivery.objects.get(message=message).status == Delivery.Status.DELIVERED


def test_the_sweeper_ignores_deliveries_that_are_done(doctor: Mailbox, nurse: Mailbox) -> None:
    send(doctor, [nurse.address])
    assert services.sweep(now=timezone.now() + timedelta(hours=1)) == 0


def test_a_mailbox_closed_before_delivery_bounces(
    doctor: Mailbox, nurse: Mailbox, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(queue, "enqueue", lambda *a: None)
    message = submit(doctor, [nurse.address])
    Mailbox.objects.filter(pk=nurse.pk).update(status=Mailbox.Status.CLOSED)
    services.scan(message.pk)
    delivery = Delivery.objects.get(message=message)
    services.deliver(delivery.pk)
    delivery.refresh_from_db()
    assert delivery.status == Delivery.Status.BOUNCED
    assert delivery.reason == reasons.MAILBOX_UNAVAILABLE
    assert "fermée" in delivery.reason_text
    assert not Entry.objects.filter(mailbox=nurse).exists()


# --------------------------------------------------------------------------- folders and flags


def test_folders_are_created_renamed_and_deleted_when_empty(doctor: Mailbox) -> None:
    owner = doctor.owner
    folder = services.create_folder(doctor, "  Patients   suivis ", by=owner)
    assert folder.name == "Patients suivis"
    services.rename_folder(folder, "Suivis", by=owner)
    services.delete_folder(folder, by=owner)
    assert not Folder.objects.filter(pk=folder.pk).exists()


@pytest.mark.parametrize(
    ("name", "words"),
    [("", "Donnez un nom"), ("corbeille", "existe déjà"), ("x" * 101, "trop long")],
)
def test_bad_folder_names_are_refused(doctor: Mailbox, name: str, words: str) -> None:
    with pytest.raises(services.FolderError, match=words):
        services.create_folder(doctor, name, by=doctor.owner)


def test_messages_cannot_be_moved_into_drafts(doctor: Mailbox, nurse: Mailbox) -> None:
    send(doctor, [nurse.address])
    drafts = services.folder_of(nurse, Folder.Role.DRAFTS)
    with pytest.raises(services.FolderError, match="brouillons"):
        services.move_entries(Entry.objects.filter(mailbox=nurse), drafts, by=nurse.owner)


def test_a_message_to_oneself_stays_once_in_sent(doctor: Mailbox) -> None:
    message = send(doctor, [doctor.address])
    assert Entry.objects.get(mailbox=doctor, message=message).folder.role == Folder.Role.SENT
    assert Delivery.objects.get(message=message).status == Delivery.Status.DELIVERED


def test_system_folders_cannot_be_renamed_or_deleted(doctor: Mailbox) -> None:
    inbox = services.folder_of(doctor, Folder.Role.INBOX)
    with pytest.raises(services.FolderError):
        services.rename_folder(inbox, "Autre", by=doctor.owner)
    with pytest.raises(services.FolderError):
        services.delete_folder(inbox, by=doctor.owner)


def test_a_folder_holding_messages_is_not_deleted(doctor: Mailbox, nurse: Mailbox) -> None:
    send(doctor, [nurse.address])
    folder = services.create_folder(nurse, "Dossiers", by=nurse.owner)
    services.move_entries(Entry.objects.filter(mailbox=nurse), folder, by=nurse.owner)
    with pytest.raises(services.FolderError, match="n'est pas vide"):
        services.delete_folder(folder, by=nurse.owner)


def test_trash_remembers_the_folder_and_restore_puts_it_back(
    doctor: Mailbox, nurse: Mailbox
) -> None:
    send(doctor, [nurse.address])
    archive = services.folder_of(nurse, Folder.Role.ARCHIVE)
    entries = Entry.objects.filter(mailbox=nurse)
    services.move_entries(entries, archive, by=nurse.owner)
    services.trash_entries(Entry.objects.filter(mailbox=nurse), by=nurse.owner)
    entry = Entry.objects.get(mailbox=nurse)
    assert entry.folder.role == Folder.Role.TRASH
    assert entry.previous_folder == archive
    services.restore_entries([entry], by=nurse.owner)
    entry.refresh_from_db()
    assert entry.folder == archive
    assert entry.previous_folder is None
    assert AuditEvent.objects.filter(action="entries.trashed").exists()


def test_emptying_the_trash_purges_messages_nobody_holds(doctor: Mailbox, nurse: Mailbox) -> None:
    message = send(doctor, [nurse.address])
    services.trash_entries(Entry.objects.filter(mailbox=nurse), by=nurse.owner)
    assert services.empty_trash(nurse, by=nurse.owner) == 1
    assert Message.objects.filter(pk=message.pk).exists()  # the sender still holds it
    services.trash_entries(Entry.objects.filter(mailbox=doctor), by=doctor.owner)
    committed(services.empty_trash, doctor, by=doctor.owner)
    assert not Message.objects.filter(pk=message.pk).exists()
    assert _blob_files() == []


def test_flags_are_set_and_cleared_and_reading_is_noted(doctor: Mailbox, nurse: Mailbox) -> None:
    message = send(doctor, [nurse.address])
    entry = Entry.objects.get(mailbox=nurse)
    services.set_flags([entry], by=nurse.owner, seen=True, flagged=True)
    entry.refresh_from_db()
    assert entry.seen and entry.flagged
    assert Delivery.objects.get(message=message).read_at is not None
    services.set_flags([entry], by=nurse.owner, flagged=False)
    entry.refresh_from_db()
    assert entry.seen and not entry.flagged


# --------------------------------------------------------------------------- drafts


def test_a_draft_round_trips_sealed(doctor: Mailbox) -> None:
    draft = services.save_draft(
        mailbox=doctor,
        author=doctor.owner,
        draft=None,
        to=["pas-encore"],
        cc=[],
        subject="Brouillon",
        text="Début",
    )
    draft = services.save_draft(
        mailbox=doctor,
        author=doctor.owner,
        draft=draft,
        to=["x@y"],
        cc=["z@w"],
        subject="Sujet",
        text="Suite",
    )
    content = services.open_draft(Draft.objects.get(pk=draft.pk))
    assert (content.to, content.cc, content.subject, content.text) == (
        ["x@y"],
        ["z@w"],
        "Sujet",
        "Suite",
    )
    assert b"Suite" not in bytes(Draft.objects.get(pk=draft.pk).sealed or b"")


def test_a_draft_is_sent_with_its_files_then_deleted(doctor: Mailbox, nurse: Mailbox) -> None:
    draft = services.save_draft(
        mailbox=doctor,
        author=doctor.owner,
        draft=None,
        to=[nurse.address],
        cc=[],
        subject="Résultats",
        text="Ci-joint.",
    )
    services.add_draft_attachment(
        draft, "../../résultats.pdf", "application/pdf", b"%PDF-1.4 data", by=draft.author
    )
    message = committed(services.send_draft, draft, by=doctor.owner)
    assert not Draft.objects.filter(pk=draft.pk).exists()
    assert not DraftAttachment.objects.exists()
    assert [a["filename"] for a in message.attachments] == ["résultats.pdf"]
    assert Entry.objects.filter(mailbox=nurse, message=message).exists()


def test_a_refused_draft_stays_a_draft(doctor: Mailbox) -> None:
    draft = services.save_draft(
        mailbox=doctor,
        author=doctor.owner,
        draft=None,
        to=["inconnu@hopital.mssante.test"],
        cc=[],
        subject="",
        text="",
    )
    with pytest.raises(services.SubmissionError):
        services.send_draft(draft, by=doctor.owner)
    assert Draft.objects.filter(pk=draft.pk).exists()


def test_forwarding_carries_the_attachments(doctor: Mailbox, nurse: Mailbox) -> None:
    original = send(
        doctor,
        [nurse.address],
        attachments=[mime.Attachment("bilan.pdf", "application/pdf", b"%PDF bilan")],
    )
    draft = services.save_draft(
        mailbox=nurse,
        author=nurse.owner,
        draft=None,
        to=[],
        cc=[],
        subject="TR: Compte rendu",
        text="",
        forward_of=original,
    )
    files = list(draft.files.all())
    assert [f.filename for f in files] == ["bilan.pdf"]
    assert services.read_draft_attachment(files[0]) == b"%PDF bilan"
    assert services.open_draft(draft).forward_of_id == original.pk


def test_draft_attachment_limits_are_checked(doctor: Mailbox, settings: Any) -> None:
    settings.MESSAGE_MAX_ATTACHMENTS = 1
    draft = services.save_draft(
        mailbox=doctor, author=doctor.owner, draft=None, to=[], cc=[], subject="", text=""
    )
    att = services.add_draft_attachment(draft, "a.txt", "text/plain", b"a", by=draft.author)
    with pytest.raises(services.DraftError, match="Pas plus de 1"):
        services.add_draft_attachment(draft, "b.txt", "text/plain", b"b", by=draft.author)
    services.remove_draft_attachment(att, by=att.draft.author)
    settings.MESSAGE_MAX_BYTES = 1000
    with pytest.raises(services.DraftError, match="dépasserait"):
        services.add_draft_attachment(
            draft, "gros.bin", "application/octet-stream", b"x" * 1000, by=draft.author
        )


def test_a_user_is_never_needed_for_system_folder_names(doctor: Mailbox) -> None:
    assert services.folder_of(doctor, Folder.Role.INBOX).name == "Boîte de réception"
    assert isinstance(doctor.owner, User)
