"""Every write to the directory outside the bulk importers."""

from __future__ import annotations

import shutil
import tempfile
import urllib.request
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from django.conf import settings
from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from audit import journal
from directory.importers import MssImporter, PsImporter
from directory.models import DirectoryEntry, ImportRun, WithheldAddress
from directory.search import entry_search_fields

# Kinds of our mailboxes that are published at all. Patient boxes never are;
# applicative boxes are published (FHIR, national directory) but never offered
# to end users in search or autocomplete (selectors filter them out).
_PUBLISHED_KINDS = {"PER", "ORG", "APP"}


@dataclass(frozen=True)
class MailboxListing:
    """What the mailboxes app tells the directory about one of its boxes (plain data).

    ``published`` is the mailboxes app's verdict (active, not on the liste rouge);
    the rest is what the entry shows: the holder's name and identity for a
    nominative box, the structure's name for the others.
    """

    address: str
    kind: str
    published: bool
    first_name: str = ""
    last_name: str = ""
    structure_name: str = ""
    id_type: str = ""
    national_id: str = ""
    profession_code: str = ""
    profession_label: str = ""
    specialty_code: str = ""
    specialty_label: str = ""


def save_entry(address: str, values: dict[str, Any]) -> DirectoryEntry:
    """Create or update the entry for address, keeping the normalised columns in step."""
    address = address.strip().lower()
    fields = {**values, **entry_search_fields(address, values)}
    entry, _ = DirectoryEntry.objects.update_or_create(address=address, defaults=fields)
    return entry


@transaction.atomic
def sync_mailbox(listing: MailboxListing) -> DirectoryEntry | None:
    """Publish one of our mailboxes, or withdraw it when it must not be listed."""
    address = listing.address.strip().lower()
    if not listing.published or listing.kind not in _PUBLISHED_KINDS:
        withdraw_mailbox(address, kind=listing.kind)
        return None
    WithheldAddress.objects.filter(address=address).delete()
    values: dict[str, Any] = asdict(listing)
    del values["address"], values["published"]
    values.update(source=DirectoryEntry.Source.LOCAL, active=True, service="")
    values["structure_name"] = values["structure_name"][:200]
    return save_entry(address, values)


def withdraw_mailbox(address: str, *, kind: str = "") -> None:
    """Withdraw one of our mailboxes from the directory (closed, liste rouge, patient)."""
    address = address.strip().lower()
    # Deleted rather than flagged: a liste rouge address must not stay in any
    # table the search or the FHIR export read, even inactive.
    DirectoryEntry.objects.filter(address=address, source=DirectoryEntry.Source.LOCAL).delete()
    if kind != "PAT":
        WithheldAddress.objects.update_or_create(address=address)


def import_from_source(kind: str, source: str) -> ImportRun:
    """Import from a local path or an http(s) URL (downloaded to a temporary file first)."""
    if not source.startswith(("http://", "https://")):
        return import_file(kind, source, max_deactivation=settings.DIRECTORY_MAX_DEACTIVATION)
    suffix = ".zip" if source.lower().split("?", 1)[0].endswith(".zip") else ".txt"
    with tempfile.NamedTemporaryFile(suffix=suffix) as target:
        # Streamed to disk in chunks: the national files are over 100 MB. The
        # scheme was checked above (http or https only, never file:).
        request = urllib.request.Request(source, headers={"User-Agent": "mssante-portal"})  # noqa: S310
        try:
            with urllib.request.urlopen(request, timeout=120) as response:  # noqa: S310
                shutil.copyfileobj(response, target, 1 << 20)
        except OSError as exc:
            # Recorded like any run, so that staff see on the dashboard that the
            # scheduled refresh did not happen, and why (nothing of the directory changed).
            return _download_failed(kind, source, exc)
        target.flush()
        return import_file(kind, target.name, max_deactivation=settings.DIRECTORY_MAX_DEACTIVATION)


def _download_failed(kind: str, source: str, exc: OSError) -> ImportRun:
    with transaction.atomic():
        run = ImportRun.objects.create(
            kind=kind,
            file_name=source[:255],
            status=ImportRun.Status.FAILED,
            finished_at=timezone.now(),
            message=_("Téléchargement impossible (%(error)s) : l'annuaire est inchangé.")
            % {"error": str(exc)[:300] or type(exc).__name__},
        )
        journal.record(
            "directory.import", obj=run, kind=run.kind, status=run.status, read=0, rejected=0
        )
    return run


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
