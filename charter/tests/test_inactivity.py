"""Inactive mailboxes (CNIL 2014-239): warned at INACTIVE_WARN_DAYS, closed at INACTIVE_CLOSE_DAYS."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
import time_machine
from django.core import mail
from django.test import Client
from django.utils import timezone

from audit.models import AuditEvent
from charter import inactivity
from charter.models import InactivityWarning
from mailboxes.models import Mailbox
from tests import factories as f
from tests.personas import person

pytestmark = pytest.mark.django_db


@pytest.fixture
def box() -> Mailbox:
    return person("Odile", "Absente", enrol=False, email="odile@example.org").box


def run_after(days: int) -> inactivity.InactivityRun:
    with time_machine.travel(timezone.now() + timedelta(days=days), tick=False):
        return inactivity.check_inactive_mailboxes()


def test_an_active_holder_is_left_alone(box: Mailbox) -> None:
    assert run_after(100) == inactivity.InactivityRun(0, 0)
    assert not mail.outbox


def test_the_holder_is_warned_by_email_after_the_warning_period(
    box: Mailbox, django_capture_on_commit_callbacks: object
) -> None:
    with django_capture_on_commit_callbacks(execute=True):  # type: ignore[operator]
        assert run_after(336).warned == 1
    (sent,) = mail.outbox
    assert sent.to == ["odile@example.org"]
    assert box.address in sent.body and "CNIL" in sent.body
    assert AuditEvent.objects.filter(action="mailbox.inactivity_warned").count() == 1
    # Warned once, not every day.
    assert run_after(337).warned == 0


def test_the_box_closes_after_the_closing_period_without_login_or_objection(box: Mailbox) -> None:
    run_after(336)
    assert run_after(366).closed == 1
    box.refresh_from_db()
    assert box.status == Mailbox.Status.CLOSED
    closed = AuditEvent.objects.get(action="mailbox.closed", object_id=str(box.pk))
    assert closed.data["cause"] == "inactivity" and closed.actor_id is None


def test_a_late_warning_still_gives_the_full_notice_period(box: Mailbox) -> None:
    # The task did not run for a while: warned at day 400, not closed the day after.
    assert run_after(400).warned == 1
    assert run_after(401).closed == 0
    assert run_after(431).closed == 1


def test_a_login_after_the_warning_keeps_the_box_open(box: Mailbox) -> None:
    run_after(336)
    assert box.owner is not None
    box.owner.last_login = timezone.now() + timedelta(days=340)
    box.owner.save()
    assert run_after(366).closed == 0
    box.refresh_from_db()
    assert box.status == Mailbox.Status.ACTIVE


def test_an_objection_from_the_link_keeps_the_box_open(
    box: Mailbox, django_capture_on_commit_callbacks: object
) -> None:
    with django_capture_on_commit_callbacks(execute=True):  # type: ignore[operator]
        run_after(336)
    path = re.search(r"http://[^/]+(/charte/inactivite/\S+/)", mail.outbox[0].body)
    assert path is not None
    client = Client()
    page = client.get(path.group(1))
    assert page.status_code == 200 and "oppose à la fermeture" in page.content.decode()
    with time_machine.travel(timezone.now() + timedelta(days=340), tick=False):
        done = client.post(path.group(1))
    assert done.status_code == 200 and "ne sera pas fermée" in done.content.decode()
    assert InactivityWarning.objects.get().objected_at is not None
    assert run_after(366).closed == 0
    assert AuditEvent.objects.filter(action="mailbox.inactivity_objection").exists()


def test_a_forged_objection_link_is_refused(box: Mailbox) -> None:
    page = Client().get("/charte/inactivite/123:forged:sig/")
    assert page.status_code == 404
    assert "pas valide" in page.content.decode()


def test_staff_can_exempt_a_mailbox(box: Mailbox) -> None:
    boss = f.staff()
    inactivity.exempt(box, reason="Boîte de garde, rarement consultée", by=boss)
    assert run_after(400) == inactivity.InactivityRun(0, 0)
    assert AuditEvent.objects.filter(action="mailbox.inactivity_exempted").exists()


def test_an_exemption_needs_a_reason(box: Mailbox) -> None:
    with pytest.raises(inactivity.InactivityError, match="motif"):
        inactivity.exempt(box, reason=" ", by=f.staff())


def test_staff_exempt_a_mailbox_in_the_admin(box: Mailbox, staff_client: Client) -> None:
    response = staff_client.post(
        "/admin/charter/inactivityexemption/add/",
        {"mailbox": box.pk, "reason": "Astreinte"},
    )
    assert response.status_code == 302, response.content.decode()[:2000]
    assert box.inactivity_exemption.reason == "Astreinte"
    event = AuditEvent.objects.get(action="mailbox.inactivity_exempted")
    assert event.actor_id is not None


def test_the_daily_task_is_scheduled(settings: object) -> None:
    from django.conf import settings as conf

    entry = conf.CELERY_BEAT_SCHEDULE["inactive-mailboxes"]
    assert entry["task"] == "charter.tasks.check_inactive_mailboxes"
