"""Writes of the charter: abuse reports and the staff decisions on them."""

from __future__ import annotations

from django.conf import settings
from django.core.mail import send_mail
from django.db import IntegrityError, transaction
from django.http import HttpRequest
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from accounts import services as accounts
from accounts.models import User
from audit import journal
from charter.models import AbuseReport, Sanction
from mailboxes.models import Entry, Mailbox, Message
from mailboxes.selectors import Access
from mailboxes.services import lifecycle as mailbox_lifecycle
from mailboxes.services.rights import authorise


class CharterError(Exception):
    """A request a user or staff member can get wrong; the message is shown to them."""


@transaction.atomic
def report_abuse(
    *,
    message: Message,
    mailbox: Mailbox,
    reporter: User,
    reason: str,
    request: HttpRequest | None = None,
) -> AbuseReport:
    """A recipient reports a received message as unsolicited; staff review it in the admin."""
    # Whoever may read the box may report what it received; nobody else speaks for it.
    authorise(reporter, mailbox, Access.READ)
    reason = reason.strip()
    if not reason:
        raise CharterError(_("Indiquez en quelques mots pourquoi ce message est indésirable."))
    # The message must have been received there, so nobody reports mail they never got.
    if not Entry.objects.filter(mailbox=mailbox, message=message).exists():
        raise CharterError(_("Ce message n'a pas été reçu dans cette boîte."))
    if message.sender_mailbox_id == mailbox.pk:
        raise CharterError(_("Vous ne pouvez pas signaler un message que vous avez envoyé."))
    report = AbuseReport(
        created_at=timezone.now(),
        reporter=reporter,
        reporter_mailbox=mailbox,
        message=message,
        message_id_header=message.message_id[:255],
        sender_addr=message.from_addr,
        subject=message.subject,
        message_date=message.date,
        sender=message.submitted_by,
        reason=reason,
    )
    try:
        with transaction.atomic():
            report.save()
    except IntegrityError:
        raise CharterError(_("Vous avez déjà signalé ce message.")) from None
    journal.record(
        "abuse.reported",
        actor=reporter,
        obj=report,
        request=request,
        message=message.pk,
        sender=message.submitted_by_id,
    )
    return report


_NOTICE_SUBJECTS = {
    Sanction.Decision.WARN: gettext_lazy("Avertissement concernant votre messagerie de santé"),
    Sanction.Decision.SUSPEND: gettext_lazy("Suspension de votre compte de messagerie de santé"),
    Sanction.Decision.CLOSE: gettext_lazy("Clôture de votre compte de messagerie de santé"),
}


def _notify(user: User, decision: str, reason: str) -> None:
    if not user.email:
        return
    subject = str(_NOTICE_SUBJECTS[Sanction.Decision(decision)])
    body = _(
        "Bonjour,\n\n"
        "À la suite d'un signalement de courrier indésirable, l'équipe de %(operator)s "
        "a pris la décision suivante : %(decision)s.\n\n"
        "Motif : %(reason)s\n\n"
        "La messagerie sécurisée de santé est réservée aux échanges utiles à la prise en "
        "charge des patients ; les envois non sollicités y sont interdits."
    ) % {
        "operator": settings.OPERATOR_NAME,
        "decision": Sanction.Decision(decision).label,
        "reason": reason,
    }
    # After commit: a rolled-back decision must not have been announced.
    transaction.on_commit(
        lambda: send_mail(subject, body, settings.DEFAULT_FROM_EMAIL, [user.email])
    )


@transaction.atomic
def decide_report(report: AbuseReport, *, decision: str, reason: str, by: User) -> Sanction:
    """Staff decide on a report: dismiss, warn, suspend or close the sender's account."""
    reason = reason.strip()
    if not reason:
        raise CharterError(_("Un motif est obligatoire pour toute décision."))
    try:
        chosen = Sanction.Decision(decision)
    except ValueError:
        raise CharterError(_("Décision inconnue : %(d)s.") % {"d": decision}) from None
    report = AbuseReport.objects.select_for_update().get(pk=report.pk)
    target = report.sender
    if chosen != Sanction.Decision.DISMISS:
        if target is None:
            raise CharterError(
                _(
                    "L'expéditeur %(addr)s n'a pas de compte chez cet opérateur : seul un "
                    "classement est possible ici ; signalez l'abus à son opérateur."
                )
                % {"addr": report.sender_addr}
            )
        if target.status == User.Status.CLOSED:
            raise CharterError(_("Le compte de l'expéditeur est déjà clôturé."))
    try:
        if chosen == Sanction.Decision.SUSPEND and target is not None:
            accounts.suspend_account(target, reason=reason, by=by)
        elif chosen == Sanction.Decision.CLOSE and target is not None:
            # A closed account's own boxes stop receiving (senders are told "cette
            # boîte est fermée") and leave the directory: closed here first so that
            # the journal says "sanction"; closing the account then finds them closed.
            mailbox_lifecycle.close_mailboxes_of(
                target, by=by, cause=mailbox_lifecycle.ClosureCause.SANCTION, reason=reason
            )
            accounts.close_account(target, reason=reason, by=by)
    except accounts.AccountError as exc:
        raise CharterError(str(exc)) from None
    sanction = Sanction.objects.create(
        report=report,
        user=target if chosen != Sanction.Decision.DISMISS else None,
        decision=chosen,
        reason=reason,
        decided_by=by,
        decided_at=timezone.now(),
    )
    report.status = AbuseReport.Status.DECIDED
    report.save(update_fields=["status"])
    journal.record(
        "abuse.decided",
        actor=by,
        obj=report,
        decision=chosen.value,
        sanctioned=target.pk
        if target is not None and chosen != Sanction.Decision.DISMISS
        else None,
        reason=reason,
    )
    if target is not None and chosen != Sanction.Decision.DISMISS:
        _notify(target, chosen, reason)
    return sanction
