"""Patients' accounts: provisioning, CSV import, activation with e-mailed codes, login by INS."""

from __future__ import annotations

import re
from datetime import date
from pathlib import Path

import pytest
from django.core import mail
from django.core.management import CommandError, call_command
from django.test import Client
from django.urls import reverse

from accounts import services as account_services
from accounts.models import EmailCodeDevice, TOTPDevice, User
from mailboxes.models import HostedDomain, Mailbox
from mssante.lib.identifiers import make_ins
from patients import services
from tests import factories

pytestmark = pytest.mark.django_db

INS = make_ins(2, 1985, 4, "75", "056", 321)


def _provision(email: str = "anne@example.org") -> services.Provisioned:
    return services.provision_patient(
        ins=INS,
        oid="1.2.250.1.213.1.4.8",
        birth_name="LEROY",
        first_names="Anne Marie",
        birth_date=date(1985, 4, 2),
        sex="F",
        email=email,
    )


def test_provisioning_creates_the_box_and_emails_the_activation_link(
    django_capture_on_commit_callbacks,
) -> None:
    mail.outbox.clear()
    with django_capture_on_commit_callbacks(execute=True):
        done = _provision()
    assert done.mailbox.address == f"{INS.lower()}@patient.mssante.fr"
    assert done.mailbox.kind == Mailbox.Kind.PATIENT
    assert done.mailbox.domain.kind == HostedDomain.Kind.PATIENT
    assert len(mail.outbox) == 1
    assert mail.outbox[0].to == ["anne@example.org"]
    assert re.search(r"/activation/[\w-]+/", mail.outbox[0].body)


def test_import_patients_reads_a_csv_and_skips_known_patients(tmp_path: Path) -> None:
    other = make_ins(1, 1970, 1, "69", "123", 7)
    path = tmp_path / "patients.csv"
    path.write_text(
        "ins;oid;birth_name;first_names;birth_date;sex;birth_place;email\n"
        f"{INS};nir;LEROY;Anne;1985-04-02;F;75056;anne@example.org\n"
        f"{other};test;PETIT;Louis;1970-01-09;M;;\n",
        encoding="utf-8",
    )
    call_command("import_patients", str(path), "--no-email")
    assert Mailbox.objects.filter(kind=Mailbox.Kind.PATIENT).count() == 2
    call_command("import_patients", str(path), "--no-email")
    assert Mailbox.objects.filter(kind=Mailbox.Kind.PATIENT).count() == 2


def test_import_patients_names_the_bad_line(tmp_path: Path) -> None:
    path = tmp_path / "patients.csv"
    path.write_text(
        "ins,oid,birth_name,first_names,birth_date,sex\n123,nir,X,Y,1985-04-02,F\n",
        encoding="utf-8",
    )
    with pytest.raises(CommandError):
        call_command("import_patients", str(path))
    assert not Mailbox.objects.exists()


def test_a_patient_activates_with_codes_by_email_and_logs_in_with_one() -> None:
    done = _provision()
    token = account_services.issue_activation_link(done.user, by=None).split("/")[-2]
    client = Client()
    page = client.get(reverse("accounts:activation", args=[token])).content.decode()
    assert reverse("patients:activation_email", args=[token]) in page
    response = client.post(
        reverse("patients:activation_email", args=[token]),
        {"password1": factories.PASSWORD, "password2": factories.PASSWORD},
    )
    assert response.status_code == 302
    assert EmailCodeDevice.objects.filter(user=done.user, confirmed=True).exists()
    assert not TOTPDevice.objects.filter(user=done.user).exists()

    # Login: INS with spaces, password, then the code received by e-mail.
    mail.outbox.clear()
    client = Client()
    spaced = " ".join([INS[:1], INS[1:3], INS[3:5], INS[5:7], INS[7:10], INS[10:13], INS[13:]])
    response = client.post(
        reverse("accounts:login"), {"identifier": spaced, "password": factories.PASSWORD}
    )
    assert response["Location"] == reverse("accounts:login_code")
    page = client.get(reverse("accounts:login_code")).content.decode()
    assert "a•••@example.org" in page
    assert len(mail.outbox) == 1
    code = re.search(r"\b(\d{6})\b", mail.outbox[0].body).group(1)
    # Reloading the page does not send another code.
    client.get(reverse("accounts:login_code"))
    assert len(mail.outbox) == 1
    response = client.post(reverse("accounts:login_code"), {"code": code})
    assert response["Location"] == reverse("patient_home")
    assert client.get(reverse("patient_home")).status_code == 200


