"""Staff see, on the admin's first page, what waits and what is stuck, and act on the queue.

Through the admin as staff use it (the test client, logged in through the pages): the
dashboard's figures and their links, the delivery queue and its two actions, and what
an attacker tries (a professional, a forged POST, another box's ids, too many ids).
"""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from django.test import Client
from django.utils import timezone

from audit.models import AuditEvent
from charter.models import AbuseReport
from directory.models import ImportRun
from directory.tasks import import_annuaire
from mailboxes.models import Delivery, Entry, Message
from tests.personas import Person, login, submit
from trust.models import ListeBlancheImport

pytestmark = pytest.mark.django_db

INDEX = "/admin/"
QUEUE = "/admin/mailboxes/delivery/"


def _defer(message: Message, recipient: str, *, attempts: int = 3) -> Delivery:
    """A delivery to another operator that its server keeps refusing for now."""
    delivery = Delivery.objects.create(
        message=message,
        recipient=recipient,
        remote=True,
        status=Delivery.Status.DEFERRED,
        attempts=attempts,
        next_attempt_at=timezone.now() + timedelta(minutes=30),
        reason="unreachable",
        reason_params={
            "domain": recipient.split("@")[1],
            "problem": {"code": "connection_failed", "host": "mx.peer.test:25", "error": "refused"},
        },
    )
    return delivery


@pytest.fixture
def stuck(claire: Person, julien: Person) -> Message:
    """A message of Claire's: Julien's copy queued, two peers' recipients deferred."""
    message = submit(claire.box, [julien.box.address], subject="Bilan")
    Message.objects.filter(pk=message.pk).update(scan_status=Message.ScanStatus.CLEAN)
    _defer(message, "a.durand@clinique.peer.test")
    _defer(message, "b.morel@clinique.peer.test")
    _defer(message, "c.roux@cabinet.autre.test")
    return message


def _figures(html: str) -> dict[str, tuple[int, str]]:
    found = re.findall(
        r'<a href="([^"]+)"><span class="staff-figure__value">(\d+)</span> '
        r'<span class="staff-figure__label">([^<]+)</span>',
        html,
    )
    return {
        label.replace("&#x27;", "'"): (int(value), url.replace("&amp;", "&"))
        for url, value, label in found
    }


def test_the_dashboard_shows_what_waits_each_figure_linking_to_its_list(
    staff_client: Client, stuck: Message, claire: Person
) -> None:
    AbuseReport.objects.create(
        created_at=timezone.now(), sender_addr="spam@clinique.peer.test", reason="Publicité"
    )
    page = staff_client.get(INDEX)
    assert page.status_code == 200
    html = page.content.decode()
    figures = _figures(html)
    assert figures["Distributions différées"] == (3, QUEUE + "?status__exact=deferred")
    assert figures["Distributions en file d'attente"][0] == 1
    assert figures["Signalements à traiter"][0] == 1
    assert figures["Messages en quarantaine"][0] == 0
    # Deferred by peer domain, the busiest first, each a link to the filtered queue.
    rows = re.findall(r'<td><a href="([^"]+)">([^<]+)</a></td><td>(\d+)</td>', html)
    assert [(d, int(n)) for _u, d, n in rows] == [
        ("clinique.peer.test", 2),
        ("cabinet.autre.test", 1),
    ]
    # Every figure's link opens its list, filtered as the figure counts.
    for _label, (_value, url) in figures.items():
        listed = staff_client.get(url)
        assert listed.status_code == 200, url
    filtered = staff_client.get(rows[0][0].replace("&amp;", "&")).content.decode()
    assert "a.durand@clinique.peer.test" in filtered
    assert "c.roux@cabinet.autre.test" not in filtered


def test_the_dashboard_tells_the_last_imports_and_the_journal_seal(staff_client: Client) -> None:
    ListeBlancheImport.objects.create(
        started_at=timezone.now() - timedelta(days=1),
        source="https://listeblanche.test/lb.xml",
        result=ListeBlancheImport.Result.IMPORTED,
        domains=320,
    )
    ListeBlancheImport.objects.create(
        started_at=timezone.now(),
        source="https://listeblanche.test/lb.xml",
        result=ListeBlancheImport.Result.REFUSED,
        messages="41 domaine(s) sur 320 seraient retirés",
    )
    ImportRun.objects.create(kind=ImportRun.Kind.MSS, file_name="mss.txt", status="failed")
    html = staff_client.get(INDEX).content.decode()
    block = html[html.index('id="liste-blanche-derniere"') :]
    assert "refusée (liste actuelle conservée)" in block[:600]
    assert "41 domaine(s) sur 320" in block[:600]
    assert "Dernier import réussi" in block[:900]
    assert "Échec" in html[html.index('id="annuaire-derniere"') :][:600]
    seal = html[html.index('id="journal-scellement"') :][:800]
    assert "pas encore scellé" in seal


