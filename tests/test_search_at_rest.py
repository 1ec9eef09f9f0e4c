"""Search over bodies without plaintext at rest, proved on PostgreSQL with ``pg_dump``.

A message sent through the webmail, with a word found only in its body and another only
in its subject, is found by its body word through the search page and reported as abuse
(the report keeps a copy of the subject); then the whole test
database is dumped (``pg_dump``, as an attacker holding the database would) and neither
word appears anywhere in it, whatever the case: not in the messages, the entries, the
search tokens, the sessions (the saved search), nor the audit journal. The doctor files
it in a folder named after the patient: the folder's name is not in the dump either.
"""

from __future__ import annotations

import os
import secrets
import shutil
import subprocess
from urllib.parse import urlsplit, urlunsplit

import pytest
from django.db import connection
from django.urls import reverse

from audit.models import AuditEvent
from charter.models import AbuseReport
from mailboxes import selectors
from mailboxes.models import Entry
from tests.personas import Person, login, start_draft

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.skipif(
        os.environ.get("MSSANTE_TEST_SERVICES") != "1",
        reason="needs the PostgreSQL of `make test` (scripts/services start)",
    ),
]


def pg_dump() -> bytes:
    """The test database, dumped whole (schema and rows) by the cluster's superuser."""
    url = urlsplit(os.environ["MSSANTE_TEST_PG_SUPERUSER_URL"])
    url = url._replace(path="/" + connection.settings_dict["NAME"])
    binary = shutil.which("pg_dump") or "/usr/bin/pg_dump"
    done = subprocess.run(
        [binary, "--no-owner", "--dbname", urlunsplit(url)],
        capture_output=True,
        check=True,
        timeout=120,
    )
    return done.stdout


def test_a_body_word_is_found_and_no_word_of_the_message_is_in_a_dump(
    claire: Person, julien: Person
) -> None:
    (doctor, box), (nurse_user, nurse) = claire, julien
    body_word = f"corps{secrets.token_hex(5)}"
    subject_word = f"objet{secrets.token_hex(5)}"
    writer = login(nurse_user)
    draft = start_draft(writer, nurse)
    sent = writer.post(
        reverse("webmail_draft_send", args=[draft.pk]),
        {
            "to": box.address,
            "subject": f"Compte rendu {subject_word}",
            "text": f"Bonjour,\nle patient présente un {body_word} discret.\nBien à vous",
        },
    )
    assert sent.status_code in (302, 303), sent.content.decode()[:1000]
    assert Entry.objects.filter(mailbox=box).count() == 1

    reader = login(doctor)
    for word in (body_word, subject_word.upper()):
        response = reader.post(reverse("webmail_search", args=[box.pk]), {"q": word}, follow=True)
        assert [r.entry.message.subject for r in response.context["rows"]] == [
            f"Compte rendu {subject_word}"
        ]

    # The doctor reports it: the report keeps a copy of the subject, sealed too.
    entry = Entry.objects.get(mailbox=box)
    reported = reader.post(reverse("charter:report", args=[entry.pk]), {"reason": "Publicité"})
    assert reported.status_code in (200, 302, 303)
    assert AbuseReport.objects.get().subject == f"Compte rendu {subject_word}"

    # Filed in a folder named after the patient, created and filled from the webmail.
    folder_word = f"patient{secrets.token_hex(5)}"
    reader.post(reverse("webmail_folder_create", args=[box.pk]), {"name": f"Suivi {folder_word}"})
    folder = selectors.folder_by_name(box, f"suivi {folder_word.upper()}")
    assert folder is not None and folder.name == f"Suivi {folder_word}"
    reader.post(reverse("webmail_move", args=[entry.pk]), {"folder": folder.pk})
    assert Entry.objects.get(pk=entry.pk).folder == folder

    dump = pg_dump().lower()
    # The dump is of this database, with this message in it...
    assert nurse.address.encode() in dump
    assert b"search_tokens" in dump
    # ...and holds no word of it.
    assert body_word.encode() not in dump
    assert subject_word.encode() not in dump
    assert folder_word.encode() not in dump
    for event in AuditEvent.objects.all():
        text = f"{event.action} {event.data}".lower()
        assert body_word not in text and subject_word not in text and folder_word not in text
