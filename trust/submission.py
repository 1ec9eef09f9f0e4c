"""The trust space's checks on a message being submitted, at every entrance (web, API, SMTP).

``check_submission`` runs before anything is stored; a refusal raises PolicyError
(French sentence for the sender, ``rule`` for staff) and is written to the audit
journal with its rule, never with the message's content.

What only the mailboxes app knows (the domains it serves, which recipients' boxes
are closed) is given by the caller: this app sits below mailboxes and reads none
of its tables.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from typing import TYPE_CHECKING, Any, Protocol

from django.utils.translation import gettext as _

from accounts.models import User
from audit import journal
from trust import policy
from trust.policy import HostedDomains, PolicyError

if TYPE_CHECKING:
    from django.http import HttpRequest


class SendingMailbox(Protocol):
    """What the checks read of the sending mailbox (a mailboxes.Mailbox)."""

    @property
    def pk(self) -> Any: ...

    @property
    def is_active(self) -> bool: ...


def _check_author(author: User | None) -> None:
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


def _check_closed_recipients(recipients: Sequence[str], closed: Collection[str]) -> None:
    """A closed box (or the box of a closed account) refuses new mail, naming the address."""
    first = next((address for address in recipients if address in closed), None)
    if first is not None:
        raise PolicyError(
            _(
                "Le destinataire %(address)s ne peut plus recevoir de messages : "
                "cette boîte est fermée."
            )
            % {"address": first},
            rule="mailbox_closed",
        )


def check_submission(
    *,
    mailbox: SendingMailbox,
    author: User | None,
    recipients: Sequence[str],
    domains: HostedDomains,
    closed: Collection[str],
    attachments: Sequence[Any] = (),
    origin: str = "",
    request: HttpRequest | None = None,
) -> None:
    """Every trust-space rule on a submission; refusals are audited with their rule.

    ``recipients`` are the normalised to + cc addresses; ``domains`` the domains this
    operator serves; ``closed`` the recipients whose box is closed (or whose holder's
    account is); ``attachments`` are ``mssante.lib.mime.Attachment`` (or anything with
    filename, content_type, data). The patient reply rule needs the conversation:
    patients.services checks it (with trust.policy.check_patient_reply).
    """
    try:
        _check_author(author)
        if not mailbox.is_active:
            raise PolicyError(
                _("Votre boîte aux lettres est fermée : l'envoi est impossible."),
                rule="sender_mailbox_closed",
            )
        policy.check_recipients(mailbox, list(recipients), domains=domains)
        _check_closed_recipients(recipients, closed)
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
    mailbox: SendingMailbox | None,
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
