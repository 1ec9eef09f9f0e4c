"""Recipient rules of the trust space: hosted or listed, the 40-recipient limit and its exceptions, patients."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
import time_machine
from django.test import Client
from django.utils import timezone

from audit.models import AuditEvent
from mailboxes.models import Mailbox
from tests import factories as f
from trust import services
from trust.models import ListedDomain, RecipientLimitException
from trust.policy import (
    HostedDomains,
    PolicyError,
    check_patient_recipients,
    check_patient_reply,
    check_recipient_domains,
    check_recipients,
)

pytestmark = pytest.mark.django_db
HOSTED = "hopital.mssante.test"
PATIENTS = "patient.mssante.test"
# What the mailboxes app gives the rules: the domains it serves (a deactivated domain is
# not among the active ones: trust/tests/test_submission.py goes through the submission).
DOMAINS = HostedDomains(active=frozenset({HOSTED, PATIENTS}), patient=frozenset({PATIENTS}))


@pytest.fixture
def sender() -> Mailbox:
    ListedDomain.objects.create(name="ch-exemple.mssante.fr")
    return f.mailbox(domain=f.hosted_domain(HOSTED))


def addresses(n: int) -> list[str]:
    return [f"confrere{i}@ch-exemple.mssante.fr" for i in range(n)]


def test_hosted_and_listed_domains_are_in_the_trust_space(sender: Mailbox) -> None:
    check_recipient_domains([f"x@{HOSTED}", "y@CH-Exemple.mssante.fr"], hosted=DOMAINS.active)


def test_it_refuses_a_domain_outside_the_trust_space_naming_the_address(sender: Mailbox) -> None:
    with pytest.raises(PolicyError, match=r"ami@gmail\.com » est hors de l'espace de confiance"):
        check_recipients(sender, ["a@ch-exemple.mssante.fr", "ami@gmail.com"], domains=DOMAINS)


def test_a_domain_not_among_the_active_hosted_ones_is_outside_the_trust_space() -> None:
    with pytest.raises(PolicyError, match=r"x@ferme\.mssante\.test"):
        check_recipient_domains(["x@ferme.mssante.test"], hosted=DOMAINS.active)


def test_it_accepts_40_recipients(sender: Mailbox) -> None:
    check_recipients(sender, addresses(40), domains=DOMAINS)


def test_it_refuses_a_41st_recipient_stating_the_limit(sender: Mailbox) -> None:
    with pytest.raises(PolicyError, match="plus de 40 destinataires"):
        check_recipients(sender, addresses(41), domains=DOMAINS)


def grant(mailbox: Mailbox, days: int = 30) -> RecipientLimitException:
    return services.grant_recipient_exception(
        mailbox,
        reason="Envoi des résultats de laboratoire",
        valid_until=timezone.now() + timedelta(days=days),
        by=f.staff(),
    )


def test_an_exception_recorded_by_staff_lifts_the_limit(sender: Mailbox) -> None:
    grant(sender)
    check_recipients(sender, addresses(120), domains=DOMAINS)
    assert AuditEvent.objects.filter(action="charter.recipient_exception_granted").exists()


def test_an_exception_for_another_mailbox_does_not_help(sender: Mailbox) -> None:
    grant(f.mailbox(domain=f.hosted_domain(HOSTED)))
    with pytest.raises(PolicyError, match="plus de 40"):
        check_recipients(sender, addresses(41), domains=DOMAINS)


def test_an_exception_that_expires_no_longer_lifts_the_limit(sender: Mailbox) -> None:
    grant(sender, days=7)
    later = timezone.now() + timedelta(days=8)
    with time_machine.travel(later), pytest.raises(PolicyError, match="plus de 40"):
        check_recipients(sender, addresses(41), domains=DOMAINS)


def test_a_revoked_exception_no_longer_lifts_the_limit(sender: Mailbox) -> None:
    exception = grant(sender)
    services.revoke_recipient_exception(exception, by=f.staff(username="autre"))
    with pytest.raises(PolicyError, match="plus de 40"):
        check_recipients(sender, addresses(41), domains=DOMAINS)


def test_an_exception_needs_a_reason_and_a_future_end(sender: Mailbox) -> None:
    boss = f.staff()
    with pytest.raises(services.TrustError, match="motif"):
        services.grant_recipient_exception(
            sender, reason=" ", valid_until=timezone.now() + timedelta(days=1), by=boss
        )
    with pytest.raises(services.TrustError, match="futur"):
        services.grant_recipient_exception(sender, reason="x", valid_until=timezone.now(), by=boss)


def test_a_message_to_one_patient_with_professionals_in_copy_passes(sender: Mailbox) -> None:
    check_recipients(
        sender, [f"123456789012345@{PATIENTS}", "a@ch-exemple.mssante.fr"], domains=DOMAINS
    )


def test_it_refuses_a_second_patient_in_copy(sender: Mailbox) -> None:
    with pytest.raises(PolicyError, match="d'autre patient"):
        check_patient_recipients(
            [f"123456789012345@{PATIENTS}", "223456789012345@Patient.mssante.test"],
            patient_domains=DOMAINS.patient,
        )


def test_a_patient_cannot_start_a_conversation() -> None:
    with pytest.raises(PolicyError, match="ne peut pas écrire le premier"):
        check_patient_reply(conversation_opened_by_professional=False, closed=False)


def test_a_patient_cannot_reply_after_fin() -> None:
    with pytest.raises(PolicyError, match="clos cette conversation"):
        check_patient_reply(conversation_opened_by_professional=True, closed=True)


def test_a_patient_replies_in_an_open_conversation() -> None:
    check_patient_reply(conversation_opened_by_professional=True, closed=False)


def test_staff_grant_and_revoke_an_exception_in_the_admin(
    sender: Mailbox, staff_client: Client
) -> None:
    url = "/admin/trust/recipientlimitexception/"
    until = timezone.localtime(timezone.now() + timedelta(days=10))
    response = staff_client.post(
        f"{url}add/",
        {
            "mailbox": sender.pk,
            "reason": "Campagne de vaccination",
            "valid_until_0": until.strftime("%d/%m/%Y"),
            "valid_until_1": until.strftime("%H:%M:%S"),
        },
    )
    assert response.status_code == 302, response.content.decode()[:3000]
    exception = RecipientLimitException.objects.get()
    assert exception.granted_by is not None and exception.reason == "Campagne de vaccination"
    assert AuditEvent.objects.filter(action="charter.recipient_exception_granted").exists()
    assert staff_client.get(f"{url}{exception.pk}/change/").status_code == 200
    staff_client.post(url, {"action": "revoke", "_selected_action": [exception.pk]})
    exception.refresh_from_db()
    assert exception.revoked_at is not None


def test_the_admin_refuses_an_exception_ending_in_the_past(
    sender: Mailbox, staff_client: Any
) -> None:
    past = timezone.localtime(timezone.now() - timedelta(days=1))
    response = staff_client.post(
        "/admin/trust/recipientlimitexception/add/",
        {
            "mailbox": sender.pk,
            "reason": "x",
            "valid_until_0": past.strftime("%d/%m/%Y"),
            "valid_until_1": past.strftime("%H:%M:%S"),
        },
    )
    assert response.status_code == 200 and "futur" in response.content.decode()
    assert not RecipientLimitException.objects.exists()
