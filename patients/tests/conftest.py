"""The patient space as its tests see it: Dr Martin, Julien the nurse, Lucie and another patient."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pytest

from accounts.models import User
from mailboxes.models import Entry, Mailbox, Message
from tests import personas
from tests.personas import Person, committed

PDF = b"%PDF-1.4\n1 0 obj<<>>endobj\ntrailer<<>>\n%%EOF\n"


@dataclass
class Space:
    doctor: User
    doctor_box: Mailbox
    nurse: User
    nurse_box: Mailbox
    patient: User
    patient_box: Mailbox
    other: User
    other_box: Mailbox

    # Call a service or a request, then the work it queued on commit (eager).
    run = staticmethod(committed)

    def send(self, box: Mailbox, to: list[str], **kwargs: Any) -> Message:
        """Submit and deliver, by the box's holder, a message of lab results by default."""
        return personas.send(box, to, **{"subject": "Résultats d'analyse", **kwargs})

    def entry(self, box: Mailbox, message: Message) -> Entry:
        return Entry.objects.get(mailbox=box, message=message)


@pytest.fixture
def space(claire: Person, julien: Person, lucie: Person) -> Space:
    other = personas.lucie()
    return Space(*claire, *julien, *lucie, *other)
