"""Every write to the directory outside the bulk importers."""

from __future__ import annotations

import shutil
import tempfile
import urllib.request
from pathlib import Path
from typing import TYPE_CHECKING, Any

from django.conf import settings
from django.db import transaction

from audit import journal
from directory.importers import MssImporter, PsImporter
from directory.models import DirectoryEntry, ImportRun
from directory.search import entry_search_fields

if TYPE_CHECKING:
    from mailboxes.models import Mailbox

# Kinds of our mailboxes that are published at all. Patient boxes never are;
# applicative boxes are published (FHIR, national directory) but never offered
# to end users in search or autocomplete (selectors filter them out).
_PUBLISHED_KINDS = {"PER", "ORG", "APP"}


def save_entry(address: str, values: dict[str, Any]) -> DirectoryEntry:
    """Create or update the entry for address, keeping the normalised columns in step."""
    address = address.strip().lower()
    fields = {**values, **entry_search_fields(address, values)}
    entry, _ = DirectoryEntry.objects.update_or_create(address=address, defaults=fields)
    return entry


def sync_mailbox(mailbox: Mailbox) -> DirectoryEntry | None:
    """Publish one of our mailboxes (or withdraw it when it must not be listed)."""
    if (
        mailbox.kind not in _PUBLISHED_KINDS
        or mailbox.liste_rouge
        or mailbox.status != mailbox.Status.ACTIVE
    ):
        remove_mailbox(mailbox)
        return None
    values: dict[str, Any] = {
        "kind": mailbox.kind,
        "source": DirectoryEntry.Source.LOCAL,
        "active": True,
        "service": "",
        "structure_name": "",
    }
    owner = mailbox.owner
    identity = getattr(owner, "professional", None) if owner is not None else None
    if mailbox.kind == "PER" and owner is not None:
        values.update(first_name=owner.first_name, last_name=owner.last_name)
        if identity is not None:
            values.update(
                id_type=identity.id_type,
                national_id=identity.national_id,
                profession_code=identity.profession_code,
                profession_label=identity.profession_label,
                specialty_code=identity.specialty_code,
                specialty_label=identity.specialty_label,
            )
    else:
        values.update(
            first_name="",
            last_name="",
            structure_name=mailbox.display_name[:200],
        )
    with transaction.atomic():
        entry = save_entry(mailbox.address, values)
    return entry


def remove_mailbox(mailbox: Mailbox) -> None:
    """Withdraw one of our mailboxes from the directory (closed, liste rouge, patient)."""
    # Deleted rather than flagged: a liste rouge address must not stay in any
    # table the search or the FHIR export read, even inactive.
    DirectoryEntry.objects.filter(
        address=mailbox.address.lower(), source=DirectoryEntry.Source.LOCAL
    ).delete()


def sync_all_mailboxes() -> tuple[int, int]:
    """Republish every one of our mailboxes (backfill, or repair after a bug): (published, withdrawn)."""
    from mailboxes.models import Mailbox

    published = withdrawn = 0
    boxes = Mailbox.objects.select_related("owner__professional").order_by("pk")
    for box in boxes.iterator(chunk_size=500):
        if sync_mailbox(box) is None:
            withdrawn += 1
        else:
            published += 1
    return published, withdrawn


def import_from_source(kind: str, source: str) -> ImportRun:
    """Import from a local path or an http(s) URL (downloaded to a temporary file first)."""
    if not source.startswith(("http://", "https://")):
        return import_file(kind, source, max_deactivation=settings.DIRECTORY_MAX_DEACTIVATION)
    suffix = ".zip" if source.lower().split("?", 1)[0].endswith(".zip") else ".txt"
    with tempfile.NamedTemporaryFile(suffix=suffix) as target:
        # Streamed to disk in chunks: the national files are over 100 MB. The
        # scheme was checked above (http or https only, never file:).
        request = urllib.request.Request(source, headers={"User-Agent": "mssante-portal"})  # noqa: S310
        with urllib.request.urlopen(request, timeout=120) as response:  # noqa: S310
            shutil.copyfileobj(response, target, 1 << 20)
        target.flush()
        return import_file(kind, target.name, max_deactivation=settings.DIRECTORY_MAX_DEACTIVATION)


def import_file(kind: str, path: str | Path, *, actor: Any = None, **options: Any) -> ImportRun:
    """Run one Annuaire Santé import and journal it."""
    importer_class = MssImporter if kind == ImportRun.Kind.MSS else PsImporter
    run = importer_class(**options).run(path)
    journal.record(
        "directory.import",
        actor=actor,
        obj=run,
        kind=run.kind,
        status=run.status,
        read=run.read,
        added=run.added,
        updated=run.updated,
        deactivated=run.deactivated,
        rejected=run.rejected,
    )
    return run
