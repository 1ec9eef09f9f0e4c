"""A box on the liste rouge or closed leaves the directory, whoever closed it; reopened, it is back.

Each test goes through the path a user takes: staff post the admin's change form
the page renders, or tick boxes and apply a list action; a sanction is decided with
the staff action on the report; the inactivity process runs as its scheduled task.
Where a box is looked for is where a user finds it: the directory's search page,
the compose autocomplete (its JSON URL) and the public FHIR endpoint (HTTP GET).
"""

from __future__ import annotations

import html
from datetime import timedelta
from html.parser import HTMLParser
from typing import Any

import pytest
import time_machine
from django.core.management import call_command
from django.test import Client
from django.utils import timezone

from accounts import services as account_services
from accounts.models import User
from audit.models import AuditEvent
from charter import services as charter_services
from charter import tasks as charter_tasks
from charter.tests.factories import received_message
from directory.models import DirectoryEntry, WithheldAddress
from mailboxes.models import Mailbox
from tests import factories as f
from tests.personas import logged_in, login

pytestmark = pytest.mark.django_db

EVERYWHERE = {"search", "autocomplete", "fhir"}
MAILBOXES = "/admin/mailboxes/mailbox/"


# --- Where a user finds a box -----------------------------------------------------------------


@pytest.fixture
def viewer() -> User:
    """A professional looking for a colleague."""
    return f.professional(first_name="Paula", last_name="Cherche")


def where_listed(viewer: User, box: Mailbox, name: str) -> set[str]:
    """Where ``viewer`` (and anyone, for FHIR) finds ``box`` when looking for ``name``."""
    found = set()
    # A session of its own each time: a test may have moved the clock by months.
    client = login(viewer)
    results = client.post("/annuaire/", {"q": name}, follow=True)
    assert results.status_code == 200
    if box.address in html.unescape(results.content.decode()):
        found.add("search")
    suggestions = client.get("/annuaire/autocomplete", {"q": name})
    assert suggestions.status_code == 200
    if box.address in [s["address"] for s in suggestions.json()]:
        found.add("autocomplete")
    fhir = Client().get("/fhir/PractitionerRole", {"mailbox-mss": box.address})
    assert fhir.status_code == 200
    if fhir.json()["total"]:
        found.add("fhir")
    return found


def holder_box(first_name: str, last_name: str) -> Mailbox:
    holder = f.professional(first_name=first_name, last_name=last_name, enrol=False)
    holder.email = f"{last_name.lower()}@example.org"
    holder.save()
    return f.mailbox(holder)


# --- The admin, as a browser posts it -----------------------------------------------------------


class _FormReader(HTMLParser):
    """The fields of one form of a page, as a browser would submit them unchanged."""

    def __init__(self, form_id: str) -> None:
        super().__init__(convert_charrefs=True)
        self.form_id, self.inside, self.fields = form_id, False, {}
        self._select: str | None = None
        self._textarea: str | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = {k: v or "" for k, v in attrs}
        if tag == "form":
            self.inside = a.get("id") == self.form_id
        if not self.inside or "name" not in a:
            if tag == "option" and self._select and "selected" in a:
                self.fields[self._select] = a.get("value", "")
            return
        name = a["name"]
        if tag == "input":
            kind = a.get("type", "text")
            if kind in ("checkbox", "radio"):
                if "checked" in a:
                    self.fields[name] = a.get("value", "on")
            elif kind not in ("submit", "button", "file"):
                self.fields[name] = a.get("value", "")
        elif tag == "select":
            self._select = name
            self.fields.setdefault(name, "")
        elif tag == "textarea":
            self._textarea = name
            self.fields[name] = ""

    def handle_endtag(self, tag: str) -> None:
        if tag == "form":
            self.inside = False
        elif tag == "select":
            self._select = None
        elif tag == "textarea":
            self._textarea = None

    def handle_data(self, data: str) -> None:
        if self._textarea:
            self.fields[self._textarea] += data


def change_in_admin(staff: User, box: Mailbox, **changes: Any) -> Any:
    """Open the box's change page, change some fields, save (as staff do in a browser)."""
    url = f"{MAILBOXES}{box.pk}/change/"
    client = login(staff)
    page = client.get(url)
    assert page.status_code == 200
    reader = _FormReader("mailbox_form")
    reader.feed(page.content.decode())
    fields = dict(reader.fields)
    assert fields.get("status"), "the change form was not read"
    for name, value in changes.items():
        if value is False:
            fields.pop(name, None)  # an unticked checkbox is not sent
        else:
            fields[name] = "on" if value is True else value
    saved = client.post(url, {**fields, "_save": "Enregistrer"})
    assert saved.status_code == 302, saved.content.decode()[:2000]
    return saved


def list_action(staff: User, action: str, *boxes: Mailbox) -> None:
    """Tick boxes in the list and apply an action."""
    response = login(staff).post(
        MAILBOXES, {"action": action, "_selected_action": [b.pk for b in boxes], "index": "0"}
    )
    assert response.status_code == 302


