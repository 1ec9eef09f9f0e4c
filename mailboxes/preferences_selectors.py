"""Reads of a user's preferences for a box: signature, out-of-office reply, rules (issue 14)."""

from __future__ import annotations

from typing import Any

from django.http import Http404

from mailboxes import selectors
from mailboxes.models import AutoReply, Folder, MailAlert, Mailbox, Rule, Signature
from mailboxes.selectors import Access


def signature_for(user: Any, mailbox: Mailbox) -> str:
    """The plain-text signature ``user`` puts under what they write from ``mailbox`` ("": none)."""
    if not getattr(user, "pk", None):
        return ""
    text = (
        Signature.objects.filter(user_id=user.pk, mailbox=mailbox)
        .values_list("text", flat=True)
        .first()
    )
    return text or ""


def signed(text: str, signature: str) -> str:
    """``text`` with the signature block ("-- " line, RFC 3676) inserted before it."""
    if not signature:
        return text
    return f"\n\n-- \n{signature}\n{text}"


def auto_reply_of(mailbox: Mailbox) -> AutoReply | None:
    """The box's out-of-office reply, if one was ever set."""
    return AutoReply.objects.filter(mailbox=mailbox).first()


def rules_of(mailbox: Mailbox) -> list[Rule]:
    """The box's rules, in the order they apply."""
    return list(Rule.objects.filter(mailbox=mailbox).select_related("folder"))


def rule_folders(mailbox: Mailbox) -> list[Folder]:
    """The folders a rule of ``mailbox`` may file into (its own, not Drafts nor Sent)."""
    return list(
        Folder.objects.filter(mailbox=mailbox)
        .exclude(role__in=(Folder.Role.DRAFTS, Folder.Role.SENT))
        .order_by("role", "name")
    )


def get_rule(user: Any, mailbox_id: int, rule_id: int) -> Rule:
    """A rule of a box ``user`` manages: 404 for anyone else's (or a stranger's) rule."""
    box = selectors.get_mailbox(user, mailbox_id, Access.MANAGE)
    rule = Rule.objects.select_related("mailbox").filter(pk=rule_id, mailbox=box).first()
    if rule is None:
        raise Http404
    return rule


def managed_boxes(user: Any) -> list[Mailbox]:
    """The boxes whose out-of-office reply and rules ``user`` may set (manage right or more)."""
    return [
        box
        for box in selectors.accessible_mailboxes(user).filter(status=Mailbox.Status.ACTIVE)
        if (selectors.access(user, box) or 0) >= Access.MANAGE
    ]


def mail_alert_on(user: Any) -> bool:
    """Whether ``user`` asked for the new-mail alert to their personal address."""
    return MailAlert.objects.filter(user_id=user.pk, enabled=True).exists()
