"""The message store: real MIME, encrypted at rest, tamper-evident, rotatable keys."""

from __future__ import annotations

import base64
import hashlib
import os
from pathlib import Path
from typing import Any

import pytest
from django.core.management import call_command
from django.db import connection
from django.utils import timezone

from charter.models import AbuseReport
from charter.services import report_abuse
from mailboxes import blobs, selectors, services
from mailboxes.models import Draft, DraftAttachment, Mailbox, Message, Quarantine
from mailboxes.services.errors import FolderError
from mssante.lib import crypto, mime
from tests.personas import person, send, submit

pytestmark = pytest.mark.django_db

MARKER = "MARQUEUR-SECRET-7f3a9c"


# Names with accents, a ligature and a cedilla: they must survive the MIME round trip. No
# authenticator app: its sealed secret would need a master key the rotation test replaces.
@pytest.fixture
def doctor() -> Mailbox:
    return person("Hélène", "Lefèvre-Dœuf", enrol=False).box


@pytest.fixture
def nurse() -> Mailbox:
    return person("Jérôme", "Çelik", enrol=False).box


def blob_root() -> Path:
    return Path(blobs.storage().path(""))


def blob_files() -> dict[str, bytes]:
    root = blob_root()
    return {
        str(Path(d) / f): (Path(d) / f).read_bytes()
        for d, _s, files in os.walk(root)
        for f in files
    }


# --------------------------------------------------------------------------- MIME round trip


def test_accents_in_names_subject_body_and_filenames_survive_the_round_trip(
    doctor: Mailbox, nurse: Mailbox
) -> None:
    subject = "Résultats d'échographie — été 2026 ✓"
    text = "Bonjour Jérôme,\nvoici le compte rendu. Cœur : normal.\n"
    files = [
        mime.Attachment(
            "compte-rendu d'échographie été.pdf", "application/pdf", b"%PDF-1.4 \x00\xff"
        ),
        mime.Attachment("Ordonnance n°2 — ß.txt", "text/plain", "posologie : ½ cp".encode()),
    ]
    message = submit(doctor, [nurse.address], subject=subject, text=text, attachments=files)

    raw = services.read_raw(message)
    raw.decode("ascii")  # 7-bit on the wire: RFC 2047 headers, RFC 2231 names, encoded bodies
    assert b"=?utf-8?" in raw
    parsed = services.parse(message)
    assert parsed.from_ == ("Hélène Lefèvre-Dœuf", doctor.address)
    assert parsed.to == [("", nurse.address)]
    assert parsed.subject == subject
    assert parsed.text is not None and parsed.text.strip() == text.strip()
    assert parsed.message_id == message.message_id
    assert [a.filename for a in parsed.attachments] == [f.filename for f in files]
    for listed, original in zip(parsed.attachments, files, strict=True):
        assert mime.get_part(raw, listed.index).data == original.data
    assert [a["filename"] for a in message.attachments] == [f.filename for f in files]
    assert message.subject == subject
    assert message.from_name == "Hélène Lefèvre-Dœuf"


def test_an_html_alternative_is_kept_next_to_the_text(doctor: Mailbox, nurse: Mailbox) -> None:
    message = submit(doctor, [nurse.address], text="Texte", html="<p>Texte <b>gras</b></p>")
    parsed = services.parse(message)
    assert parsed.html is not None and "<b>gras</b>" in parsed.html
    assert parsed.text is not None and "Texte" in parsed.text


# --------------------------------------------------------------------------- encryption at rest