def test_the_dashboard_costs_a_bounded_number_of_queries(
    staff_client: Client, stuck: Message, django_assert_max_num_queries
) -> None:
    staff_client.get(INDEX)  # the session and the content types, once
    for n in range(20):
        _defer(stuck, f"x{n}@d{n}.peer.test")
    with django_assert_max_num_queries(30):
        assert staff_client.get(INDEX).status_code == 200


def test_a_professional_never_sees_the_dashboard(claire: Person, stuck: Message) -> None:
    client = login(claire.user)
    for url in (INDEX, QUEUE, QUEUE + "?status__exact=deferred"):
        response = client.get(url)
        assert response.status_code == 302, url
        assert response["Location"].startswith("/admin/login/")
    # Followed, the admin's door says why, in French, and shows none of the figures.
    refused = client.get(INDEX, follow=True)
    assert refused.status_code == 403
    html = refused.content.decode()
    assert "staff-figure" not in html and "clinique.peer.test" not in html


# --- The delivery queue -----------------------------------------------------------------


def test_the_queue_lists_waiting_deliveries_with_domain_attempts_and_reason_in_french(
    staff_client: Client, stuck: Message
) -> None:
    html = staff_client.get(QUEUE, {"status__exact": "deferred"}).content.decode()
    assert "File de distribution" in html
    assert "a.durand@clinique.peer.test" in html
    assert "Serveur de clinique.peer.test injoignable" in html
    assert "connexion à mx.peer.test:25 impossible" in html
    # Delivered deliveries are not the queue's business.
    Delivery.objects.filter(recipient="a.durand@clinique.peer.test").update(
        status=Delivery.Status.DELIVERED
    )
    assert "a.durand@clinique.peer.test" not in staff_client.get(QUEUE).content.decode()


def _act(client: Client, action: str, ids: list[int], **extra: str) -> object:
    return client.post(
        QUEUE,
        {"action": action, "_selected_action": [str(i) for i in ids], "index": "0", **extra},
        follow=True,
    )


def test_retry_now_makes_them_due_journals_and_hands_them_to_the_workers(
    staff_client: Client, stuck: Message, staff, django_capture_on_commit_callbacks
) -> None:
    ids = list(
        Delivery.objects.filter(recipient__endswith="@clinique.peer.test").values_list(
            "pk", flat=True
        )
    )
    with django_capture_on_commit_callbacks() as callbacks:
        response = _act(staff_client, "retry_now", ids)
    html = response.content.decode()
    assert "2 distribution(s) relancée(s)" in html
    for delivery in Delivery.objects.filter(pk__in=ids):
        assert delivery.next_attempt_at <= timezone.now()
        assert delivery.status == Delivery.Status.DEFERRED
    assert callbacks, "nothing handed to the workers"
    event = AuditEvent.objects.get(action="delivery.retried")
    assert event.actor_id == staff.pk
    assert sorted(event.data["deliveries"]) == sorted(ids)


def test_abandon_bounces_them_and_the_sender_gets_a_report(
    staff_client: Client, stuck: Message, claire: Person, staff, django_capture_on_commit_callbacks
) -> None:
    target = Delivery.objects.get(recipient="c.roux@cabinet.autre.test")
    with django_capture_on_commit_callbacks(execute=True):
        response = _act(staff_client, "abandon", [target.pk])
    assert "1 distribution(s) abandonnée(s)" in response.content.decode()
    target.refresh_from_db()
    assert target.status == Delivery.Status.BOUNCED
    assert target.reason_text.startswith("Distribution abandonnée par l'équipe de l'opérateur.")
    assert "Dernière erreur : Serveur de cabinet.autre.test injoignable" in target.reason_text
    # The sender's inbox holds the delivery status notification.
    report = Entry.objects.filter(mailbox=claire.box).exclude(message=stuck).get()
    assert report.message.origin == Message.Origin.SYSTEM
    event = AuditEvent.objects.get(action="delivery.abandoned")
    assert event.actor_id == staff.pk and event.data["deliveries"] == [target.pk]
    # The others still wait.
    assert Delivery.objects.filter(status=Delivery.Status.DEFERRED).count() == 2


