"""A user's preferences for a box: signature, out-of-office reply, rules (issue 14).

Every function checks the actor's right in the box (a stranger gets 404, a member short
of it 403), validates what a browser sent (bounded, refused in French, nothing written
on a refusal) and journals the change without its content (no signature or reply text).
"""

from __future__ import annotations

import re
from datetime import date
from typing import TYPE_CHECKING

from django.db import transaction
from django.db.models import Max
from django.utils.translation import gettext as _

from accounts.models import User
from audit import journal
from mailboxes.models import AutoReply, Folder, Mailbox, Rule, Signature
from mailboxes.preferences_models import (
    AUTO_REPLY_MAX_CHARS,
    RULE_VALUE_MAX_CHARS,
    RULES_PER_MAILBOX,
    SIGNATURE_MAX_CHARS,
)
from mailboxes.selectors import Access
from mailboxes.services.rights import authorise

if TYPE_CHECKING:
    from django.http import HttpRequest

# The longest absence an out-of-office reply may cover, and the interval bounds (days).
AUTO_REPLY_MAX_DAYS = 366
INTERVAL_MIN_DAYS = 1
INTERVAL_MAX_DAYS = 30

# A sender condition: an address or a domain, nothing else.
_SENDER_RE = re.compile(r"^@?[a-z0-9._%+-]*@?[a-z0-9.-]+\.[a-z]{2,63}$")
# Folders a rule may not file into: what the user writes, not what they receive.
_NOT_TARGETS = (Folder.Role.DRAFTS, Folder.Role.SENT)


class PreferencesError(Exception):
    """A preference refused; the message (French) says why. Nothing was written."""


def _clean_text(text: str) -> str:
    return "\n".join(line.rstrip() for line in text.replace("\r\n", "\n").split("\n")).strip("\n")


def set_signature(
    user: User, mailbox: Mailbox, text: str, *, request: HttpRequest | None = None
) -> Signature | None:
    """Record ``user``'s signature for ``mailbox`` (empty: none); they need the send right."""
    authorise(user, mailbox, Access.SEND)
    text = _clean_text(text)
    if len(text) > SIGNATURE_MAX_CHARS:
        raise PreferencesError(
            _("Signature trop longue : %(count)d caractères, au plus %(limit)d.")
            % {"count": len(text), "limit": SIGNATURE_MAX_CHARS}
        )
    with transaction.atomic():
        if not text:
            Signature.objects.filter(user=user, mailbox=mailbox).delete()
            signature = None
        else:
            signature, _created = Signature.objects.update_or_create(
                user=user, mailbox=mailbox, defaults={"text": text}
            )
        journal.record(
            "mailbox.signature_set", actor=user, obj=mailbox, request=request, length=len(text)
        )
    return signature


def set_auto_reply(
    mailbox: Mailbox,
    *,
    by: User,
    enabled: bool,
    start: date,
    end: date,
    text: str,
    professionals_only: bool = False,
    interval_days: int = 4,
    request: HttpRequest | None = None,
) -> AutoReply:
    """Record the box's out-of-office reply; those who may manage the box only.

    Switching it on or changing its dates starts a new period: each correspondent is
    answered once again.
    """
    authorise(by, mailbox, Access.MANAGE)
    text = _clean_text(text)
    if mailbox.kind == Mailbox.Kind.APPLICATIVE:
        raise PreferencesError(_("Une boîte applicative ne répond pas automatiquement."))
    if end < start:
        raise PreferencesError(_("La date de fin doit suivre la date de début."))
    if (end - start).days >= AUTO_REPLY_MAX_DAYS:
        raise PreferencesError(
            _("Une absence dure au plus %(days)d jours.") % {"days": AUTO_REPLY_MAX_DAYS}
        )
    if enabled and not text:
        raise PreferencesError(_("Écrivez le message de la réponse automatique."))
    if len(text) > AUTO_REPLY_MAX_CHARS:
        raise PreferencesError(
            _("Message trop long : %(count)d caractères, au plus %(limit)d.")
            % {"count": len(text), "limit": AUTO_REPLY_MAX_CHARS}
        )
    if not INTERVAL_MIN_DAYS <= interval_days <= INTERVAL_MAX_DAYS:
        raise PreferencesError(
            _("L'intervalle va de %(low)d à %(high)d jours.")
            % {"low": INTERVAL_MIN_DAYS, "high": INTERVAL_MAX_DAYS}
        )
    with transaction.atomic():
        reply = AutoReply.objects.select_for_update().filter(mailbox=mailbox).first()
        if reply is None:
            reply = AutoReply(mailbox=mailbox, start=start, end=end)
        elif (enabled and not reply.enabled) or (reply.start, reply.end) != (start, end):
            reply.period += 1
        reply.enabled = enabled
        reply.start, reply.end = start, end
        reply.text = text
        reply.professionals_only = professionals_only
        reply.interval_days = interval_days
        reply.updated_by = by
        reply.save()
        journal.record(
            "mailbox.auto_reply_set",
            actor=by,
            obj=mailbox,
            request=request,
            enabled=enabled,
            start=start.isoformat(),
            end=end.isoformat(),
        )
    return reply


