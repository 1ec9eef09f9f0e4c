"""Every write of the patient space: provisioning, the reply rules, closures, notifications.

The rules a patient's box obeys (DOMAIN.md, "Patients") are enforced here, in
``check_submission``, which ``mailboxes.services.submit_message`` calls for every
message whatever its origin (web, API, command): the patient's pages only hide
what this refuses anyway. mailboxes, below this app, does not import it: the rule is
added to its submission from ``PatientsConfig.ready`` (``mailboxes.hooks``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import TYPE_CHECKING

from django.conf import settings
from django.core.mail import send_mail
from django.db import transaction
from django.db.models import Q
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils import timezone
from django.utils.translation import gettext as _

from accounts import services as account_services
from accounts.models import PatientIdentity, User
from audit import journal
from mailboxes import addresses
from mailboxes.models import HostedDomain, Mailbox, Message
from mailboxes.selectors import Access
from mailboxes.services import MailboxError, create_mailbox, submit_message
from mailboxes.services.errors import SubmissionError
from mailboxes.services.rights import authorise, is_operator
from mssante.lib import identifiers as ids
from mssante.lib import mime
from patients.agenda_rules import is_answering_appointment
from patients.models import ConversationClosure, NotificationPreference
from patients.models_family import GuardianLink, majority_date
from trust.policy import PolicyError, check_patient_reply

if TYPE_CHECKING:
    from django.http import HttpRequest


class PatientError(Exception):
    """A request staff or a patient can get wrong; ``str()`` is the French reason."""


# --- Provisioning ------------------------------------------------------------------------


def patient_domain() -> HostedDomain:
    """The hosted domain of patient boxes (created on first use, of kind "patient")."""
    domain, _created = HostedDomain.objects.get_or_create(
        name=settings.PATIENT_DOMAIN,
        defaults={"kind": HostedDomain.Kind.PATIENT, "description": "Patients"},
    )
    return domain


def patient_address(ins: str) -> str:
    return f"{ins.lower()}@{settings.PATIENT_DOMAIN}"


def patient_mailbox(user: User) -> Mailbox | None:
    """The patient's own box (PAT), if they have one."""
    return Mailbox.objects.filter(owner=user, kind=Mailbox.Kind.PATIENT).first()


@dataclass
class Provisioned:
    user: User
    mailbox: Mailbox
    activation_sent: bool


@transaction.atomic
def provision_patient(
    *,
    ins: str,
    oid: str,
    birth_name: str,
    first_names: str,
    birth_date: date,
    sex: str,
    birth_place: str = "",
    email: str = "",
    qualified: bool = True,
    by: User | None = None,
    send_activation: bool = True,
) -> Provisioned:
    """Create a patient account and its box ``<INS>@<PATIENT_DOMAIN>``; e-mail the activation link."""
    try:
        user = account_services.create_patient(
            ins=ins,
            oid=oid,
            birth_name=birth_name,
            first_names=first_names,
            birth_date=birth_date,
            sex=sex,
            birth_place=birth_place,
            email=email,
            qualified=qualified,
            by=by,
        )
    except account_services.AccountError as exc:
        raise PatientError(str(exc)) from None
    try:
        box = create_mailbox(
            Mailbox.Kind.PATIENT,
            patient_address(user.username),
            patient_domain(),
            owner=user,
            display_name=f"{user.first_name} {user.last_name}".strip(),
            by=by,
        )
    except MailboxError as exc:
        raise PatientError(str(exc)) from None
    sent = False
    if send_activation and user.email:
        send_activation_link(user, by=by)
        sent = True
    return Provisioned(user, box, sent)