def test_a_delivery_being_sent_is_left_alone(staff_client: Client, stuck: Message) -> None:
    sending = Delivery.objects.get(recipient="a.durand@clinique.peer.test")
    Delivery.objects.filter(pk=sending.pk).update(reason="sending", reason_params={})
    response = _act(staff_client, "abandon", [sending.pk])
    html = response.content.decode().replace("&#x27;", "'")
    assert "est en cours d'envoi ou de traitement" in html
    sending.refresh_from_db()
    assert sending.status == Delivery.Status.DEFERRED
    assert not AuditEvent.objects.filter(action="delivery.abandoned").exists()


def test_ids_of_finished_deliveries_are_ignored(
    staff_client: Client, stuck: Message, claire: Person, julien: Person
) -> None:
    other = submit(julien.box, [claire.box.address])
    done = Delivery.objects.filter(message=other).get()
    Delivery.objects.filter(pk=done.pk).update(status=Delivery.Status.DELIVERED)
    _act(staff_client, "abandon", [done.pk, 999_999_999])
    done.refresh_from_db()
    assert done.status == Delivery.Status.DELIVERED
    assert not AuditEvent.objects.filter(action="delivery.abandoned").exists()


def test_the_queue_refuses_a_professional_and_a_forged_post(
    claire: Person, stuck: Message, staff
) -> None:
    ids = list(Delivery.objects.filter(remote=True).values_list("pk", flat=True))
    response = _act(login(claire.user), "abandon", ids)
    assert response.status_code == 403
    assert "abandonnée" not in response.content.decode()
    # Staff's own session, without the CSRF token (a page of another site posting).
    forged = login(staff, enforce_csrf_checks=True).post(
        QUEUE, {"action": "abandon", "_selected_action": [str(i) for i in ids], "index": "0"}
    )
    assert forged.status_code == 403
    assert not Delivery.objects.filter(status=Delivery.Status.BOUNCED).exists()


def test_a_hostile_domain_filter_is_harmless(staff_client: Client, stuck: Message) -> None:
    for value in ("%", "_", "x" * 5000, "' OR 1=1 --", "\x00"):
        response = staff_client.get(QUEUE, {"domaine": value})
        # A clear refusal at worst (the NUL byte: 400), never a 500.
        assert response.status_code in (200, 302, 400), value
        assert "a.durand@clinique.peer.test" not in response.content.decode()


def test_a_directory_refresh_that_cannot_download_is_recorded_and_shown(
    staff_client: Client, settings
) -> None:
    settings.DIRECTORY_MSS_SOURCE = "http://127.0.0.1:9/Extraction_Correspondance_MSS.txt"
    import_annuaire.delay("mss").get()
    run = ImportRun.objects.get()
    assert run.status == ImportRun.Status.FAILED
    assert "Téléchargement impossible" in run.message
    assert AuditEvent.objects.filter(action="directory.import", object_id=str(run.pk)).exists()
    html = staff_client.get(INDEX).content.decode()
    shown = html[html.index('id="annuaire-derniere"') :][:800]
    assert "Échec" in shown and "Téléchargement impossible" in shown


def test_too_many_at_once_is_refused_whole(
    staff_client: Client, stuck: Message, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("mailboxes.admin.MAX_AT_ONCE", 2)
    response = staff_client.post(
        QUEUE,
        {"action": "abandon", "select_across": "1", "index": "0", "_selected_action": ["1"]},
        follow=True,
    )
    assert "Trop de distributions choisies (2 au plus" in response.content.decode()
    assert not Delivery.objects.filter(status=Delivery.Status.BOUNCED).exists()


def test_the_queue_page_costs_the_same_queries_for_100_rows(
    staff_client: Client, stuck: Message, django_assert_max_num_queries
) -> None:
    staff_client.get(QUEUE)
    Delivery.objects.bulk_create(
        Delivery(
            message=stuck,
            recipient=f"r{n}@d{n % 7}.peer.test",
            remote=True,
            status=Delivery.Status.DEFERRED,
            reason="remote_reply",
            reason_params={"domain": f"d{n % 7}.peer.test", "reply": "451 4.3.0 Try later"},
        )
        for n in range(100)
    )
    with django_assert_max_num_queries(15):
        html = staff_client.get(QUEUE, {"status__exact": "deferred"}).content.decode()
    assert "451 4.3.0 Try later" in html
