"""Our own mailboxes in the directory: directory.services.sync_mailbox / remove_mailbox."""

from __future__ import annotations

import pytest

from directory import selectors, services
from directory.models import DirectoryEntry
from mailboxes.models import HostedDomain, Mailbox
from tests import factories as f

pytestmark = pytest.mark.django_db


@pytest.fixture
def domain(db):
    return HostedDomain.objects.create(name="medecin.mssante.fr")


def mailbox(domain, **fields) -> Mailbox:
    fields.setdefault("kind", "PER")
    return Mailbox.objects.create(domain=domain, **fields)


def test_a_personal_mailbox_is_published_from_its_owner(domain):
    owner = f.professional(first_name="Hélène", last_name="Léger")
    box = mailbox(domain, address="helene.leger@medecin.mssante.fr", owner=owner)
    entry = services.sync_mailbox(box)
    assert entry is not None
    assert (entry.source, entry.kind, entry.last_name_norm) == ("local", "PER", "leger")
    assert entry.national_id == owner.professional.national_id
    assert entry.profession_label == owner.professional.profession_label
    assert [s["address"] for s in selectors.autocomplete("helene")] == [box.address]


def test_a_renamed_holder_is_followed(domain):
    owner = f.professional(last_name="Martin")
    box = mailbox(domain, address="c.martin@medecin.mssante.fr", owner=owner)
    services.sync_mailbox(box)
    owner.last_name = "Bernard"
    owner.save()
    services.sync_mailbox(box)
    assert DirectoryEntry.objects.get(address=box.address).last_name == "Bernard"


def test_liste_rouge_closed_and_patient_boxes_are_withdrawn(domain):
    owner = f.professional()
    box = mailbox(domain, address="moi@medecin.mssante.fr", owner=owner)
    services.sync_mailbox(box)
    box.liste_rouge = True
    assert services.sync_mailbox(box) is None
    assert not DirectoryEntry.objects.filter(address=box.address).exists()
    box.liste_rouge = False
    box.status = Mailbox.Status.CLOSED
    services.sync_mailbox(box)
    assert not DirectoryEntry.objects.filter(address=box.address).exists()
    patient_box = mailbox(domain, address="123@medecin.mssante.fr", kind="PAT", owner=f.patient())
    assert services.sync_mailbox(patient_box) is None


def test_liste_rouge_is_never_offered_in_search_or_autocomplete(domain):
    owner = f.professional(last_name="Discret")
    box = mailbox(domain, address="discret@medecin.mssante.fr", owner=owner, liste_rouge=True)
    services.sync_mailbox(box)
    assert selectors.autocomplete("discret") == []
    assert list(selectors.search(selectors.SearchFilters(q="discret"))) == []


def test_an_applicative_box_is_published_but_not_offered_to_users(domain):
    box = mailbox(domain, address="robot@medecin.mssante.fr", kind="APP", display_name="Robot")
    services.sync_mailbox(box)
    assert selectors.published_entries().filter(address=box.address).exists()
    assert selectors.autocomplete("robot") == []


def test_remove_mailbox_never_touches_national_entries(domain):
    services.save_entry("ailleurs@medecin.mssante.fr", {"kind": "PER", "source": "national"})
    box = Mailbox(address="ailleurs@medecin.mssante.fr", domain=domain, kind="PER")
    services.remove_mailbox(box)
    assert DirectoryEntry.objects.filter(address=box.address).exists()


def test_the_backfill_command_publishes_existing_boxes(domain, capsys):
    from django.core.management import call_command

    mailbox(domain, address="a@medecin.mssante.fr", owner=f.professional())
    mailbox(domain, address="b@medecin.mssante.fr", owner=f.professional(), liste_rouge=True)
    call_command("sync_directory_mailboxes")
    assert "1 boîtes publiées, 1 retirées" in capsys.readouterr().out
    assert list(DirectoryEntry.objects.values_list("address", flat=True)) == [
        "a@medecin.mssante.fr"
    ]