def _database_contains(needles: list[bytes]) -> list[str]:
    """Every place in the whole database where one of ``needles`` appears."""
    found = []
    if connection.vendor == "sqlite":
        # The in-memory test database serialised is exactly the database file's bytes.
        image = connection.connection.serialize()
        found += [f"sqlite image: {n!r}" for n in needles if n in image]
        return found
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT table_name, column_name, data_type FROM information_schema.columns "
            "WHERE table_schema = 'public' AND data_type IN "
            "('text', 'character varying', 'bytea', 'jsonb', 'json')"
        )
        columns = cursor.fetchall()
        for table, column, data_type in columns:
            for needle in needles:
                if data_type == "bytea":
                    sql = f'SELECT count(*) FROM "{table}" WHERE position(%s IN "{column}") > 0'  # noqa: S608
                    cursor.execute(sql, [needle])
                else:
                    sql = f'SELECT count(*) FROM "{table}" WHERE "{column}"::text LIKE %s'  # noqa: S608
                    cursor.execute(sql, ["%" + needle.decode("latin-1") + "%"])
                if cursor.fetchone()[0]:
                    found.append(f"{table}.{column}: {needle!r}")
    return found


def _forms(marker: str) -> list[bytes]:
    raw = marker.encode()
    # The marker as MIME may carry it: plain, base64 at each alignment, quoted-printable.
    forms = [raw, raw.upper(), raw.lower()]
    for shift in range(3):
        encoded = base64.b64encode(b"x" * shift + raw)[4 if shift else 0 :][:16]
        forms.append(encoded)
    return forms


def test_bodies_and_attachments_appear_nowhere_in_the_database_or_the_blob_folder(
    doctor: Mailbox, nurse: Mailbox, django_capture_on_commit_callbacks: Any
) -> None:
    with django_capture_on_commit_callbacks(execute=True):
        submit(
            doctor,
            [nurse.address],
            subject="Sujet en clair",
            text=f"Corps {MARKER} du message",
            html=f"<p>{MARKER}</p>",
            attachments=[
                mime.Attachment("analyse.txt", "text/plain", f"contenu {MARKER}".encode()),
                mime.Attachment("image.bin", "application/octet-stream", MARKER.encode() * 3),
            ],
        )
    draft = services.save_draft(
        mailbox=doctor, author=doctor.owner, draft=None, to=[nurse.address], cc=[],
        subject="Brouillon", text=f"brouillon {MARKER}",
    )  # fmt: skip
    services.add_draft_attachment(
        draft, "notes.txt", "text/plain", f"pj {MARKER}".encode(), by=draft.author
    )

    needles = _forms(MARKER)
    assert _database_contains(needles) == []
    files = blob_files()
    assert len(files) == 2  # the message and the draft's file
    for path, data in files.items():
        for needle in needles:
            assert needle not in data, f"{needle!r} in {path}"
    # The subject is sealed too (issue 14)...
    assert _database_contains([b"Sujet en clair", b"analyse.txt"]) == []
    # ...and the probe itself works: the recipient's address, in clear, is found.
    assert _database_contains([nurse.address.encode()]) != []


# --------------------------------------------------------------------------- integrity


def test_a_tampered_blob_is_detected_never_shown(doctor: Mailbox, nurse: Mailbox) -> None:
    message = submit(doctor, [nurse.address])
    path = Path(blobs.storage().path(message.blob_name))
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0x01
    path.write_bytes(bytes(data))
    message.refresh_from_db()
    with pytest.raises(crypto.BlobIntegrityError, match=r"cannot be read.*failed authentication"):
        services.read_raw(message)


def test_a_blob_swapped_with_another_message_is_detected(doctor: Mailbox, nurse: Mailbox) -> None:
    first = submit(doctor, [nurse.address], text="premier")
    second = submit(doctor, [nurse.address], text="second")
    storage = blobs.storage()
    a, b = Path(storage.path(first.blob_name)), Path(storage.path(second.blob_name))
    data_a, data_b = a.read_bytes(), b.read_bytes()
    a.write_bytes(data_b)
    b.write_bytes(data_a)
    with pytest.raises(crypto.BlobIntegrityError):
        services.read_raw(first)


def test_a_missing_blob_is_reported_clearly(doctor: Mailbox, nurse: Mailbox) -> None:
    message = submit(doctor, [nurse.address])
    blobs.delete(message.blob_name)
    with pytest.raises(crypto.BlobIntegrityError, match="missing"):
        services.read_raw(message)


# --------------------------------------------------------------------------- key rotation


