"""Adeli → RPPS: same account, same history, old number accepted for a while."""

from __future__ import annotations

from datetime import timedelta

import pytest
import time_machine
from django.core.management import call_command
from django.test import Client
from django.utils import timezone

from accounts import services
from accounts.models import FormerAdeli
from audit.models import AuditEvent
from tests import factories as f
from tests.personas import logged_in

pytestmark = pytest.mark.django_db


def test_the_switch_keeps_the_same_account_and_its_history():
    adeli = f.adeli()
    nurse = f.professional(identifier=adeli, profession="60")
    events_before = AuditEvent.objects.filter(actor=nurse).count()
    rpps = f.rpps()
    services.switch_to_rpps(nurse.professional, rpps, by=None)
    nurse.refresh_from_db()
    assert nurse.username == "8" + rpps
    assert nurse.professional.id_type == "rpps" and nurse.professional.id_number == rpps
    assert nurse.totpdevice_set.count() == 1
    assert AuditEvent.objects.filter(actor=nurse).count() == events_before
    assert FormerAdeli.objects.get(identity=nurse.professional).adeli == adeli


def test_the_old_adeli_number_logs_in_during_the_transition_with_a_notice():
    adeli = f.adeli()
    nurse = f.professional(identifier=adeli, profession="60")
    rpps = f.rpps()
    services.switch_to_rpps(nurse.professional, rpps, by=None)
    with time_machine.travel(timezone.now(), tick=False) as traveller:
        client = logged_in(nurse, identifier=adeli)
        response = client.get("/messagerie/")
        assert response.status_code == 200
        assert rpps in response.content.decode()
        # The next code (a code is accepted once) with the new number.
        traveller.shift(timedelta(seconds=30))
        assert logged_in(nurse, identifier=rpps).get("/messagerie/").status_code == 200


def test_the_old_adeli_number_stops_working_after_the_transition():
    adeli = f.adeli()
    nurse = f.professional(identifier=adeli, profession="60")
    with time_machine.travel(timezone.now(), tick=False) as traveller:
        services.switch_to_rpps(nurse.professional, f.rpps(), by=None)
        traveller.shift(timedelta(days=370))
        response = Client().post("/connexion/", {"identifier": adeli, "password": f.PASSWORD})
    assert "Identifiant ou mot de passe incorrect" in response.content.decode()


def test_the_switch_refuses_an_rpps_already_taken_and_a_non_rpps():
    nurse = f.professional(identifier=f.adeli(), profession="60")
    other = f.professional()
    with pytest.raises(services.AccountError, match="déjà attribué"):
        services.switch_to_rpps(nurse.professional, other.professional.id_number, by=None)
    with pytest.raises(services.AccountError, match="RPPS"):
        services.switch_to_rpps(nurse.professional, f.adeli(), by=None)


def test_the_command_switches_a_professional(capsys):
    adeli = f.adeli()
    nurse = f.professional(identifier=adeli, profession="60")
    rpps = f.rpps()
    call_command("switch_to_rpps", adeli, rpps)
    nurse.refresh_from_db()
    assert nurse.professional.id_number == rpps
    assert "accepté à la connexion" in capsys.readouterr().out
