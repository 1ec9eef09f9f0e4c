"""Our own mailboxes in the directory, from the plain data the mailboxes app gives it.

How a box gets there (created, closed, reopened, liste rouge through the admin, a
sanction or the inactivity task) is tested from the user's side in
``tests/test_directory_follows_mailboxes.py``.
"""

from __future__ import annotations

import pytest

from directory import selectors, services
from directory.models import DirectoryEntry, WithheldAddress
from directory.services import MailboxListing

pytestmark = pytest.mark.django_db


def listing(
    address: str, *, published: bool = True, kind: str = "PER", **values: str
) -> MailboxListing:
    return MailboxListing(address=address, kind=kind, published=published, **values)


def test_a_personal_box_is_published_with_its_holder_identity() -> None:
    entry = services.sync_mailbox(
        listing(
            "Helene.Leger@medecin.mssante.fr",
            first_name="Hélène",
            last_name="Léger",
            national_id="810001234567",
            profession_label="Médecin",
        )
    )
    assert entry is not None
    assert (entry.address, entry.source, entry.kind, entry.last_name_norm) == (
        "helene.leger@medecin.mssante.fr",
        "local",
        "PER",
        "leger",
    )
    assert (entry.national_id, entry.profession_label) == ("810001234567", "Médecin")
    assert [s["address"] for s in selectors.autocomplete("helene")] == [entry.address]


def test_an_unpublished_box_is_removed_and_withheld_until_published_again() -> None:
    address = "moi@medecin.mssante.fr"
    services.sync_mailbox(listing(address, last_name="Moi"))
    assert services.sync_mailbox(listing(address, published=False)) is None
    assert not DirectoryEntry.objects.filter(address=address).exists()
    assert WithheldAddress.objects.filter(address=address).exists()
    assert services.sync_mailbox(listing(address, last_name="Moi")) is not None
    assert not WithheldAddress.objects.exists()


def test_a_patient_box_is_never_stored_not_even_as_withheld() -> None:
    # Its address holds the INS: the import withholds the patient domain instead.
    assert services.sync_mailbox(listing("123@patient.mssante.fr", kind="PAT")) is None
    assert not DirectoryEntry.objects.exists() and not WithheldAddress.objects.exists()


def test_an_applicative_box_is_published_but_not_offered_to_users() -> None:
    services.sync_mailbox(listing("robot@medecin.mssante.fr", kind="APP", structure_name="Robot"))
    assert selectors.published_entries().filter(address="robot@medecin.mssante.fr").exists()
    assert selectors.autocomplete("robot") == []


def test_withdrawing_never_touches_national_entries() -> None:
    services.save_entry("ailleurs@medecin.mssante.fr", {"kind": "PER", "source": "national"})
    services.withdraw_mailbox("ailleurs@medecin.mssante.fr")
    assert DirectoryEntry.objects.filter(address="ailleurs@medecin.mssante.fr").exists()
