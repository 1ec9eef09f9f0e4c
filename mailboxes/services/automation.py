"""What a box does by itself with the mail it receives: its rules and its out-of-office reply.

The delivery pipeline calls ``place`` inside the transaction that writes the recipients'
entries, for the boxes that have a rule or an out-of-office reply on (the claim query
already says which, so a batch with none costs no query at all). Rules decide an entry's
folder and flags before it is inserted; an out-of-office reply is a task enqueued once
committed with two ids (box, message), never content. The task sends the reply through
``submit_message``, the path of a message the user writes (the charter, the scan, the
journal), at most once per correspondent and period (RFC 3834 §3.1, vacation(1)).
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import timedelta

from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from accounts.models import User
from audit import journal
from mailboxes import addresses, tasks
from mailboxes.models import AutoReply, AutoReplySent, Entry, Folder, Mailbox, Message, Rule
from mailboxes.selectors import Access
from mailboxes.services import queue
from mailboxes.services.alerts import alert_users
from mailboxes.services.errors import SubmissionError
from mailboxes.services.messages import submit_message
from mailboxes.services.rights import authorise

log = logging.getLogger(__name__)

# Local parts that never read their mail (RFC 3834 §3.1.8 and common practice).
_NO_REPLY = (
    "mailer-daemon",
    "postmaster",
    "noreply",
    "no-reply",
    "no_reply",
    "ne-pas-repondre",
    "nepasrepondre",
    "ne_pas_repondre",
    "donotreply",
    "do-not-reply",
    "listserv",
    "majordomo",
)


def subject_of(message: Message) -> str:
    """The subject as a person reads it (decrypted once subjects are sealed: never in SQL)."""
    return message.subject


def is_no_reply(address: str) -> bool:
    """An address nobody reads: a no-reply sender, a mailer daemon, a list robot."""
    local = address.strip().lower().partition("@")[0]
    return local.startswith(_NO_REPLY) or local.endswith(("-bounces", "-request", "-owner"))


@dataclass(frozen=True)
class Placement:
    """Where a delivered message lands in a box, and how it is flagged."""

    folder_id: int
    seen: bool = False
    flagged: bool = False


def rule_matches(rule: Rule, message: Message, *, from_app: bool) -> bool:
    """Whether ``rule``'s condition holds for ``message`` (in Python: subjects may be sealed)."""
    value = rule.value.strip().lower()
    if rule.condition == Rule.Condition.SENDER:
        sender = message.from_addr.strip().lower()
        if not value:
            return False
        if "@" in value:
            return sender == value
        return sender.partition("@")[2] == value.lstrip("@")
    if rule.condition == Rule.Condition.SUBJECT:
        return bool(value) and value in subject_of(message).lower()
    if rule.condition == Rule.Condition.PATIENT:
        return bool(message.patient_ins)
    if rule.condition == Rule.Condition.APPLICATIVE:
        return from_app
    return False


def apply_rules(
    rules: Iterable[Rule], message: Message, start: Placement, *, from_app: bool
) -> Placement:
    """The placement after every matching rule, in order (the last move wins)."""
    folder_id, seen, flagged = start.folder_id, start.seen, start.flagged
    for rule in rules:
        if not rule_matches(rule, message, from_app=from_app):
            continue
        if rule.action == Rule.Action.MOVE and rule.folder_id is not None:
            folder_id = rule.folder_id
        elif rule.action == Rule.Action.READ:
            seen = True
        elif rule.action == Rule.Action.FLAG:
            flagged = True
    return Placement(folder_id, seen, flagged)


def _app_senders(messages: Iterable[Message]) -> set[int]:
    """The messages (ids) sent from an applicative box of ours: one query."""
    senders = {m.sender_mailbox_id for m in messages if m.sender_mailbox_id}
    if not senders:
        return set()
    apps = set(
        Mailbox.objects.filter(pk__in=senders, kind=Mailbox.Kind.APPLICATIVE).values_list(
            "pk", flat=True
        )
    )
    return {m.pk for m in messages if m.sender_mailbox_id in apps}


def _live_rules(box_ids: set[int]) -> dict[int, list[Rule]]:
    rules: dict[int, list[Rule]] = {}
    # A rule's folder must be of its box (the service checks it; checked again here).
    for rule in Rule.objects.filter(mailbox_id__in=box_ids).select_related("folder"):
        if rule.folder is not None and rule.folder.mailbox_id != rule.mailbox_id:
            continue
        rules.setdefault(rule.mailbox_id, []).append(rule)
    return rules


def place(
    arrivals: Sequence[tuple[Mailbox, Message, int]],
) -> dict[tuple[int, int], Placement]:
    """Apply the boxes' rules to messages arriving (box, message, inbox id); enqueue the
    out-of-office replies once committed. The caller's transaction.

    ``arrivals`` are only those of boxes with a rule, a reply or their owner's new-mail alert
    on: four queries for the batch at most (rules, replies, alerts, applicative senders),
    none per message.
    """
    if not arrivals:
        return {}
    box_ids = {box.pk for box, _m, _i in arrivals}
    rules = _live_rules(box_ids)
    today = timezone.localdate()
    replies = {
        r.mailbox_id: r
        for r in AutoReply.objects.filter(
            mailbox_id__in=box_ids, enabled=True, start__lte=today, end__gte=today
        )
    }
    from_app = _app_senders([m for _b, m, _i in arrivals])
    # The owners of personal boxes who asked for a new-mail alert: one task each.
    for user_id in sorted(
        alert_users(
            {b.owner_id for b, _m, _i in arrivals if b.kind == Mailbox.Kind.PERSONAL and b.owner_id}
        )
    ):
        transaction.on_commit(functools.partial(queue.enqueue, tasks.send_new_mail_alert, user_id))
    placements: dict[tuple[int, int], Placement] = {}
    answered: set[tuple[int, str]] = set()
    for box, message, inbox_id in arrivals:
        is_app = message.pk in from_app
        placement = apply_rules(
            rules.get(box.pk, ()), message, Placement(inbox_id), from_app=is_app
        )
        placements[(box.pk, message.pk)] = placement
        reply = replies.get(box.pk)
        correspondent = message.from_addr.strip().lower()
        if (
            reply is not None
            and (box.pk, correspondent) not in answered
            and may_answer(box, message, reply, from_app=is_app)
        ):
            # Two messages of one sender in a batch: one task (the task checks again).
            answered.add((box.pk, correspondent))
            transaction.on_commit(
                functools.partial(queue.enqueue, tasks.send_auto_reply, box.pk, message.pk)
            )
    return placements