def _key(key_id: str) -> str:
    return f"{key_id}:" + base64.b64encode(os.urandom(32)).decode()


def test_rotating_the_master_key_keeps_everything_readable_and_frees_the_old_key(
    doctor: Mailbox, nurse: Mailbox, settings: Any
) -> None:
    # The boxes' folder names were sealed under the key the fixtures ran with.
    old, new = f"{_key('k-old')},{settings.MSSANTE_MASTER_KEYS}", _key("k-new")
    settings.MSSANTE_MASTER_KEYS = old
    messages = [submit(doctor, [nurse.address], text=f"message {i}") for i in range(3)]
    custom = services.create_folder(doctor, "Dupont Marie", by=doctor.owner)
    # Every other sealed column too: a quarantine record's and a report's subject.
    held = Quarantine.objects.create(
        message_id_header="<q@x>",
        from_addr="a@b.fr",
        verdict="infected",
        subject="Virus",
        quarantined_at=timezone.now(),
    )
    report = report_abuse(
        message=send(doctor, [nurse.address]),
        mailbox=nurse,
        reporter=nurse.owner,
        reason="Publicité",
    )
    draft = services.save_draft(
        mailbox=doctor, author=doctor.owner, draft=None, to=[], cc=[], subject="b", text="brouillon"
    )
    services.add_draft_attachment(draft, "a.txt", "text/plain", b"fichier", by=draft.author)
    bodies_before = {p: hashlib.sha256(d).hexdigest() for p, d in blob_files().items()}

    settings.MSSANTE_MASTER_KEYS = f"{new},{old}"
    call_command("rotate_master_key", stdout=open(os.devnull, "w"))  # noqa: SIM115

    assert set(Message.objects.values_list("key_id", flat=True)) == {"k-new"}
    assert set(DraftAttachment.objects.values_list("key_id", flat=True)) == {"k-new"}
    assert set(Draft.objects.values_list("key_id", flat=True)) == {"k-new"}
    # Bodies were not rewritten: only the wrapped data keys changed.
    assert {p: hashlib.sha256(d).hexdigest() for p, d in blob_files().items()} == bodies_before

    settings.MSSANTE_MASTER_KEYS = new  # the old key is gone
    for i, message in enumerate(messages):
        message.refresh_from_db()
        assert f"message {i}" in (services.parse(message).text or "")
        # The sealed subject was sealed again under the new key.
        assert message.subject == "Compte rendu"
    draft.refresh_from_db()
    assert draft.subject == "b"
    assert services.open_draft(draft).text == "brouillon"
    assert services.read_draft_attachment(draft.files.get()) == b"fichier"
    # Folder names were sealed again, and their keyed digests computed under the new key:
    # a name is still found, and still taken.
    assert {f.name for f in doctor.folders.all()} >= {"Boîte de réception", "Dupont Marie"}
    assert selectors.folder_by_name(doctor, "dupont  MARIE") == custom
    assert Quarantine.objects.get(pk=held.pk).subject == "Virus"
    assert AbuseReport.objects.get(pk=report.pk).subject == "Compte rendu"
    with pytest.raises(FolderError):
        services.create_folder(doctor, "Dupont Marie", by=doctor.owner)


def test_without_rotation_dropping_the_old_key_makes_messages_unreadable(
    doctor: Mailbox, nurse: Mailbox, settings: Any
) -> None:
    settings.MSSANTE_MASTER_KEYS = _key("k-old")
    message = submit(doctor, [nurse.address])
    settings.MSSANTE_MASTER_KEYS = _key("k-new")
    with pytest.raises(crypto.UnknownKeyError):
        services.read_raw(message)


def test_rotation_refuses_to_run_without_the_old_key(
    doctor: Mailbox, nurse: Mailbox, settings: Any
) -> None:
    from django.core.management.base import CommandError

    settings.MSSANTE_MASTER_KEYS = _key("k-old")
    submit(doctor, [nurse.address])
    settings.MSSANTE_MASTER_KEYS = _key("k-new")
    with pytest.raises(CommandError, match="k-old"):
        call_command("rotate_master_key")
