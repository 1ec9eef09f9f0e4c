"""The demo world of « Services connectés » and « Mes données » (called by ``mssante.demo.seed``).

The demo patient starts with every application allowed (the lab, which writes to her, is
in her catalogue) and an open space: a space she closed or a service she revoked during
a previous visit is brought back, so running ``seed_demo`` twice gives the same world.
"""

from __future__ import annotations

from accounts.models import User
from mailboxes.models import Mailbox
from mailboxes.services import lifecycle
from patients import selectors
from patients.models_services import ServiceRevocation


def seed(patient: User) -> None:
    """Open the demo patient's box again if she closed it; allow every application again."""
    box = selectors.patient_box(patient)
    if box is None:
        return
    if box.status == Mailbox.Status.CLOSED and patient.is_open:
        lifecycle.reopen_mailbox(box, by=None, reason="démonstration remise à zéro")
    # The demo's reset, not the patient's choice: the history of her choices is kept.
    ServiceRevocation.objects.filter(patient_box=box).delete()
