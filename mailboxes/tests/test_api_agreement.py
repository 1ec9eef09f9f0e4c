"""A token for a nominative box only with its holder's recorded agreement (issue 11, 17).

The holder agrees from the webmail's preferences, entering their second factor again;
``create_api_token`` (and the admin) refuse a PER or ORG box without that agreement, give
the token the scope agreed (read, or read and send), and withdrawing the agreement from
the same page ends the token at once.
"""

from __future__ import annotations

import io
from typing import Any

import pytest
from django.core.management import CommandError, call_command
from django.test import Client
from django.urls import reverse

from accounts.models import User
from audit.models import AuditEvent
from mailboxes import services
from mailboxes.models import ApiAgreement, ApiToken, Mailbox
from tests import factories
from tests.personas import Person, client_for

pytestmark = pytest.mark.django_db


@pytest.fixture
def doctor(claire: Person, anne: User, paul: Person) -> dict[str, Any]:
    """Claire's box, which her secretary Anne may send from; Paul is a colleague elsewhere."""
    services.grant_membership(claire.box, anne, "send", by=claire.user)
    return {"holder": claire.user, "box": claire.box, "secretary": anne, "colleague": paul.box}


def create_token(box: Mailbox, *args: str) -> str:
    out = io.StringIO()
    call_command(
        "create_api_token", "--mailbox", box.address, *args, stdout=out, stderr=io.StringIO()
    )
    return out.getvalue().strip()


def agree(client: Client, box: Mailbox, code: str, scope: str = "send") -> Any:
    return client.post(
        reverse("webmail_api_agreement", args=[box.pk]),
        {"scope": scope, "software": "Logiciel de cabinet v3", "code": code},
    )


def api_send(raw: str, to: str) -> Any:
    return Client().post(
        "/api/v1/messages",
        {"to": [to], "subject": "Résultats", "text": "Bonjour."},
        content_type="application/json",
        headers={"Authorization": f"Bearer {raw}"},
    )


def test_the_command_refuses_a_nominative_box_without_the_holders_agreement(doctor) -> None:
    with pytest.raises(CommandError, match="sans l'accord enregistré de son titulaire"):
        create_token(doctor["box"])
    assert not ApiToken.objects.exists()


def test_the_command_refuses_an_organisational_box_without_its_responsibles_agreement(
    doctor,
) -> None:
    box = factories.shared_mailbox(doctor["holder"])
    with pytest.raises(CommandError, match="Préférences"):
        create_token(box)
    # An applicative box is software: staff issue its token without anyone's agreement.
    lab = factories.shared_mailbox(doctor["holder"], kind=Mailbox.Kind.APPLICATIVE)
    assert services.authenticate_token(create_token(lab)) is not None


def test_the_holder_agrees_from_the_preferences_page_then_the_command_issues_the_token(
    doctor,
) -> None:
    holder = client_for(doctor["holder"])
    page = holder.get(reverse("webmail_preferences")).content.decode()
    assert "Accès d'un logiciel à ma boîte" in page and doctor["box"].address in page
    response = agree(holder, doctor["box"], factories.code_for(doctor["holder"]))
    assert response.status_code == 302
    agreement = ApiAgreement.objects.get()
    assert (agreement.holder, agreement.scope) == (doctor["holder"], "send")
    assert AuditEvent.objects.filter(action="api_agreement.granted").count() == 1

    raw = create_token(doctor["box"], "--label", "cabinet")
    token = services.authenticate_token(raw)
    assert token is not None and token.agreement == agreement and token.scope == "send"
    assert api_send(raw, doctor["colleague"].address).status_code == 201
    # The page shows the agreement and the token handed out under it (its prefix only).
    page = holder.get(reverse("webmail_preferences")).content.decode()
    assert "Logiciel de cabinet v3" in page and token.prefix in page and raw not in page


