"""Reads of a user's preferences for a box: signature, out-of-office reply, rules (issue 14)."""

from __future__ import annotations

import unicodedata
from dataclasses import dataclass
from typing import Any

from django.db.models import Q
from django.http import Http404
from django.utils.translation import gettext as _

from accounts.models import PatientIdentity
from directory import selectors as directory_selectors
from mailboxes import selectors
from mailboxes.models import (
    AutoReply,
    Contact,
    Folder,
    MailAlert,
    Mailbox,
    Message,
    Rule,
    Signature,
)
from mailboxes.preferences_models import CONTACTS_PER_USER
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
    return sorted(
        Folder.objects.filter(mailbox=mailbox).exclude(
            role__in=(Folder.Role.DRAFTS, Folder.Role.SENT)
        ),
        key=selectors.folder_sort_key,
    )


def get_rule(user: Any, mailbox_id: int, rule_id: int) -> Rule:
    """A rule of a box ``user`` manages: 404 for anyone else's (or a stranger's) rule."""
    box = selectors.get_mailbox(user, mailbox_id, Access.MANAGE)
    rule = Rule.objects.select_related("mailbox").filter(pk=rule_id, mailbox=box).first()
    if rule is None:
        raise Http404
    return rule


def mail_alert_on(user: Any) -> bool:
    """Whether ``user`` asked for the new-mail alert to their personal address."""
    return MailAlert.objects.filter(user_id=user.pk, enabled=True).exists()


def favourites(user: Any) -> list[Contact]:
    """The correspondents ``user`` starred."""
    return list(Contact.objects.filter(user_id=user.pk)[:CONTACTS_PER_USER])


@dataclass(frozen=True)
class Correspondent:
    address: str
    name: str = ""
    starred: bool = False


RECENT_MESSAGES = 200


def recent_correspondents(user: Any, limit: int = 20) -> list[Correspondent]:
    """Whom ``user``'s boxes wrote to lately (the last messages of their Sent), computed."""
    boxes = selectors.accessible_mailboxes(user).values("pk")
    rows = (
        Message.objects.filter(
            entries__mailbox_id__in=boxes,
            entries__folder__role=Folder.Role.SENT,
        )
        .order_by("-date", "-pk")
        .values_list("to_addrs", "cc_addrs")[:RECENT_MESSAGES]
    )
    starred = set(Contact.objects.filter(user_id=user.pk).values_list("address", flat=True))
    seen: dict[str, Correspondent] = {}
    for to, cc in rows:
        for address in [*(to or []), *(cc or [])]:
            key = str(address).strip().lower()
            if key and key not in seen:
                seen[key] = Correspondent(key, starred=key in starred)
            if len(seen) >= limit:
                return list(seen.values())
    return list(seen.values())


def known_patients(user: Any, query: str = "", limit: int = 50) -> list[PatientIdentity]:
    """Patients ``user``'s boxes already exchanged with (never the whole INS base), by name.

    Matched in Python on the few patients found, every word of ``query`` in their names.
    """
    boxes = selectors.accessible_mailboxes(user).values("pk")
    patients = (
        PatientIdentity.objects.filter(
            Q(user__mailboxes__deliveries__message__sender_mailbox_id__in=boxes)
            | Q(user__mailboxes__sent_messages__deliveries__mailbox_id__in=boxes)
        )
        .select_related("user")
        .distinct()
        .order_by("birth_name", "first_names", "pk")[:500]
    )
    words = [_fold(w) for w in query.split()[:5]]
    found = []
    for identity in patients:
        names = _fold(f"{identity.birth_name} {identity.used_name} {identity.first_names}")
        if all(w in names for w in words):
            found.append(identity)
        if len(found) >= limit:
            break
    return found


def patient_addresses(patients: list[PatientIdentity]) -> dict[int, str]:
    """Each patient's box address (INS@patient domain), by identity id: one query."""
    boxes = dict(
        Mailbox.objects.filter(
            kind=Mailbox.Kind.PATIENT, owner_id__in=[p.user_id for p in patients]
        ).values_list("owner_id", "address")
    )
    return {p.pk: boxes[p.user_id] for p in patients if p.user_id in boxes}


def _fold(text: str) -> str:
    return unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode().lower()


def recipient_suggestions(user: Any, query: str, limit: int = 10) -> list[dict[str, str]]:
    """Compose suggestions: favourites, patients exchanged with (by name), then the directory."""
    query = query.strip()[:100]
    if len(query) < 2:
        return []
    folded = _fold(query)
    out: dict[str, dict[str, str]] = {}
    for contact in favourites(user):
        if folded in _fold(f"{contact.name} {contact.address}"):
            out.setdefault(
                contact.address,
                {
                    "address": contact.address,
                    "name": contact.name or contact.address,
                    "profession": str(_("Favori")),
                    "city": "",
                    "type": "favourite",
                },
            )
    patients = known_patients(user, query, limit)
    boxes = {
        b.owner_id: b.address
        for b in Mailbox.objects.filter(
            kind=Mailbox.Kind.PATIENT, owner_id__in=[p.user_id for p in patients]
        )
    }
    for identity in patients:
        address = boxes.get(identity.user_id)
        if address:
            out.setdefault(
                address,
                {
                    "address": address,
                    "name": f"{identity.first_names} {identity.birth_name}",
                    "profession": str(_("Patient")),
                    "city": identity.birth_date.strftime("%d/%m/%Y"),
                    "type": "patient",
                },
            )
    if len(out) < limit:
        for row in directory_selectors.autocomplete(query, limit=limit - len(out)):
            out.setdefault(row["address"], row)
    return list(out.values())[:limit]


def writable_box(user: Any) -> Mailbox | None:
    """The box "Écrire à" writes from: the user's own, else the first they may send from."""
    own = selectors.default_mailbox(user)
    if own is not None and (selectors.access(user, own) or 0) >= Access.SEND:
        return own
    for box in (
        selectors.accessible_mailboxes(user)
        .filter(status=Mailbox.Status.ACTIVE)
        .order_by("address")
    ):
        if (selectors.access(user, box) or 0) >= Access.SEND:
            return box
    return None
