"""The new-mail alert of a professional: a content-free e-mail to their personal address.

Opt-in from the preferences; the pipeline enqueues ``send_new_mail_alert`` (a user id)
once per batch for the owners of the boxes that received mail; the task sends at most
one alert per ``ALERT_INTERVAL``, saying only how many messages are new.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from django.conf import settings
from django.core.mail import send_mail
from django.db import transaction
from django.template.loader import render_to_string
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import ngettext

from accounts.models import User
from audit import journal
from mailboxes.models import Entry, Folder, MailAlert, Mailbox
from mailboxes.services.preferences import PreferencesError

if TYPE_CHECKING:
    from django.http import HttpRequest

ALERT_INTERVAL = timedelta(hours=1)
# Folders whose messages are not "new mail" (what the user wrote, or threw away).
_NOT_NEW = (Folder.Role.SENT, Folder.Role.DRAFTS, Folder.Role.TRASH)


def set_mail_alert(user: User, *, enabled: bool, request: HttpRequest | None = None) -> MailAlert:
    """Switch the user's new-mail alert on or off (a professional with a personal address)."""
    if user.kind != User.Kind.PROFESSIONAL:
        raise PreferencesError(_("L'alerte est réservée aux professionnels."))
    if enabled and not user.email:
        raise PreferencesError(
            _("Indiquez d'abord votre adresse personnelle (Mon compte, adresse e-mail).")
        )
    with transaction.atomic():
        alert, _created = MailAlert.objects.select_for_update().get_or_create(user=user)
        if enabled and not alert.enabled:
            alert.counted_from = timezone.now()
        alert.enabled = enabled
        alert.save()
        journal.record("account.mail_alert_set", actor=user, obj=user, request=request, on=enabled)
    return alert


def alert_users(owner_ids: set[int]) -> set[int]:
    """Among these owners, those with the alert on (one query)."""
    if not owner_ids:
        return set()
    return set(
        MailAlert.objects.filter(user_id__in=owner_ids, enabled=True).values_list(
            "user_id", flat=True
        )
    )


def send_new_mail_alert(user_id: int, *, now: datetime | None = None) -> bool:
    """E-mail the user how many messages are new, unless one was sent in the last hour.

    Safe to run twice: the alert row is locked, and the time of the last alert is
    recorded with the sending (a refusal of the mail server leaves it unrecorded).
    """
    now = now or timezone.now()
    with transaction.atomic():
        alert = (
            MailAlert.objects.select_for_update()
            .select_related("user")
            .filter(user_id=user_id, enabled=True)
            .first()
        )
        if alert is None:
            return False
        user = alert.user
        if not user.email or not user.is_open or user.kind != User.Kind.PROFESSIONAL:
            return False
        if alert.last_sent_at is not None and now - alert.last_sent_at < ALERT_INTERVAL:
            return False
        count = (
            Entry.objects.filter(
                mailbox__owner_id=user.pk,
                mailbox__kind=Mailbox.Kind.PERSONAL,
                seen=False,
                received_at__gt=alert.counted_from,
            )
            .exclude(folder__role__in=_NOT_NEW)
            .count()
        )
        if not count:
            return False
        subject = ngettext(
            "%(count)d nouveau message sur votre messagerie MSSanté",
            "%(count)d nouveaux messages sur votre messagerie MSSanté",
            count,
        ) % {"count": count}
        body = render_to_string(
            "mailboxes/emails/new_mail_alert.txt",
            {
                "count": count,
                "url": settings.SITE_URL + "/messagerie/",
                "operator": settings.OPERATOR_NAME,
            },
        )
        send_mail(subject, body, None, [user.email], fail_silently=False)
        alert.last_sent_at = now
        alert.counted_from = now
        alert.save(update_fields=["last_sent_at", "counted_from", "updated_at"])
        journal.record("account.mail_alert_sent", obj=user, messages=count)
    return True