def test_a_wrong_emailed_code_is_refused() -> None:
    user = factories.patient(enrol=False)
    services.use_email_codes(user)
    client = Client()
    client.post(
        reverse("accounts:login"), {"identifier": user.username, "password": factories.PASSWORD}
    )
    client.get(reverse("accounts:login_code"))
    response = client.post(reverse("accounts:login_code"), {"code": "000000"})
    assert "Code incorrect" in response.content.decode()
    assert client.get(reverse("patient_home")).status_code == 302


def test_a_malformed_ins_at_login_gets_the_expected_format() -> None:
    wrong_key = INS[:13] + ("00" if INS[13:] != "00" else "01")
    response = Client().post(reverse("accounts:login"), {"identifier": wrong_key, "password": "x"})
    assert "La clé du matricule INS est incorrecte." in response.content.decode()


def test_email_activation_is_for_patients_only() -> None:
    pro = factories.professional(enrol=False, password=None)
    token = account_services.issue_activation_link(pro, by=None).split("/")[-2]
    response = Client().get(reverse("patients:activation_email", args=[token]))
    assert response.status_code == 404
    assert User.objects.get(pk=pro.pk).has_usable_password() is False


def test_staff_provision_a_patient_in_the_admin(django_capture_on_commit_callbacks) -> None:
    from tests.personas import login

    client = login(factories.staff())
    mail.outbox.clear()
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(
            reverse("admin:patients_patient_add"),
            {
                "ins": " ".join([INS[:5], INS[5:10], INS[10:]]),
                "oid": "1.2.250.1.213.1.4.8",
                "birth_name": "LEROY",
                "first_names": "Anne",
                "used_name": "",
                "birth_date": "1985-04-02",
                "sex": "F",
                "birth_place": "",
                "qualified": "on",
                "email": "anne@example.org",
            },
        )
    assert response.status_code == 302
    assert Mailbox.objects.filter(address=f"{INS.lower()}@patient.mssante.fr").exists()
    assert mail.outbox[0].to == ["anne@example.org"]
    again = client.post(reverse("admin:patients_patient_add"), {"ins": INS})
    assert "existe déjà" in again.content.decode()


def test_the_demo_lists_the_patient_address_personal_email_and_totp_secret() -> None:
    from mssante import demo

    seeded = {a["key"]: a for a in demo.seed()}
    marie = seeded["patient"]
    assert marie["address"] == f"{marie['identifier'].lower()}@patient.mssante.fr"
    assert marie["mailboxes"] == [marie["address"]]
    assert marie["personal_email"] == "marie.durand@example.org"
    assert marie["totp_secret"]
    assert Mailbox.objects.get(address=marie["address"]).kind == Mailbox.Kind.PATIENT
    # Seeding again changes nothing.
    assert {a["key"]: a for a in demo.seed()}["patient"]["address"] == marie["address"]


def test_after_activation_with_emailed_codes_the_patient_sees_ten_backup_codes() -> None:
    from accounts.tests.test_activation import shown_backup_codes

    done = _provision()
    token = account_services.issue_activation_link(done.user, by=None).split("/")[-2]
    client = Client()
    response = client.post(
        reverse("patients:activation_email", args=[token]),
        {"password1": factories.PASSWORD, "password2": factories.PASSWORD},
    )
    page = client.get(response["Location"])
    assert page.status_code == 200, page.get("Location")
    codes = shown_backup_codes(page.content.decode())
    assert len(codes) == 10
    assert client.get(reverse("patient_home")).status_code == 200
    # A backup code replaces the e-mailed code once.
    login = Client()
    login.post(reverse("accounts:login"), {"identifier": INS, "password": factories.PASSWORD})
    answer = login.post(reverse("accounts:login_code"), {"code": codes[3]})
    assert answer["Location"] == reverse("patient_home")
    again = Client()
    again.post(reverse("accounts:login"), {"identifier": INS, "password": factories.PASSWORD})
    refused = again.post(reverse("accounts:login_code"), {"code": codes[3]})
    assert "Code incorrect" in refused.content.decode()
