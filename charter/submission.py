"""The charter's checks on a message being submitted, at every entrance (web, API, SMTP).

``check_submission`` runs before anything is stored; a refusal raises PolicyError
(French sentence for the sender, ``rule`` for staff) and is written to the audit
journal with its rule, never with the message's content.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from django.db.models import Q
from django.utils.translation import gettext as _

from audit import journal
from charter import policy
from charter.policy import PolicyError

if TYPE_CHECKING:
    from django.http import HttpRequest

    from accounts.models import User
    from mailboxes.models import Mailbox


def _check_author(author: User | None) -> None:
    from accounts.models import User

    if author is None or author.status == User.Status.ACTIVE:
        return
    if author.status == User.Status.SUSPENDED:
        text = _("Votre compte est suspendu : l'envoi de messages est impossible.")
        rule = "sender_suspended"
    else:
        text = _("Votre compte est clôturé : l'envoi de messages est impossible.")
        rule = "sender_closed"
    if author.status_reason:
        text += " " + _("Motif : %(reason)s") % {"reason": author.status_reason}
    raise PolicyError(text, rule=rule)


def _check_closed_recipients(recipients: Sequence[str]) -> None:
    """A closed box (or the box of a closed account) refuses new mail, naming the address."""
    from accounts.models import User
    from mailboxes.models import Mailbox

    closed = (
        Mailbox.objects.filter(address__in=list(recipients))
        .filter(
            Q(status=Mailbox.Status.CLOSED)
            | Q(
                kind__in=[Mailbox.Kind.PERSONAL, Mailbox.Kind.PATIENT],
                owner__status=User.Status.CLOSED,
            )
        )
        .values_list("address", flat=True)
        .first()
    )
    if closed is not None:
        raise PolicyError(
            _(
                "Le destinataire %(address)s ne peut plus recevoir de messages : "
                "cette boîte est fermée."
            )
            % {"address": closed},
            rule="mailbox_closed",
        )


def check_submission(
    *,
    mailbox: Mailbox,
    author: User | None,
    recipients: Sequence[str],
    attachments: Sequence[Any] = (),
    origin: str = "",
    request: HttpRequest | None = None,
) -> None:
    """Every charter rule on a submission; refusals are audited with their rule.

    ``recipients`` are the normalised to + cc addresses; ``attachments`` are
    ``mssante.lib.mime.Attachment`` (or anything with filename, content_type, data).
    The patient reply rule needs the conversation: patients.services checks it
    (with charter.policy.check_patient_reply).
    """
    try:
        _check_author(author)
        if not mailbox.is_active:
            raise PolicyError(
                _("Votre boîte aux lettres est fermée : l'envoi est impossible."),
                rule="sender_mailbox_closed",
            )
        policy.check_recipients(mailbox, list(recipients))
        _check_closed_recipients(recipients)
        policy.check_attachments([(a.filename, a.content_type, a.data) for a in attachments])
    except PolicyError as exc:
        record_refusal(
            exc.rule or "policy",
            mailbox=mailbox,
            author=author,
            recipients=len(recipients),
            origin=origin,
            request=request,
        )
        raise


def record_refusal(
    rule: str,
    *,
    mailbox: Mailbox | None,
    author: User | None,
    recipients: int = 0,
    origin: str = "",
    request: HttpRequest | None = None,
) -> None:
    """Journal a refused submission: who, from which box, which rule; never the content.

    Submission checks run before any transaction is opened, so the event commits
    even though the submission fails.
    """
    journal.record(
        "message.refused",
        actor=author,
        obj=mailbox,
        request=request,
        rule=rule,
        recipients=recipients,
        origin=origin,
    )