def test_a_wrong_second_factor_records_no_agreement(doctor) -> None:
    holder = client_for(doctor["holder"])
    response = agree(holder, doctor["box"], "000000")
    assert response.status_code == 400
    assert "pas le bon" in response.content.decode()
    assert not ApiAgreement.objects.exists()
    with pytest.raises(CommandError):
        create_token(doctor["box"])


def test_wrong_codes_are_bounded_per_session(doctor) -> None:
    holder = client_for(doctor["holder"])
    for _ in range(5):
        agree(holder, doctor["box"], "000000")
    # Even the right code waits now: a session left open cannot try the million codes.
    response = agree(holder, doctor["box"], factories.code_for(doctor["holder"]))
    assert response.status_code == 400
    assert "Trop de codes" in response.content.decode()
    assert not ApiAgreement.objects.exists()


def test_only_the_holder_agrees_not_a_delegate(doctor) -> None:
    secretary = client_for(doctor["secretary"])
    response = agree(secretary, doctor["box"], factories.code_for(doctor["secretary"]))
    assert response.status_code == 403
    page = secretary.get(reverse("webmail_preferences")).content.decode()
    assert "Accès d'un logiciel à ma boîte" not in page
    assert not ApiAgreement.objects.exists()


def test_a_read_agreement_gives_a_token_that_reads_but_cannot_send(doctor) -> None:
    holder = client_for(doctor["holder"])
    agree(holder, doctor["box"], factories.code_for(doctor["holder"]), scope="read")
    with pytest.raises(CommandError, match="que « Lecture"):
        create_token(doctor["box"], "--scope", "send")
    raw = create_token(doctor["box"])
    response = api_send(raw, doctor["colleague"].address)
    assert response.status_code == 403
    assert response.json()["code"] == "forbidden_scope"
    listing = Client().get(
        f"/api/v1/mailboxes/{doctor['box'].address}/messages",
        headers={"Authorization": f"Bearer {raw}"},
    )
    assert listing.status_code == 200


def test_withdrawing_the_agreement_ends_the_token_at_once(doctor) -> None:
    holder = client_for(doctor["holder"])
    agree(holder, doctor["box"], factories.code_for(doctor["holder"]))
    raw = create_token(doctor["box"])
    agreement = ApiAgreement.objects.get()
    response = holder.post(reverse("webmail_api_agreement_withdraw", args=[agreement.pk]))
    assert response.status_code == 302
    assert api_send(raw, doctor["colleague"].address).status_code == 401
    with pytest.raises(CommandError):
        create_token(doctor["box"])


def test_a_new_token_under_the_same_agreement_replaces_the_previous_one(doctor) -> None:
    factories.api_agreement(doctor["box"])
    first = create_token(doctor["box"])
    second = create_token(doctor["box"])
    assert services.authenticate_token(first) is None
    assert services.authenticate_token(second) is not None


def test_staff_cannot_issue_a_token_in_the_admin_without_the_agreement(doctor) -> None:
    staff = client_for(factories.staff())
    form = {
        "mailbox": doctor["box"].pk,
        "label": "Logiciel",
        "expires_at_0": "01/01/2099",
        "expires_at_1": "00:00:00",
        "scope": "send",
    }
    page = staff.post("/admin/mailboxes/apitoken/add/", form, follow=True).content.decode()
    assert "accord enregistré de son titulaire" in page
    assert not ApiToken.objects.exists()


def test_a_closed_box_token_opens_nothing(doctor) -> None:
    factories.api_agreement(doctor["box"])
    raw = create_token(doctor["box"])
    Mailbox.objects.filter(pk=doctor["box"].pk).update(status=Mailbox.Status.CLOSED)
    response = Client().get(
        f"/api/v1/mailboxes/{doctor['box'].address}/messages",
        headers={"Authorization": f"Bearer {raw}"},
    )
    assert (response.status_code, response.json()["code"]) == (403, "mailbox_closed")
