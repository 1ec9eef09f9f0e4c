"""The admin needs staff, a second factor and an active account."""

from __future__ import annotations

import pytest
from django.test import Client

from accounts.models import User
from tests import factories as f
from tests.personas import logged_in

pytestmark = pytest.mark.django_db


def test_the_admin_refuses_a_password_only_session():
    boss = f.staff()
    client = Client()
    client.force_login(boss, backend="accounts.backends.IdentifierBackend")
    response = client.get("/admin/", follow=True)
    assert response.redirect_chain[-1][0] == "/connexion/?next=/admin/"


def test_the_admin_opens_after_the_code_step():
    boss = f.staff()
    client = logged_in(boss)
    assert client.get("/admin/").status_code == 200


def test_a_professional_never_reaches_the_admin():
    doctor = f.professional()
    assert logged_in(doctor).get("/admin/").status_code == 302


def test_staff_find_a_professional_by_rpps_and_a_patient_by_ins():
    boss = f.staff()
    doctor = f.professional(last_name="Rousseau")
    patient = f.patient()
    client = logged_in(boss)
    by_rpps = client.get("/admin/accounts/user/", {"q": doctor.professional.id_number})
    assert "Rousseau" in by_rpps.content.decode()
    by_ins = client.get("/admin/accounts/user/", {"q": patient.patient.ins})
    assert patient.username in by_ins.content.decode()


def test_closing_from_the_admin_requires_a_reason():
    boss = f.staff()
    doctor = f.professional()
    client = logged_in(boss)
    url = "/admin/accounts/user/"
    first = client.post(url, {"action": "close", "_selected_action": [doctor.pk]})
    assert first.status_code == 200 and "Motif" in first.content.decode()
    client.post(
        url, {"action": "close", "_selected_action": [doctor.pk], "apply": "1", "reason": ""}
    )
    doctor.refresh_from_db()
    assert doctor.status == User.Status.ACTIVE
    client.post(
        url,
        {
            "action": "close",
            "_selected_action": [doctor.pk],
            "apply": "1",
            "reason": "Départ à la retraite",
        },
    )
    doctor.refresh_from_db()
    assert doctor.status == User.Status.CLOSED and doctor.status_reason == "Départ à la retraite"


def test_staff_issue_an_activation_link_from_the_admin():
    boss = f.staff()
    nurse = f.professional(password=None, enrol=False)
    client = logged_in(boss)
    response = client.post(
        "/admin/accounts/user/",
        {"action": "issue_activation_link", "_selected_action": [nurse.pk]},
        follow=True,
    )
    assert "/activation/" in response.content.decode()


def test_staff_switch_adeli_to_rpps_from_the_admin():
    boss = f.staff()
    nurse = f.professional(identifier=f.adeli(), profession="60")
    client = logged_in(boss)
    rpps = f.rpps()
    client.post(
        "/admin/accounts/user/",
        {
            "action": "switch_adeli_to_rpps",
            "_selected_action": [nurse.pk],
            "apply": "1",
            "rpps": rpps,
        },
    )
    nurse.refresh_from_db()
    assert nurse.professional.id_number == rpps


def test_staff_grant_an_eligibility_override_with_a_reason_from_the_admin():
    boss = f.staff()
    aide = f.professional(profession="35")
    client = logged_in(boss)
    url = "/admin/accounts/user/"
    client.post(
        url,
        {
            "action": "override_eligibility",
            "_selected_action": [aide.pk],
            "apply": "1",
            "reason": "Coordination",
        },
    )
    aide.professional.refresh_from_db()
    assert aide.professional.eligibility_override
    assert aide.professional.eligibility_override_by == boss


def test_a_reset_link_goes_to_the_holders_address_never_to_the_staff_screen(
    django_capture_on_commit_callbacks,
):
    from django.core import mail

    boss = f.staff()
    doctor = f.professional()
    doctor.email = "camille@example.org"
    doctor.save()
    client = logged_in(boss)
    mail.outbox.clear()
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(
            "/admin/accounts/user/",
            {"action": "issue_activation_link", "_selected_action": [doctor.pk]},
            follow=True,
        )
    assert "/activation/" not in response.content.decode()
    assert [m.to for m in mail.outbox] == [["camille@example.org"]]
    assert "/activation/" in mail.outbox[0].body
