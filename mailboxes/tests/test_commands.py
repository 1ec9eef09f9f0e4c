"""send_message, list_messages and rotate_master_key from the command line."""

from __future__ import annotations

import json
from io import StringIO
from pathlib import Path
from typing import Any

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from mailboxes.models import Entry, Mailbox, Message

pytestmark = pytest.mark.django_db


@pytest.fixture
def body(tmp_path: Path) -> Path:
    path = tmp_path / "corps.txt"
    path.write_text("Bonjour,\nle compte rendu est joint.\n", encoding="utf-8")
    return path


def run(*args: str) -> str:
    out = StringIO()
    call_command(*args, stdout=out, stderr=StringIO())
    return out.getvalue()


def test_send_message_submits_through_the_service_with_attachments(
    doctor: Mailbox,
    nurse: Mailbox,
    body: Path,
    tmp_path: Path,
    django_capture_on_commit_callbacks: Any,
) -> None:
    pdf = tmp_path / "compte-rendu été.pdf"
    pdf.write_bytes(b"%PDF-1.4 test")
    with django_capture_on_commit_callbacks(execute=True):
        out = run(
            "send_message", "--from", doctor.address, "--to", nurse.address,
            "--subject", "Compte rendu", "--body-file", str(body), "--attach", str(pdf),
        )  # fmt: skip
    message = Message.objects.get()
    assert str(message.public_id) in out
    assert message.origin == Message.Origin.CLI
    assert message.attachments[0]["filename"] == "compte-rendu été.pdf"
    assert message.attachments[0]["content_type"] == "application/pdf"
    assert Entry.objects.filter(mailbox=nurse, message=message).exists()


@pytest.mark.parametrize(
    ("to", "words"),
    [
        ("inconnu@hopital.mssante.test", "Aucune boîte aux lettres"),
        ("pas une adresse", "n'est pas une adresse valide"),
        # Outside the hosted domains and the liste blanche: the refusal names the address.
        ("x@autre-operateur.fr", "« x@autre-operateur.fr »"),
    ],
)
def test_send_message_exits_non_zero_with_the_refusal(
    doctor: Mailbox, body: Path, to: str, words: str
) -> None:
    with pytest.raises(CommandError, match=words) as caught:
        run("send_message", "--from", doctor.address, "--to", to, "--body-file", str(body))
    assert caught.value.returncode == 1
    assert not Message.objects.exists()


def test_send_message_from_an_unknown_mailbox_fails(body: Path) -> None:
    with pytest.raises(CommandError, match="Aucune boîte"):
        run(
            "send_message",
            "--from",
            "x@hopital.mssante.test",
            "--to",
            "y@z.fr",
            "--body-file",
            str(body),
        )


def test_send_message_exits_non_zero_as_a_process(doctor: Mailbox, body: Path) -> None:
    # CommandError becomes exit status 1 and the message on stderr when run by manage.py.
    from django.core.management import ManagementUtility

    utility = ManagementUtility(
        [
            "manage.py",
            "send_message",
            "--from",
            doctor.address,
            "--to",
            "",
            "--body-file",
            str(body),
        ]
    )
    err = StringIO()
    import contextlib

    with contextlib.redirect_stderr(err), pytest.raises(SystemExit) as exited:
        utility.execute()
    assert exited.value.code == 1
    assert "au moins un destinataire" in err.getvalue()


def test_list_messages_json_gives_ids_addresses_flags_and_attachments(
    doctor: Mailbox,
    nurse: Mailbox,
    body: Path,
    tmp_path: Path,
    django_capture_on_commit_callbacks: Any,
) -> None:
    pdf = tmp_path / "bilan.pdf"
    pdf.write_bytes(b"%PDF-1.4 bilan")
    with django_capture_on_commit_callbacks(execute=True):
        run(
            "send_message", "--from", doctor.address, "--to", nurse.address, "--cc", doctor.address,
            "--subject", "Bilan", "--body-file", str(body), "--attach", str(pdf),
        )  # fmt: skip
    rows = json.loads(run("list_messages", nurse.address, "--json"))
    assert len(rows) == 1
    row = rows[0]
    message = Message.objects.get()
    assert row["id"] == str(message.public_id)
    assert row["message_id"] == message.message_id
    assert row["from"] == doctor.address
    assert row["to"] == [nurse.address]
    assert row["cc"] == [doctor.address]
    assert row["subject"] == "Bilan"
    assert row["flags"] == {"seen": False, "flagged": False, "answered": False}
    assert row["attachments"] == [
        {"filename": "bilan.pdf", "size": len(b"%PDF-1.4 bilan"), "content_type": "application/pdf"}
    ]
    sent = json.loads(run("list_messages", doctor.address, "--folder", "sent", "--json"))
    assert sent[0]["flags"]["seen"] is True


def test_list_messages_refuses_an_unknown_folder(doctor: Mailbox) -> None:
    with pytest.raises(CommandError, match="Aucun dossier"):
        run("list_messages", doctor.address, "--folder", "nulle-part")


def test_rotate_master_key_generates_a_new_key_entry() -> None:
    out = run("rotate_master_key", "--generate", "k2").strip()
    key_id, _, key = out.partition(":")
    assert key_id == "k2"
    import base64

    assert len(base64.b64decode(key)) == 32