@pytest.fixture
def staff() -> User:
    """Staff, past both login steps once (each request below opens a session of theirs)."""
    boss = f.staff()
    logged_in(boss)
    return boss


# --- Liste rouge ------------------------------------------------------------------------------


def test_a_box_put_on_the_liste_rouge_in_the_admin_leaves_the_directory_and_comes_back(
    viewer: User, staff: User
) -> None:
    box = holder_box("Hélène", "Discrète")
    assert where_listed(viewer, box, "Discrète") == EVERYWHERE
    change_in_admin(staff, box, liste_rouge=True)
    assert Mailbox.objects.get(pk=box.pk).liste_rouge
    assert where_listed(viewer, box, "Discrète") == set()
    event = AuditEvent.objects.get(action="mailbox.liste_rouge")
    assert event.data == {"listed": True} and event.actor_id is not None
    change_in_admin(staff, box, liste_rouge=False)
    assert where_listed(viewer, box, "Discrète") == EVERYWHERE


def test_a_box_created_on_the_liste_rouge_in_the_admin_is_never_listed(
    viewer: User, staff: User
) -> None:
    holder = f.professional(first_name="Ninon", last_name="Invisible", enrol=False)
    domain = f.hosted_domain("hopital.mssante.test")
    created = login(staff).post(
        f"{MAILBOXES}add/",
        {"kind": "PER", "domain": domain.pk, "owner": holder.pk, "liste_rouge": "on"},
    )
    assert created.status_code == 302
    box = Mailbox.objects.get(owner=holder)
    assert box.liste_rouge
    assert where_listed(viewer, box, "Invisible") == set()


# --- Closed and reopened by staff -------------------------------------------------------------


def test_a_box_closed_by_staff_in_the_change_form_leaves_the_directory_and_reopened_comes_back(
    viewer: User, staff: User
) -> None:
    box = holder_box("Fermin", "Porte")
    assert where_listed(viewer, box, "Porte") == EVERYWHERE
    change_in_admin(staff, box, status=Mailbox.Status.CLOSED)
    assert Mailbox.objects.get(pk=box.pk).status == Mailbox.Status.CLOSED
    assert where_listed(viewer, box, "Porte") == set()
    assert AuditEvent.objects.get(action="mailbox.closed").data["cause"] == "staff"
    change_in_admin(staff, box, status=Mailbox.Status.ACTIVE)
    assert where_listed(viewer, box, "Porte") == EVERYWHERE
    assert AuditEvent.objects.filter(action="mailbox.reopened").count() == 1


def test_boxes_closed_with_the_list_action_leave_the_directory_and_reopened_come_back(
    viewer: User, staff: User
) -> None:
    first, second = holder_box("Anne", "Volet"), holder_box("Bruno", "Volet")
    list_action(staff, "close", first, second)
    assert {b.status for b in Mailbox.objects.filter(pk__in=[first.pk, second.pk])} == {"closed"}
    assert where_listed(viewer, first, "Volet") == where_listed(viewer, second, "Volet") == set()
    list_action(staff, "reopen", first)
    assert where_listed(viewer, first, "Volet") == EVERYWHERE
    assert where_listed(viewer, second, "Volet") == set()


def test_a_closed_box_on_the_liste_rouge_stays_out_when_reopened(viewer: User, staff: User) -> None:
    box = holder_box("Lise", "Rouge")
    change_in_admin(staff, box, liste_rouge=True, status=Mailbox.Status.CLOSED)
    change_in_admin(staff, box, status=Mailbox.Status.ACTIVE)
    assert Mailbox.objects.get(pk=box.pk).status == Mailbox.Status.ACTIVE
    assert where_listed(viewer, box, "Rouge") == set()


def test_staff_cannot_reopen_the_box_of_a_closed_account(viewer: User, staff: User) -> None:
    box = holder_box("Clo", "Ture")
    assert box.owner is not None
    change_in_admin(staff, box, status=Mailbox.Status.CLOSED)
    account_services.close_account(box.owner, reason="Départ", by=None)
    client = login(staff)
    page = client.get(f"{MAILBOXES}{box.pk}/change/")
    reader = _FormReader("mailbox_form")
    reader.feed(page.content.decode())
    refused = client.post(f"{MAILBOXES}{box.pk}/change/", {**reader.fields, "status": "active"})
    assert refused.status_code == 200
    assert "est clôturé" in html.unescape(refused.content.decode())
    assert Mailbox.objects.get(pk=box.pk).status == Mailbox.Status.CLOSED
    assert where_listed(viewer, box, "Ture") == set()


# --- Closed with its holder's account ----------------------------------------------------------