def send_activation_link(user: User, *, by: User | None) -> None:
    """Issue an activation link and e-mail it to the patient's personal address (after commit)."""
    if not user.email:
        raise PatientError(_("Ce patient n'a pas d'adresse e-mail personnelle."))
    if _guarded_minor(user):
        raise PatientError(
            _(
                "Espace d'un mineur géré par son représentant légal : son propre accès "
                "s'ouvre à sa majorité, et le lien d'activation lui est alors envoyé."
            )
        )
    path = account_services.issue_activation_link(user, by=by)
    recipient = user.email
    body = render_to_string(
        "patients/emails/activation.txt",
        {
            "url": settings.SITE_URL + path,
            "hours": settings.ACTIVATION_LINK_HOURS,
            "operator": settings.OPERATOR_NAME,
        },
    )
    subject = _("Activez votre espace de messagerie santé")
    transaction.on_commit(lambda: send_mail(subject, body, None, [recipient], fail_silently=False))


def _guarded_minor(user: User) -> bool:
    """A minor whose space a guardian manages (issue 17): no login of their own until 18."""
    identity = PatientIdentity.objects.filter(user=user).first()
    return (
        identity is not None
        and majority_date(identity.birth_date) > timezone.localdate()
        and GuardianLink.objects.filter(child=identity, ended_at__isnull=True).exists()
    )


def _provisional_traits(matricule: str) -> tuple[str, date]:
    """Sex and an approximate birth date read from a NIR, for a box created by a first message.

    They are marked unqualified: staff complete the identity before activation.
    """
    sex = "M" if matricule[0] in "137" else "F"
    year = int(matricule[1:3])
    now_year = timezone.now().year % 100
    century = 2000 if year <= now_year else 1900
    month = int(matricule[3:5]) if matricule[3:5].isdigit() else 1
    return sex, date(century + year, month if 1 <= month <= 12 else 1, 1)


def _auto_create(address: str, *, by: User | None) -> Mailbox:
    local = address.partition("@")[0]
    try:
        matricule = ids.parse_ins(local).matricule
    except ids.IdentifierError as exc:
        raise SubmissionError(
            _("L'adresse « %(address)s » ne désigne pas un patient : %(reason)s")
            % {"address": address, "reason": _(str(exc))}
        ) from None
    if Mailbox.objects.filter(address=patient_address(matricule)).exists():
        return Mailbox.objects.get(address=patient_address(matricule))
    if User.objects.filter(username=matricule).exists():
        raise SubmissionError(
            _("Le patient « %(address)s » n'a pas encore d'espace : contactez l'équipe.")
            % {"address": address}
        )
    sex, birth = _provisional_traits(matricule)
    provisioned = provision_patient(
        ins=matricule,
        oid=PatientIdentity.Oid.NIR,
        birth_name="",
        first_names="",
        birth_date=birth,
        sex=sex,
        qualified=False,
        by=by,
        send_activation=False,
    )
    journal.record("patient.auto_created", actor=by, obj=provisioned.mailbox)
    return provisioned.mailbox


# --- The rules of the patient box (a rule of submit_message, added by PatientsConfig) -------


def professional_messages(box: Mailbox, thread_key: str) -> Q:
    """Messages of a thread sent to this patient box by a box that is not a patient's."""
    return Q(thread_key=thread_key, deliveries__mailbox=box) & ~Q(
        sender_mailbox__kind=Mailbox.Kind.PATIENT
    )


def conversation_state(box: Mailbox, thread_key: str) -> tuple[bool, bool]:
    """(opened by a professional, closed) for the patient box's conversation ``thread_key``."""
    pro = Message.objects.filter(professional_messages(box, thread_key))
    opened = pro.exists()
    closed = (
        pro.filter(conversation_closed=True).exists()
        or ConversationClosure.objects.filter(mailbox=box, thread_key=thread_key).exists()
    )
    return opened, closed


def reply_targets(box: Mailbox, thread_key: str) -> list[str]:
    """The professional addresses that wrote to the patient in this conversation, latest first."""
    rows = (
        Message.objects.filter(professional_messages(box, thread_key))
        .order_by("-date", "-pk")
        .values_list("from_addr", flat=True)
    )
    return list(dict.fromkeys(a.lower() for a in rows))


