"""Abuse reports and the staff decisions on them."""

from __future__ import annotations

from typing import Any

import pytest
from django.core import mail
from django.test import Client

from accounts.models import User
from audit.models import AuditEvent
from charter import services
from charter.models import AbuseReport, Sanction
from charter.tests.factories import received_message
from mailboxes import services as mailbox_services
from mailboxes.models import Mailbox
from tests import factories as f

pytestmark = pytest.mark.django_db


@pytest.fixture
def spam() -> dict[str, Any]:
    spammer = f.professional(first_name="Paul", last_name="Pourriel")
    spammer.email = "paul@example.org"
    spammer.save()
    victim = f.professional(first_name="Inès", last_name="Destinataire", enrol=False)
    sender_box = f.mailbox(spammer)
    victim_box = f.mailbox(victim)
    message = received_message(victim_box, sender=sender_box)
    return {"spammer": spammer, "victim": victim, "box": victim_box, "message": message}


def report(spam: dict[str, Any], reason: str = "Publicité non sollicitée") -> AbuseReport:
    return services.report_abuse(
        message=spam["message"], mailbox=spam["box"], reporter=spam["victim"], reason=reason
    )


def test_a_recipient_reports_a_message_with_its_metadata(spam: dict[str, Any]) -> None:
    made = report(spam)
    assert made.status == AbuseReport.Status.OPEN
    assert made.sender == spam["spammer"] and made.sender_addr == spam["message"].from_addr
    assert made.message_id_header == spam["message"].message_id
    event = AuditEvent.objects.get(action="abuse.reported")
    assert event.object_id == str(made.pk) and "Publicité" not in str(event.data)


def test_a_report_needs_a_reason(spam: dict[str, Any]) -> None:
    with pytest.raises(services.CharterError, match="pourquoi"):
        report(spam, reason="  ")


def test_nobody_reports_a_message_not_received_in_that_mailbox(spam: dict[str, Any]) -> None:
    # Another box the reporter may read, which never received it.
    other_box = f.shared_mailbox(spam["victim"])
    with pytest.raises(services.CharterError, match="pas été reçu"):
        services.report_abuse(
            message=spam["message"], mailbox=other_box, reporter=spam["victim"], reason="spam"
        )


def test_a_message_is_reported_once_per_reporter(spam: dict[str, Any]) -> None:
    report(spam)
    with pytest.raises(services.CharterError, match="déjà signalé"):
        report(spam)
    assert AbuseReport.objects.count() == 1


def decide(
    made: AbuseReport, decision: str, reason: str = "Envois publicitaires répétés"
) -> Sanction:
    return services.decide_report(made, decision=decision, reason=reason, by=f.staff())


def test_dismissing_a_report_sanctions_nobody(
    spam: dict[str, Any], django_capture_on_commit_callbacks: Any
) -> None:
    made = report(spam)
    with django_capture_on_commit_callbacks(execute=True):
        sanction = decide(made, Sanction.Decision.DISMISS, "Message légitime")
    made.refresh_from_db()
    assert made.status == AbuseReport.Status.DECIDED and sanction.user is None
    assert mail.outbox == []
    spam["spammer"].refresh_from_db()
    assert spam["spammer"].status == User.Status.ACTIVE


def test_a_warning_tells_the_sender_why(
    spam: dict[str, Any], django_capture_on_commit_callbacks: Any
) -> None:
    with django_capture_on_commit_callbacks(execute=True):
        decide(report(spam), Sanction.Decision.WARN)
    assert len(mail.outbox) == 1
    notice = mail.outbox[0]
    assert notice.to == ["paul@example.org"] and "Avertissement" in notice.subject
    assert "Envois publicitaires répétés" in notice.body
    spam["spammer"].refresh_from_db()
    assert spam["spammer"].status == User.Status.ACTIVE


def test_a_suspended_sender_can_no_longer_log_in(
    spam: dict[str, Any], django_capture_on_commit_callbacks: Any
) -> None:
    with django_capture_on_commit_callbacks(execute=True):
        sanction = decide(report(spam), Sanction.Decision.SUSPEND)
    spammer = User.objects.get(pk=spam["spammer"].pk)
    assert spammer.status == User.Status.SUSPENDED and sanction.user == spammer
    assert "Suspension" in mail.outbox[0].subject
    response = Client().post(
        "/connexion/", {"identifier": spammer.username, "password": f.PASSWORD}
    )
    assert response.status_code == 403
    assert "Envois publicitaires répétés" in response.content.decode()
    decided = AuditEvent.objects.get(action="abuse.decided")
    assert decided.data["decision"] == "suspend" and decided.data["sanctioned"] == spammer.pk
    assert AuditEvent.objects.filter(action="account.suspended", object_id=str(spammer.pk)).exists()


def test_closing_closes_the_senders_account(spam: dict[str, Any]) -> None:
    decide(report(spam), Sanction.Decision.CLOSE)
    assert User.objects.get(pk=spam["spammer"].pk).status == User.Status.CLOSED


def test_closing_closes_the_senders_box_to_new_mail(spam: dict[str, Any]) -> None:
    decide(report(spam), Sanction.Decision.CLOSE)
    closed = Mailbox.objects.get(owner=spam["spammer"])
    assert closed.status == Mailbox.Status.CLOSED
    with pytest.raises(mailbox_services.SubmissionError, match="cette boîte est fermée"):
        mailbox_services.submit_message(
            mailbox=spam["box"],
            author=spam["victim"],
            to=[closed.address],
            cc=[],
            subject="Re: offre",
            text="Non merci.",
        )
    refusal = AuditEvent.objects.filter(action="message.refused").latest("id")
    assert refusal.data["rule"] == "mailbox_closed"


def test_a_decision_needs_a_reason(spam: dict[str, Any]) -> None:
    made = report(spam)
    with pytest.raises(services.CharterError, match="motif"):
        decide(made, Sanction.Decision.SUSPEND, reason="")
    made.refresh_from_db()
    assert made.status == AbuseReport.Status.OPEN


def test_a_sender_from_another_operator_can_only_be_dismissed_here() -> None:
    victim = f.professional(enrol=False)
    box = f.mailbox(victim)
    message = received_message(box, from_addr="pub@autre-operateur.mssante.fr")
    made = services.report_abuse(message=message, mailbox=box, reporter=victim, reason="spam")
    boss = f.staff()
    with pytest.raises(services.CharterError, match="son opérateur"):
        services.decide_report(made, decision=Sanction.Decision.WARN, reason="spam", by=boss)
    services.decide_report(
        made, decision=Sanction.Decision.DISMISS, reason="hors de notre ressort", by=boss
    )


def test_staff_suspend_the_sender_from_the_admin(
    spam: dict[str, Any], staff_client: Client
) -> None:
    made = report(spam)
    url = "/admin/charter/abusereport/"
    assert staff_client.get(url).status_code == 200
    assert staff_client.get(f"{url}{made.pk}/change/").status_code == 200
    form = staff_client.post(url, {"action": "decide_suspend", "_selected_action": [made.pk]})
    assert form.status_code == 200 and "Motif" in form.content.decode()
    assert User.objects.get(pk=spam["spammer"].pk).status == User.Status.ACTIVE
    staff_client.post(
        url,
        {
            "action": "decide_suspend",
            "_selected_action": [made.pk],
            "apply": "1",
            "reason": "Spam répété",
        },
    )
    assert User.objects.get(pk=spam["spammer"].pk).status == User.Status.SUSPENDED
    sanction = Sanction.objects.get()
    assert sanction.reason == "Spam répété" and sanction.decided_by is not None
    assert staff_client.get(f"{url}add/").status_code == 403
