"""Whether the submission under way is a patient's answer to an appointment (an iTIP REPLY).

A professional may close a conversation (X-MSS-MES: FIN, or "Clore la conversation"):
the patient can no longer write in it. Answering an appointment sent in it is still
allowed (docs/decisions.md): the REPLY carries no free text, only Accepté or Refusé, and
it goes, like any patient answer, only to the professional who wrote. The agenda's
service sets this flag around its submission; ``services.check_submission`` reads it.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar

_answering: ContextVar[bool] = ContextVar("patients_answering_appointment", default=False)


@contextmanager
def answering_appointment() -> Iterator[None]:
    """Within this block, a patient's submission is an appointment answer."""
    token = _answering.set(True)
    try:
        yield
    finally:
        _answering.reset(token)


def is_answering_appointment() -> bool:
    return _answering.get()