def check_submission(
    *,
    mailbox: Mailbox,
    recipients: Sequence[str],
    in_reply_to: Message | None,
    author: User | None = None,
) -> None:
    """The patient rules for one submission; raise SubmissionError naming the rule.

    - a patient box only answers, inside a conversation a professional opened and did
      not close, and only to the professional(s) who wrote in it;
    - a professional's message to an unknown patient address is refused, or creates the
      patient's box when PATIENT_AUTO_CREATE is on.
    """
    if mailbox.kind == Mailbox.Kind.PATIENT:
        if in_reply_to is None:
            opened, closed = False, False
        else:
            opened, closed = conversation_state(mailbox, in_reply_to.thread_key)
            # An appointment's Accepté / Refusé goes through a closed conversation (agenda_rules).
            closed = closed and not is_answering_appointment()
        try:
            check_patient_reply(conversation_opened_by_professional=opened, closed=closed)
        except PolicyError as exc:
            raise SubmissionError(str(exc)) from None
        assert in_reply_to is not None
        allowed = set(reply_targets(mailbox, in_reply_to.thread_key))
        extra = [a for a in recipients if a.lower() not in allowed]
        if extra:
            raise SubmissionError(
                _(
                    "Un patient répond seulement au professionnel qui lui a écrit : "
                    "%(addresses)s ne peut pas être ajouté."
                )
                % {"addresses": ", ".join(extra)}
            )
        return
    for address in recipients:
        if not addresses.is_patient_address(address):
            continue
        if Mailbox.objects.filter(address=address.lower()).exists():
            continue
        if settings.PATIENT_AUTO_CREATE:
            _auto_create(address.lower(), by=author)
            continue
        raise SubmissionError(
            _(
                "Aucun espace patient n'existe pour « %(address)s » : le patient doit d'abord "
                "être inscrit par l'équipe de l'opérateur."
            )
            % {"address": address}
        )


# --- Patient writes -----------------------------------------------------------------------


def reply(
    *,
    mailbox: Mailbox,
    author: User,
    parent: Message,
    text: str,
    attachments: Sequence[mime.Attachment] = (),
    request: HttpRequest | None = None,
) -> Message:
    """A patient's answer in a conversation: to the professional who wrote, nobody else."""
    if not text.strip() and not attachments:
        raise SubmissionError(_("Écrivez votre réponse avant de l'envoyer."))
    targets = reply_targets(mailbox, parent.thread_key)
    to = [parent.from_addr.lower()] if parent.from_addr.lower() in targets else targets[:1]
    subject = parent.subject
    if not subject.lower().replace(" ", "").startswith("re:"):
        subject = f"Re : {subject}".strip()
    return submit_message(
        mailbox=mailbox,
        author=author,
        to=to,
        cc=[],
        subject=subject,
        text=text,
        attachments=attachments,
        in_reply_to=parent,
        request=request,
    )


def took_part(box: Mailbox, patient_box: Mailbox, thread_key: str) -> bool:
    """Whether ``box`` wrote to the patient in this conversation (a copy received is not enough)."""
    return Message.objects.filter(
        thread_key=thread_key, sender_mailbox=box, deliveries__mailbox=patient_box
    ).exists()


@transaction.atomic
def close_conversation(
    *, patient_box: Mailbox, thread_key: str, by: User, from_mailbox: Mailbox | None
) -> ConversationClosure:
    """A professional closes a conversation with a patient: the patient can no longer reply.

    Closing speaks for the box (the patient can no longer answer it): it needs the send
    right in ``from_mailbox``, and that box must have written to this patient in this
    conversation. A box that was only copied in someone else's exchange with the patient
    closes nothing. Staff may close from the admin (``from_mailbox`` None).
    """
    if patient_box.kind != Mailbox.Kind.PATIENT or not thread_key:
        raise PatientError(_("Ce n'est pas une conversation avec un patient."))
    if from_mailbox is None:
        if not is_operator(by):
            raise PatientError(_("Indiquez la boîte qui clôt la conversation."))
    else:
        authorise(by, from_mailbox, Access.SEND)
        if not took_part(from_mailbox, patient_box, thread_key):
            raise PatientError(_("Cette boîte n'a pas écrit à ce patient dans cette conversation."))
    closure, created = ConversationClosure.objects.get_or_create(
        thread_key=thread_key,
        mailbox=patient_box,
        defaults={"closed_by": by, "closed_from": from_mailbox},
    )
    if created:
        journal.record(
            "patient.conversation_closed",
            actor=by,
            obj=patient_box,
            thread=thread_key[:100],
            by_mailbox=from_mailbox.address if from_mailbox else "",
        )
    return closure


