"""What the apps above mailboxes plug into: a rule of the submission, a signal on delivery.

mailboxes sits below charter and patients and never imports them (docs/architecture.md).
When one of them must take part in what mailboxes does, mailboxes owns the extension
point and the higher app plugs into it from its ``AppConfig.ready()``:

- ``add_submission_rule(rule)``: ``submit_message`` calls every rule, for every message
  whatever its door (web, API, command), after the trust space's checks and before
  anything is stored. A rule refuses by raising ``SubmissionError``; it may write (the
  patient rules create a patient's box on a first message) in the submission's
  transaction. patients registers the patient box rules here.
- ``add_reading_panel(panel)``: the reading page of the webmail shows what every panel
  returns for the message read (HTML, or "" for nothing). patients adds the professional's
  view of a conversation with a patient (who, read when, "Clore la conversation").
- ``add_blob_kind(kind, referenced)``: an app that writes its own blobs (under
  ``<kind>/`` in the blob store) says which of a list of names its rows still point to;
  the scheduled orphan collection then judges that kind too (a kind nobody registered is
  never deleted). patients registers its patients' own documents.
- ``delivered``: a signal the delivery pipeline sends inside the transaction that creates
  the recipients' entries, with ``mailboxes``: the boxes that received a message in it,
  and ``received``: the (box, message) pairs delivered (the agenda reads invitations).
  A receiver enqueues its work with ``transaction.on_commit`` (nothing is enqueued for a
  delivery that rolls back). patients notifies its patients from it.

Rules and receivers run in the caller's transaction and their exceptions propagate (the
signal is sent with ``send``, not ``send_robust``): a failure is never silently skipped.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from typing import TYPE_CHECKING, Protocol

from django.dispatch import Signal

from accounts.models import User
from mailboxes.models import Entry, Mailbox, Message

if TYPE_CHECKING:
    from django.http import HttpRequest
    from django.utils.safestring import SafeString


class SubmissionRule(Protocol):
    def __call__(
        self,
        *,
        mailbox: Mailbox,
        recipients: Sequence[str],
        in_reply_to: Message | None,
        author: User | None,
    ) -> None: ...


_submission_rules: list[SubmissionRule] = []


def add_submission_rule(rule: SubmissionRule) -> None:
    """Make ``submit_message`` call ``rule`` for every message (once, however often added)."""
    if rule not in _submission_rules:
        _submission_rules.append(rule)


def submission_rules() -> tuple[SubmissionRule, ...]:
    """The rules the apps above added, in the order they were added."""
    return tuple(_submission_rules)


class ReadingPanel(Protocol):
    def __call__(self, request: HttpRequest, entry: Entry, *, can_send: bool) -> SafeString: ...


_reading_panels: list[ReadingPanel] = []


def add_reading_panel(panel: ReadingPanel) -> None:
    """Show what ``panel`` renders on the reading page (once, however often added)."""
    if panel not in _reading_panels:
        _reading_panels.append(panel)


def reading_panels() -> tuple[ReadingPanel, ...]:
    """The panels the apps above added, in the order they were added."""
    return tuple(_reading_panels)


#: Sent by ``pipeline.deliver_many`` with ``mailboxes`` (a list of ``Mailbox``): the boxes
#: that received a message in this transaction. ``sender`` is ``Mailbox``.
delivered = Signal()


_blob_kinds: dict[str, Callable[[list[str]], Iterable[str]]] = {}


def add_blob_kind(kind: str, referenced: Callable[[list[str]], Iterable[str]]) -> None:
    """Have the orphan collection judge blobs of ``kind``: ``referenced(names)`` returns
    those of ``names`` a row still points to (anything else older than the grace goes)."""
    _blob_kinds[kind] = referenced


def blob_kinds() -> dict[str, Callable[[list[str]], Iterable[str]]]:
    """The blob kinds the apps above registered, with who vouches for their names."""
    return dict(_blob_kinds)
