"""Migration 0007: the sentences stored in Delivery.last_error become reason codes.

Rows written before the codes are read back into them, so that they show in the
reader's language; a sentence no code matches is kept as it was. Unapplying the
migration writes the French sentences back.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from django.utils import timezone, translation

from mailboxes import reasons
from tests.migrations import migrate, schema_at

pytestmark = pytest.mark.django_db(transaction=True)

BEFORE = ("mailboxes", "0007_mailboxes_own_their_tables")
AFTER = ("mailboxes", "0008_delivery_reason_codes")

UNREACHABLE = (
    "Serveur de clinique.test injoignable : connexion à mx.clinique.test:25 impossible "
    "([Errno 111] Connection refused)"
)
NOT_LISTED = (
    "Serveur de clinique.test injoignable : le certificat de mx.clinique.test:25 "
    "(CN=mx.imposteur.test) n'est pas inscrit sur la liste blanche pour clinique.test"
)
STORED = {
    "Envoi en cours vers le serveur de l'opérateur destinataire.": ("sending", {}),
    "La boîte du destinataire n'existe plus ou est fermée.": ("mailbox_unavailable", {}),
    "The recipient's mailbox no longer exists or is closed.": ("mailbox_unavailable", {}),
    "virus détecté dans une pièce jointe": ("infected", {}),
    "message retenu en quarantaine par l'antivirus": ("quarantined", {}),
    UNREACHABLE: (
        "unreachable",
        {
            "domain": "clinique.test",
            "problem": {
                "code": "connection_failed",
                "host": "mx.clinique.test:25",
                "error": "[Errno 111] Connection refused",
            },
        },
    ),
    "Le serveur de clinique.test a répondu : 550 5.1.1 <parti@clinique.test>: no mailbox": (
        "remote_reply",
        {"domain": "clinique.test", "reply": "550 5.1.1 <parti@clinique.test>: no mailbox"},
    ),
    "Non distribué après 12 essai(s) en 120 heures. Dernière erreur : " + NOT_LISTED: (
        "gave_up",
        {
            "attempts": 12,
            "hours": 120,
            "last": {
                "code": "unreachable",
                "domain": "clinique.test",
                "problem": {
                    "code": "certificate_not_listed",
                    "host": "mx.clinique.test:25",
                    "subject": "CN=mx.imposteur.test",
                    "domain": "clinique.test",
                },
            },
        },
    ),
    "Le serveur de clinique.test signale un échec de distribution : 550 5.2.1 disabled": (
        "reported_failure",
        {"domain": "clinique.test", "diagnostic": "550 5.2.1 disabled"},
    ),
    "Boîte pleine, écrivez plus tard": ("legacy", {"text": "Boîte pleine, écrivez plus tard"}),
}


@pytest.fixture
def before() -> Iterator[Any]:
    with schema_at([BEFORE]) as apps:
        yield apps


def _rows(apps: Any) -> dict[str, int]:
    Message = apps.get_model("mailboxes", "Message")
    Delivery = apps.get_model("mailboxes", "Delivery")
    now = timezone.now()
    message = Message.objects.create(
        message_id="<m@hopital.test>",
        thread_key="m@hopital.test",
        from_addr="a@hopital.test",
        date=now,
        size=1,
        blob_name="messages/migration-test",
        key_id="k",
        wrapped_key=b"k",
    )
    return {
        text: Delivery.objects.create(
            message=message, recipient=f"r{n}@clinique.test", last_error=text
        ).pk
        for n, text in enumerate(STORED)
    }


def test_the_stored_sentences_become_codes_and_come_back_when_unapplied(before: Any) -> None:
    ids = _rows(before)

    apps = migrate([AFTER])
    Delivery = apps.get_model("mailboxes", "Delivery")
    for text, (code, params) in STORED.items():
        row = Delivery.objects.get(pk=ids[text])
        assert (row.reason, row.reason_params) == (code, params), text
        if code not in ("gave_up",):
            # Written again in French, it is the sentence that was stored.
            with translation.override("fr"):
                assert reasons.describe(row.reason, row.reason_params) in (
                    text,
                    "La boîte du destinataire n'existe plus ou est fermée.",
                )

    apps = migrate([BEFORE])
    Delivery = apps.get_model("mailboxes", "Delivery")
    for text, pk in ids.items():
        if text.startswith("The recipient"):
            continue  # English before, French after: the code does not keep the language
        assert Delivery.objects.get(pk=pk).last_error == text
