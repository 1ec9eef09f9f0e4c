"""The mailbox actions refuse who may not act and what makes no sense, writing nothing."""

from __future__ import annotations

import pytest

from audit.models import AuditEvent
from directory.models import DirectoryEntry
from mailboxes import services
from mailboxes.models import Mailbox
from tests import factories as f

pytestmark = pytest.mark.django_db


def test_only_staff_or_the_platform_close_reopen_or_hide_a_box() -> None:
    box = f.mailbox()
    colleague = f.professional(enrol=False)
    with pytest.raises(services.MailboxError, match="équipe"):
        services.close_mailbox(box, by=colleague)
    with pytest.raises(services.MailboxError, match="équipe"):
        services.set_liste_rouge(box, True, by=colleague)
    with pytest.raises(services.MailboxError, match="équipe"):
        services.update_mailbox(box, by=colleague, display_name="Moi")
    assert Mailbox.objects.filter(pk=box.pk, status="active", liste_rouge=False).exists()
    assert DirectoryEntry.objects.filter(address=box.address).exists()
    assert not AuditEvent.objects.filter(action__startswith="mailbox.").exclude(
        action="mailbox.created"
    )


def test_a_closed_box_is_not_closed_twice_nor_an_open_one_reopened() -> None:
    box = f.mailbox()
    with pytest.raises(services.MailboxError, match="ouverte"):
        services.reopen_mailbox(box, by=None)
    services.close_mailbox(box, by=None)
    assert box.status == Mailbox.Status.CLOSED  # the caller's instance follows
    with pytest.raises(services.MailboxError, match="déjà fermée"):
        services.close_mailbox(box, by=None)
    assert AuditEvent.objects.filter(action="mailbox.closed").count() == 1


def test_a_nominative_box_keeps_a_holder() -> None:
    box = f.mailbox()
    with pytest.raises(services.MailboxError, match="titulaire"):
        services.update_mailbox(box, by=f.staff(enrol=False), owner=None)
    assert Mailbox.objects.get(pk=box.pk).owner_id is not None