def may_answer(box: Mailbox, message: Message, reply: AutoReply, *, from_app: bool) -> bool:
    """RFC 3834 §2 and §3.1: never automatic mail, a report, a list, a robot, ourselves."""
    sender = message.from_addr.strip().lower()
    return not (
        message.automatic
        or message.null_return_path
        or message.origin == Message.Origin.SYSTEM
        or not sender
        or is_no_reply(sender)
        or from_app
        or box.kind == Mailbox.Kind.APPLICATIVE
        or sender == box.address.lower()
        or message.sender_mailbox_id == box.pk
        or (reply.professionals_only and addresses.is_patient_address(sender))
    )


def send_auto_reply(mailbox_id: int, message_id: int) -> Message | None:
    """Answer ``message_id`` with the box's out-of-office reply, unless already answered.

    Safe to run twice and concurrently: the reply row is locked, and the correspondent's
    last answer (this period, within ``interval_days``) is looked up under that lock.
    Returns the reply sent, or None.
    """
    with transaction.atomic():
        reply = (
            AutoReply.objects.select_for_update()
            .select_related("mailbox__domain")
            .filter(mailbox_id=mailbox_id)
            .first()
        )
        if reply is None or not reply.is_active() or not reply.mailbox.is_active:
            return None
        box = reply.mailbox
        entry = (
            Entry.objects.select_related("message")
            .filter(mailbox=box, message_id=message_id)
            .first()
        )
        if entry is None:
            return None
        message = entry.message
        if not may_answer(box, message, reply, from_app=bool(_app_senders([message]))):
            return None
        correspondent = message.from_addr.strip().lower()[:254]
        now = timezone.now()
        last = AutoReplySent.objects.filter(auto_reply=reply, correspondent=correspondent).first()
        if (
            last is not None
            and last.period == reply.period
            and last.sent_at > now - timedelta(days=reply.interval_days)
        ):
            return None
        try:
            sent = _submit(box, message, reply)
        except SubmissionError as exc:
            # The charter refused it (a sanction, a closed box): nothing to retry.
            log.info("auto-reply of box %s to message %s refused: %s", box.pk, message_id, exc)
            journal.record(
                "message.auto_reply_refused",
                object_type=Message._meta.label_lower,
                object_id=message_id,
                mailbox=box.address,
            )
            return None
        AutoReplySent.objects.update_or_create(
            auto_reply=reply,
            correspondent=correspondent,
            defaults={"period": reply.period, "sent_at": now},
        )
    return sent


def _submit(box: Mailbox, message: Message, reply: AutoReply) -> Message:
    return submit_message(
        mailbox=box,
        # The platform answers for the box (no person sends it): the charter's checks, the
        # scan and the journal still apply, as for any message from the box.
        author=None,
        to=[message.from_addr.strip().lower()],
        cc=[],
        subject=_("Réponse automatique : %(subject)s") % {"subject": subject_of(message)},
        text=reply.text,
        in_reply_to=message,
        extra_headers={"Auto-Submitted": "auto-replied"},
        origin=Message.Origin.SYSTEM,
        mark_answered=False,
    )


def apply_rules_to_inbox(mailbox: Mailbox, *, by: User, limit: int = 5000) -> int:
    """Apply the box's rules to the messages already in its inbox; return how many changed.

    Bounded (``limit`` most recent messages) so that one click never runs without end.
    """
    authorise(by, mailbox, Access.MANAGE)
    with transaction.atomic():
        rules = _live_rules({mailbox.pk}).get(mailbox.pk, [])
        inbox = Folder.objects.get(mailbox=mailbox, role=Folder.Role.INBOX)
        entries = list(
            Entry.objects.select_related("message")
            .filter(folder=inbox)
            .order_by("-received_at", "-pk")[:limit]
        )
        if not rules or not entries:
            return 0
        from_app = _app_senders([e.message for e in entries])
        changed = 0
        for entry in entries:
            placement = apply_rules(
                rules,
                entry.message,
                Placement(entry.folder_id, entry.seen, entry.flagged),
                from_app=entry.message_id in from_app,
            )
            if placement == Placement(entry.folder_id, entry.seen, entry.flagged):
                continue
            # One UPDATE per changed entry: the counters' triggers follow each.
            Entry.objects.filter(pk=entry.pk).update(
                folder_id=placement.folder_id,
                seen=placement.seen,
                flagged=placement.flagged,
                previous_folder_id=entry.folder_id
                if placement.folder_id != entry.folder_id
                else entry.previous_folder_id,
            )
            changed += 1
        journal.record(
            "mailbox.rules_applied", actor=by, obj=mailbox, rules=len(rules), changed=changed
        )
    return changed
