"""Inactive mailboxes (CNIL deliberation 2014-239): warn the holder, then close the box.

A box's holder is its owner (nominative and patient boxes). Activity is the
holder's last login, the box's creation, or an objection to the closure made
from the warning e-mail, whichever is latest. Boxes staff exempted are left
alone; organisational and applicative boxes have no holder of their own and
are out of scope (their responsible professional's box is checked instead).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.conf import settings
from django.core import signing
from django.core.mail import send_mail
from django.db import transaction
from django.db.models import Max
from django.http import HttpRequest
from django.urls import reverse
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import override

from accounts.models import User
from audit import journal
from charter.models import InactivityExemption, InactivityWarning
from mailboxes.models import Mailbox
from mailboxes.services import lifecycle as mailbox_lifecycle

log = logging.getLogger(__name__)

_SALT = "charter.inactivity.objection"


class InactivityError(Exception):
    """A request about inactivity that cannot be done; the message says why."""


@dataclass
class InactivityRun:
    warned: int = 0
    closed: int = 0


def last_activity(mailbox: Mailbox) -> datetime:
    """The latest of the holder's last login, the box's creation or reopening, and an objection."""
    owner = mailbox.owner
    candidates = [mailbox.created_at]
    if mailbox.status_changed_at is not None:
        # Reopened by staff: the clock starts again (a closure leaves no open box here).
        candidates.append(mailbox.status_changed_at)
    if owner is not None and owner.last_login is not None:
        candidates.append(owner.last_login)
    objected = mailbox.inactivity_warnings.aggregate(last=Max("objected_at"))["last"]
    if objected is not None:
        candidates.append(objected)
    return max(candidates)


def objection_token(warning: InactivityWarning) -> str:
    return signing.TimestampSigner(salt=_SALT).sign(str(warning.pk))


def objection_url(warning: InactivityWarning) -> str:
    return settings.SITE_URL + reverse(
        "charter:inactivity_objection", args=[objection_token(warning)]
    )


def warning_from_token(token: str) -> InactivityWarning:
    """The warning a link designates, or InactivityError (bad or expired link)."""
    max_age = timedelta(days=settings.INACTIVE_CLOSE_DAYS)
    try:
        pk = int(signing.TimestampSigner(salt=_SALT).unsign(token, max_age=max_age))
    except (signing.BadSignature, ValueError):
        raise InactivityError(_("Ce lien n'est pas valide ou a expiré.")) from None
    warning = InactivityWarning.objects.select_related("mailbox").filter(pk=pk).first()
    if warning is None:
        raise InactivityError(_("Ce lien n'est pas valide ou a expiré."))
    return warning


def _warn(mailbox: Mailbox, since: datetime, now: datetime) -> InactivityWarning:
    # Whatever the task's delays, the holder always gets the full notice period.
    notice = timedelta(days=settings.INACTIVE_CLOSE_DAYS - settings.INACTIVE_WARN_DAYS)
    closes_after = max(since + timedelta(days=settings.INACTIVE_CLOSE_DAYS), now + notice)
    warning = InactivityWarning.objects.create(
        mailbox=mailbox, warned_at=now, inactive_since=since, closes_after=closes_after
    )
    owner = mailbox.owner
    emailed = bool(owner is not None and owner.email)
    journal.record(
        "mailbox.inactivity_warned",
        obj=mailbox,
        inactive_since=since.isoformat(),
        closes_after=closes_after.isoformat(),
        emailed=emailed,
    )
    if owner is not None and owner.email:
        with override("fr"):
            subject = _("Votre boîte de messagerie de santé sera fermée faute d'utilisation")
            body = _(
                "Bonjour,\n\n"
                "Vous ne vous êtes pas connecté(e) à votre boîte %(address)s depuis le "
                "%(since)s. Conformément à la recommandation de la CNIL (délibération "
                "2014-239), une boîte inutilisée est fermée : la vôtre le sera après le "
                "%(closes)s.\n\n"
                "Pour la conserver, connectez-vous simplement à %(site)s, ou indiquez que "
                "vous vous opposez à sa fermeture en ouvrant ce lien :\n%(link)s\n\n"
                "%(operator)s"
            ) % {
                "address": mailbox.address,
                "since": timezone.localtime(since).strftime("%d/%m/%Y"),
                "closes": timezone.localtime(closes_after).strftime("%d/%m/%Y"),
                "site": settings.SITE_URL,
                "link": objection_url(warning),
                "operator": settings.OPERATOR_NAME,
            }
        email = owner.email
        transaction.on_commit(
            lambda: send_mail(subject, body, settings.DEFAULT_FROM_EMAIL, [email])
        )
    return warning


def _close(mailbox: Mailbox, warning: InactivityWarning, since: datetime) -> None:
    mailbox_lifecycle.close_mailbox(
        mailbox,
        by=None,
        cause=mailbox_lifecycle.ClosureCause.INACTIVITY,
        inactive_since=since.isoformat(),
        warning=warning.pk,
    )
    owner = mailbox.owner
    if owner is not None and owner.email:
        with override("fr"):
            subject = _("Votre boîte de messagerie de santé a été fermée")
            body = _(
                "Bonjour,\n\n"
                "Faute de connexion depuis le %(since)s et sans opposition de votre part "
                "après notre avertissement du %(warned)s, votre boîte %(address)s a été "
                "fermée : elle ne reçoit plus de messages. Contactez l'équipe de "
                "%(operator)s pour la rouvrir."
            ) % {
                "since": timezone.localtime(since).strftime("%d/%m/%Y"),
                "warned": timezone.localtime(warning.warned_at).strftime("%d/%m/%Y"),
                "address": mailbox.address,
                "operator": settings.OPERATOR_NAME,
            }
        email = owner.email
        transaction.on_commit(
            lambda: send_mail(subject, body, settings.DEFAULT_FROM_EMAIL, [email])
        )


def check_inactive_mailboxes(*, now: datetime | None = None) -> InactivityRun:
    """Warn holders inactive for INACTIVE_WARN_DAYS; close boxes past their notice period."""
    now = now or timezone.now()
    run = InactivityRun()
    warn_before = now - timedelta(days=settings.INACTIVE_WARN_DAYS)
    for candidate in _candidates_at(now):
        with transaction.atomic():
            box = (
                Mailbox.objects.select_for_update(of=("self",))
                .select_related("owner", "domain")
                .get(pk=candidate.pk)
            )
            if box.status != Mailbox.Status.ACTIVE:
                continue
            since = last_activity(box)
            if since > warn_before:
                continue
            warning = (
                InactivityWarning.objects.filter(mailbox=box, warned_at__gte=since)
                .order_by("-warned_at")
                .first()
            )
            if warning is None:
                _warn(box, since, now)
                run.warned += 1
            elif warning.objected_at is None and now >= warning.closes_after:
                _close(box, warning, since)
                run.closed += 1
    if run.warned or run.closed:
        log.info("inactive mailboxes: %d warned, %d closed", run.warned, run.closed)
    return run


def _candidates_at(now: datetime) -> list[Mailbox]:
    warn_before = now - timedelta(days=settings.INACTIVE_WARN_DAYS)
    return list(
        Mailbox.objects.filter(
            status=Mailbox.Status.ACTIVE,
            kind__in=[Mailbox.Kind.PERSONAL, Mailbox.Kind.PATIENT],
            owner__isnull=False,
            owner__status=User.Status.ACTIVE,
            inactivity_exemption__isnull=True,
            created_at__lte=warn_before,
        )
        .exclude(owner__last_login__gt=warn_before)
        .exclude(status_changed_at__gt=warn_before)
        .select_related("owner", "domain")
        .order_by("pk")
    )


@transaction.atomic
def object_to_closure(warning: InactivityWarning, *, request: HttpRequest | None = None) -> None:
    """The holder keeps their box: the objection counts as activity and restarts the clock."""
    warning = InactivityWarning.objects.select_for_update().get(pk=warning.pk)
    if warning.mailbox.status != Mailbox.Status.ACTIVE:
        raise InactivityError(
            _("Cette boîte est déjà fermée : contactez l'équipe pour la rouvrir.")
        )
    if warning.objected_at is not None:
        return
    warning.objected_at = timezone.now()
    warning.save(update_fields=["objected_at"])
    journal.record(
        "mailbox.inactivity_objection", obj=warning.mailbox, request=request, warning=warning.pk
    )


# --- Staff exemptions -----------------------------------------------------------------------


@transaction.atomic
def exempt(mailbox: Mailbox, *, reason: str, by: User) -> InactivityExemption:
    """Staff keep a box open whatever its holder's inactivity (reason required)."""
    reason = reason.strip()
    if not reason:
        raise InactivityError(_("Un motif est obligatoire pour exempter une boîte."))
    if InactivityExemption.objects.filter(mailbox=mailbox).exists():
        raise InactivityError(_("Cette boîte est déjà exemptée."))
    exemption = InactivityExemption.objects.create(
        mailbox=mailbox, reason=reason, granted_by=by, granted_at=timezone.now()
    )
    journal.record("mailbox.inactivity_exempted", actor=by, obj=mailbox, reason=reason)
    return exemption


@transaction.atomic
def remove_exemption(exemption: InactivityExemption, *, by: User) -> None:
    """End an exemption: the box is checked again from the next run."""
    mailbox = exemption.mailbox
    exemption.delete()
    journal.record("mailbox.inactivity_exemption_removed", actor=by, obj=mailbox)