def add_rule(
    mailbox: Mailbox,
    *,
    by: User,
    condition: str,
    value: str,
    action: str,
    folder_id: int | None = None,
    request: HttpRequest | None = None,
) -> Rule:
    """Add a rule at the end of the box's rules; those who may manage the box only."""
    authorise(by, mailbox, Access.MANAGE)
    if condition not in Rule.Condition.values:
        raise PreferencesError(_("Choisissez une condition."))
    if action not in Rule.Action.values:
        raise PreferencesError(_("Choisissez une action."))
    value = value.strip()
    if len(value) > RULE_VALUE_MAX_CHARS:
        raise PreferencesError(
            _("Valeur trop longue : au plus %(limit)d caractères.")
            % {"limit": RULE_VALUE_MAX_CHARS}
        )
    if condition == Rule.Condition.SENDER:
        value = value.lower()
        if not _SENDER_RE.fullmatch(value):
            raise PreferencesError(
                _("Indiquez une adresse (nom@domaine.fr) ou un domaine (domaine.fr).")
            )
    elif condition == Rule.Condition.SUBJECT:
        if not value:
            raise PreferencesError(_("Indiquez le texte que l'objet doit contenir."))
    else:
        value = ""
    folder = None
    if action == Rule.Action.MOVE:
        # A folder of this very box: an id of another box's folder is refused, not used.
        folder = (
            Folder.objects.filter(pk=folder_id, mailbox=mailbox)
            .exclude(role__in=_NOT_TARGETS)
            .first()
            if folder_id
            else None
        )
        if folder is None:
            raise PreferencesError(_("Choisissez un dossier de cette boîte."))
    with transaction.atomic():
        # Locks the box's row: two additions at once cannot both pass the limit.
        Mailbox.objects.select_for_update().filter(pk=mailbox.pk).first()
        rules = Rule.objects.filter(mailbox=mailbox)
        if rules.count() >= RULES_PER_MAILBOX:
            raise PreferencesError(
                _("Au plus %(limit)d règles par boîte.") % {"limit": RULES_PER_MAILBOX}
            )
        last = rules.aggregate(last=Max("position"))["last"]
        rule = Rule.objects.create(
            mailbox=mailbox,
            position=(last or 0) + 1,
            condition=condition,
            value=value,
            action=action,
            folder=folder,
        )
        journal.record(
            "mailbox.rule_added",
            actor=by,
            obj=mailbox,
            request=request,
            rule=rule.pk,
            condition=condition,
            then=action,
        )
    return rule


def move_rule(rule: Rule, *, by: User, up: bool, request: HttpRequest | None = None) -> None:
    """Swap ``rule`` with the one before it (``up``) or after it; the order rules apply in."""
    authorise(by, rule.mailbox, Access.MANAGE)
    with transaction.atomic():
        rules = list(
            Rule.objects.select_for_update()
            .filter(mailbox_id=rule.mailbox_id)
            .order_by("position", "pk")
        )
        index = next((i for i, r in enumerate(rules) if r.pk == rule.pk), None)
        if index is None:
            return
        other = index - 1 if up else index + 1
        if not 0 <= other < len(rules):
            return
        rules[index], rules[other] = rules[other], rules[index]
        for position, item in enumerate(rules, start=1):
            if item.position != position:
                Rule.objects.filter(pk=item.pk).update(position=position)
        journal.record(
            "mailbox.rule_moved", actor=by, obj=rule.mailbox, request=request, rule=rule.pk
        )


def delete_rule(rule: Rule, *, by: User, request: HttpRequest | None = None) -> None:
    """Remove ``rule`` from its box."""
    authorise(by, rule.mailbox, Access.MANAGE)
    with transaction.atomic():
        Rule.objects.filter(pk=rule.pk).delete()
        journal.record(
            "mailbox.rule_deleted", actor=by, obj=rule.mailbox, request=request, rule=rule.pk
        )