@transaction.atomic
def update_preferences(user: User, *, frequency: str) -> NotificationPreference:
    """Change how often the patient is notified.

    The personal address is not changed here: it receives login codes, so it changes
    only through accounts.services.request_email_change (fresh code, confirmed link).
    """
    if frequency not in NotificationPreference.Frequency.values:
        raise PatientError(_("Fréquence inconnue."))
    pref, _created = NotificationPreference.objects.select_for_update().get_or_create(user=user)
    if pref.frequency != frequency:
        pref.frequency = frequency
        pref.save()
        journal.record("patient.preferences_changed", actor=user, obj=user, fields=["frequency"])
    return pref


# --- Notifications ------------------------------------------------------------------------


def _period(pref: NotificationPreference) -> timedelta:
    minutes = settings.PATIENT_NOTIFY_MINUTES
    if pref.frequency == NotificationPreference.Frequency.DAILY:
        minutes = max(minutes, 24 * 60)
    return timedelta(minutes=minutes)


def notification_text(child: str = "") -> tuple[str, str]:
    """The fixed subject and body: no sender, no subject, no content, ever.

    ``child``: to a guardian, the first name of the child whose space holds the message
    (a guardian of two children must know which space to open; a first name says nothing
    of anyone's health).
    """
    subject = _("Un nouveau message vous attend")
    body = render_to_string(
        "patients/emails/notification.txt",
        {
            "url": settings.SITE_URL + reverse("patient_home"),
            "operator": settings.OPERATOR_NAME,
            "child": child,
        },
    )
    return subject, body


def _first_name(user: User) -> str:
    identity = PatientIdentity.objects.filter(user=user).only("first_names").first()
    return identity.first_names.split()[0] if identity and identity.first_names.split() else ""


def notify(mailbox_id: int, *, now: datetime | None = None) -> bool:
    """E-mail the patient that a message waits, at most once per period; True when sent."""
    now = now or timezone.now()
    box = (
        Mailbox.objects.select_related("owner")
        .filter(pk=mailbox_id, kind=Mailbox.Kind.PATIENT)
        .first()
    )
    if box is None or box.owner is None or not box.is_active:
        return False
    user = box.owner
    # A minor's guardians are told too (issue 17, family), each in their own e-mail.
    guardians = [a for a in GuardianLink.guardian_addresses(user) if a != user.email]
    recipients = ([user.email] if user.email else []) + guardians
    if not recipients or not user.is_open:
        return False
    with transaction.atomic():
        pref, _created = NotificationPreference.objects.select_for_update().get_or_create(user=user)
        if pref.frequency == NotificationPreference.Frequency.NEVER:
            return False
        if pref.last_notified_at is not None and now - pref.last_notified_at < _period(pref):
            return False
        # Sent inside the transaction: if the mail server refuses, the time is not
        # recorded and a later delivery (or the task's retry) tries again.
        for recipient in recipients:
            subject, body = notification_text(_first_name(user) if recipient in guardians else "")
            send_mail(subject, body, None, [recipient], fail_silently=False)
        pref.last_notified_at = now
        pref.save(update_fields=["last_notified_at", "updated_at"])
        journal.record("patient.notified", obj=user, mailbox=box.address)
    return True


# --- Activation with e-mailed codes -------------------------------------------------------


def use_email_codes(user: User) -> account_services.Enrolment:
    """Replace the patient's second factor by codes e-mailed to the personal address."""
    return account_services.use_email_codes(user)