def test_a_box_whose_account_staff_close_in_the_admin_closes_and_leaves_the_directory(
    viewer: User, staff: User
) -> None:
    box = holder_box("Odile", "Depart")
    assert box.owner is not None
    assert where_listed(viewer, box, "Depart") == EVERYWHERE
    closed = login(staff).post(
        "/admin/accounts/user/",
        {
            "action": "close",
            "_selected_action": [box.owner.pk],
            "apply": "1",
            "reason": "Départ à la retraite",
        },
    )
    assert closed.status_code in (200, 302)
    box.owner.refresh_from_db()
    assert box.owner.status == User.Status.CLOSED
    assert Mailbox.objects.get(pk=box.pk).status == Mailbox.Status.CLOSED
    assert where_listed(viewer, box, "Depart") == set()
    event = AuditEvent.objects.get(action="mailbox.closed")
    assert event.data["cause"] == "account" and event.actor_id == staff.pk


# --- Closed by a sanction ---------------------------------------------------------------------


def test_a_box_closed_by_a_sanction_leaves_the_directory(viewer: User, staff: User) -> None:
    spammer_box = holder_box("Paul", "Pourriel")
    victim_box = holder_box("Inès", "Destinataire")
    assert spammer_box.owner is not None and victim_box.owner is not None
    report = charter_services.report_abuse(
        message=received_message(victim_box, sender=spammer_box),
        mailbox=victim_box,
        reporter=victim_box.owner,
        reason="Publicité non sollicitée",
    )
    assert where_listed(viewer, spammer_box, "Pourriel") == EVERYWHERE
    decided = login(staff).post(
        "/admin/charter/abusereport/",
        {
            "action": "decide_close",
            "_selected_action": [report.pk],
            "apply": "1",
            "reason": "Envois publicitaires répétés",
        },
    )
    assert decided.status_code == 302
    assert Mailbox.objects.get(pk=spammer_box.pk).status == Mailbox.Status.CLOSED
    assert where_listed(viewer, spammer_box, "Pourriel") == set()
    closed = AuditEvent.objects.get(action="mailbox.closed")
    assert closed.data["cause"] == "sanction" and closed.actor_id is not None
    # The victim's box is untouched.
    assert where_listed(viewer, victim_box, "Destinataire") == EVERYWHERE


# --- Closed by the inactivity process ----------------------------------------------------------


def run_inactivity_task() -> dict[str, int]:
    return charter_tasks.check_inactive_mailboxes.delay().get()


def test_a_box_closed_by_the_inactivity_task_leaves_the_directory_and_reopened_comes_back(
    viewer: User, staff: User
) -> None:
    box = holder_box("Odile", "Absente")
    start = timezone.now()
    assert where_listed(viewer, box, "Absente") == EVERYWHERE
    with time_machine.travel(start + timedelta(days=336), tick=False):
        assert run_inactivity_task() == {"warned": 1, "closed": 0}
        assert where_listed(viewer, box, "Absente") == EVERYWHERE  # warned, still open
    with time_machine.travel(start + timedelta(days=366), tick=False):
        assert run_inactivity_task() == {"warned": 0, "closed": 1}
        assert Mailbox.objects.get(pk=box.pk).status == Mailbox.Status.CLOSED
        assert where_listed(viewer, box, "Absente") == set()
        assert AuditEvent.objects.get(action="mailbox.closed").data["cause"] == "inactivity"
    with time_machine.travel(start + timedelta(days=370), tick=False):
        change_in_admin(staff, box, status=Mailbox.Status.ACTIVE)
        assert where_listed(viewer, box, "Absente") == EVERYWHERE
    # Reopened by staff: the next runs do not close it again for the old warning.
    with time_machine.travel(start + timedelta(days=371), tick=False):
        assert run_inactivity_task() == {"warned": 0, "closed": 0}
    assert Mailbox.objects.get(pk=box.pk).status == Mailbox.Status.ACTIVE


# --- The national import and the repair command ---------------------------------------------------


def test_the_repair_command_republishes_every_box_from_its_state(capsys: Any) -> None:
    shown = holder_box("Remi", "Visible")
    hidden = holder_box("Rita", "Cachee")
    # A leak as this bug left them: a closed box still listed, a listed box missing.
    Mailbox.objects.filter(pk=hidden.pk).update(status=Mailbox.Status.CLOSED)
    DirectoryEntry.objects.filter(address=shown.address).delete()
    call_command("sync_directory_mailboxes")
    assert "1 boîtes publiées, 1 retirées" in capsys.readouterr().out
    assert list(DirectoryEntry.objects.values_list("address", flat=True)) == [shown.address]
    assert list(WithheldAddress.objects.values_list("address", flat=True)) == [hidden.address]


def test_a_renamed_holder_is_followed_at_the_next_change(staff: User, viewer: User) -> None:
    box = holder_box("Claire", "Martin")
    assert box.owner is not None
    box.owner.last_name = "Bernard"
    box.owner.save()
    change_in_admin(staff, box, display_name="Dr Claire Bernard")
    assert where_listed(viewer, box, "Bernard") == EVERYWHERE
    assert DirectoryEntry.objects.get(address=box.address).last_name == "Bernard"
