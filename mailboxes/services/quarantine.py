"""Messages the antivirus held back: held, the sender told, released or deleted by staff.

The pipeline's scan step calls ``quarantine_message`` when the verdict is not clean;
staff review the quarantine in the charter's admin, which calls ``release_quarantined``
(the deliveries go through the pipeline again) or ``delete_quarantined`` (the encrypted
content and every copy go; the quarantine record stays for the indicators).
"""

from __future__ import annotations

import logging
from collections.abc import Iterable

from django.conf import settings
from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import override

from accounts.models import User
from audit import journal
from mailboxes import blobs, reasons
from mailboxes.models import Delivery, Entry, Mailbox, Message, Quarantine
from mailboxes.services import pipeline
from mailboxes.services.notices import deliver_system_notice
from mailboxes.transport import dsn
from trust.scanning import ScanStatus, ScanVerdict

log = logging.getLogger(__name__)


class QuarantineError(Exception):
    """A staff request on the quarantine that cannot be done; the message says why."""


def released_ids(message_ids: Iterable[int]) -> set[int]:
    """Among these messages, those staff released from quarantine (delivered despite the verdict)."""
    wanted = set(message_ids)
    if not wanted:
        return set()
    return set(
        Quarantine.objects.filter(
            message_id__in=wanted, status=Quarantine.Status.RELEASED
        ).values_list("message_id", flat=True)
    )


def quarantine_message(message: Message, verdict: ScanVerdict) -> Quarantine:
    """Quarantine a message (in the caller's transaction): deliveries held, sender told, audited."""
    deliveries = Delivery.objects.filter(message=message).exclude(status__in=Delivery.DONE)
    recipients = list(deliveries.values_list("recipient", flat=True))
    deliveries.update(
        status=Delivery.Status.QUARANTINED,
        reason=_verdict_reason(verdict.status).code,
        reason_params={},
        updated_at=timezone.now(),
    )
    record, _created = Quarantine.objects.get_or_create(
        message=message,
        defaults={
            "message_id_header": message.message_id[:255],
            "from_addr": message.from_addr,
            "recipients": recipients,
            "subject": message.subject,
            "size": message.size,
            "message_date": message.date,
            "verdict": (
                Quarantine.Verdict.INFECTED
                if verdict.status == ScanStatus.INFECTED
                else Quarantine.Verdict.UNSCANNABLE
            ),
            "signatures": list(verdict.signatures),
            "detail": verdict.detail[:500],
            "quarantined_at": timezone.now(),
        },
    )
    journal.record(
        "message.quarantined",
        obj=message,
        verdict=verdict.status.value,
        signatures=list(verdict.signatures),
        recipients=len(recipients),
    )
    if message.sender_mailbox is not None:
        notify_sender(message.sender_mailbox, message, verdict.status)
    elif recipients:
        # A message another operator gave us (it got its 250): its sender is owed a
        # DSN for every recipient held here, sent back over SMTP.
        reason = reasons.Reason(
            reasons.QUARANTINE_NOTICE, {"cause": _verdict_reason(verdict.status)}
        )
        dsn.report_failures(message, [dsn.Failure(r, reason, status="5.7.1") for r in recipients])
    return record


def _verdict_reason(status: ScanStatus) -> reasons.Reason:
    if status == ScanStatus.INFECTED:
        return reasons.Reason(reasons.INFECTED)
    return reasons.Reason(reasons.UNSCANNABLE)


def notify_sender(mailbox: Mailbox, message: Message, status: ScanStatus) -> Message:
    """Put a notice in the sender's inbox: which message, why; never the signature.

    Written in the language the sender wrote the message in (French for messages
    stored before that was recorded).
    """
    with override(message.language or settings.LANGUAGE_CODE):
        reason = _verdict_reason(status).text()
        subject = _("Message non distribué : %(reason)s") % {"reason": reason}
        text = _(
            "Bonjour,\n\n"
            "Votre message « %(subject)s » du %(date)s n'a été distribué à aucun "
            "destinataire : %(reason)s.\n\n"
            "Il est conservé en quarantaine ; l'équipe de %(operator)s peut le libérer "
            "après vérification. Si vous pensez qu'il s'agit d'une erreur, vérifiez vos "
            "fichiers avec un antivirus à jour, puis envoyez-les de nouveau ou contactez "
            "le support.\n\n"
            "Ce message est envoyé automatiquement : n'y répondez pas."
        ) % {
            "subject": message.subject or _("(sans objet)"),
            "date": timezone.localtime(message.date).strftime("%d/%m/%Y %H:%M"),
            "reason": reason,
            "operator": settings.OPERATOR_NAME,
        }
    return deliver_system_notice(mailbox, subject=subject, text=text)


# --- Staff decisions ------------------------------------------------------------------------


def _authorise(by: User) -> None:
    if not by.is_staff:
        raise QuarantineError(_("Seule l'équipe de l'opérateur décide de la quarantaine."))


def _locked(record: Quarantine) -> Quarantine:
    record = Quarantine.objects.select_for_update().get(pk=record.pk)
    if record.status != Quarantine.Status.HELD:
        raise QuarantineError(
            _("Ce message n'est plus en quarantaine (%(status)s).")
            % {"status": record.get_status_display()}
        )
    return record


def release_quarantined(record: Quarantine, *, reason: str, by: User) -> Quarantine:
    """Staff judged the verdict wrong: the held deliveries go through the pipeline again."""
    _authorise(by)
    reason = reason.strip()
    if not reason:
        raise QuarantineError(_("Un motif est obligatoire pour libérer un message."))
    with transaction.atomic():
        record = _locked(record)
        if record.message_id is None:
            raise QuarantineError(_("Le message n'existe plus."))
        record.status = Quarantine.Status.RELEASED
        record.decided_by = by
        record.decided_at = timezone.now()
        record.decision_reason = reason
        record.save(update_fields=["status", "decided_by", "decided_at", "decision_reason"])
        requeued = pipeline.requeue_deliveries(record.message_id, Delivery.Status.QUARANTINED)
        journal.record(
            "quarantine.released",
            actor=by,
            obj=record,
            message=record.message_id,
            deliveries=requeued,
            reason=reason,
        )
    return record


def delete_quarantined(record: Quarantine, *, reason: str, by: User) -> Quarantine:
    """Delete a held message for good: its encrypted content and every copy in the boxes."""
    _authorise(by)
    reason = reason.strip()
    if not reason:
        raise QuarantineError(_("Un motif est obligatoire pour supprimer un message."))
    blob_name = ""
    with transaction.atomic():
        record = _locked(record)
        message_pk = record.message_id
        if message_pk is not None:
            message = Message.objects.select_for_update().get(pk=message_pk)
            blob_name = message.blob_name
            Entry.objects.filter(message=message).delete()
            message.delete()
        record.status = Quarantine.Status.DELETED
        record.decided_by = by
        record.decided_at = timezone.now()
        record.decision_reason = reason
        record.save(update_fields=["status", "decided_by", "decided_at", "decision_reason"])
        journal.record(
            "quarantine.deleted", actor=by, obj=record, message=message_pk, reason=reason
        )
    if blob_name:
        # After commit: a rolled-back deletion keeps a readable message.
        try:
            blobs.delete(blob_name)
        except OSError:
            log.exception("quarantine %s: blob %s could not be removed", record.pk, blob_name)
    return record
