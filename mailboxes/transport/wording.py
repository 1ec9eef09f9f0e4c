"""What the reports we write (DSN, read receipts) say in words, and in which language."""

from __future__ import annotations

from datetime import datetime

from django.conf import settings
from django.utils import timezone
from django.utils.translation import gettext as _

from mailboxes.models import Message


def report_language(message: Message) -> str:
    """The language a report about ``message`` is written in, for whoever gets it."""
    if message.sender_mailbox_id is not None and message.language:
        return message.language
    return settings.LANGUAGE_CODE


def when(moment: datetime) -> str:
    """``le 04/12/2026 à 21:13``, in the active language."""
    local = timezone.localtime(moment)
    return _("le %(day)s à %(time)s") % {
        "day": local.strftime("%d/%m/%Y"),
        "time": local.strftime("%H:%M"),
    }
