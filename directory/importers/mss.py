"""Import of the Extraction Correspondance MSSanté (one line per published mailbox)."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

from django.conf import settings
from django.db import models

from directory.importers.base import Importer
from directory.importers.postgres import STAGE
from directory.models import DirectoryEntry, WithheldAddress
from directory.search import TRIGRAM_INDEX, TRIGRAM_INDEX_SQL, entry_search_fields
from mssante.lib import annuaire

# A domain name as PATIENT_DOMAIN must be (it is put in SQL): labels of letters,
# digits and hyphens.
_DOMAIN = re.compile(r"[a-z0-9-]+(\.[a-z0-9-]+)+")


class MssImporter(Importer[annuaire.MssRecord]):
    kind = "mss"
    header = annuaire.MSS_HEADER
    lock_key = 1
    model = DirectoryEntry
    key = "address"
    owned_sql = "t.source = 'national'"
    bulk_indexes = ((TRIGRAM_INDEX, TRIGRAM_INDEX_SQL),)

    def parse(self, fields: list[str]) -> annuaire.MssRecord:
        return annuaire.parse_mss(fields)

    def key_of(self, record: annuaire.MssRecord) -> str:
        return record.address

    def digest_of(self, record: annuaire.MssRecord) -> str:
        return annuaire.content_hash(record.stored())

    def values(self, record: annuaire.MssRecord) -> dict[str, Any]:
        values = {
            "kind": record.kind,
            "source": DirectoryEntry.Source.NATIONAL,
            "civility": record.civility[:20],
            "first_name": record.first_name[:100],
            "last_name": record.last_name[:100],
            "id_type": record.id_type[:8],
            "national_id": record.national_id[:20],
            "profession_code": record.profession_code[:8],
            "profession_label": record.profession_label[:120],
            "specialty_code": record.specialty_code[:16],
            "specialty_label": record.specialty_label[:120],
            "structure_id_type": record.structure_id_type[:8],
            "structure_id": record.structure_id[:20],
            "structure_name": record.structure_name[:200],
            "service": record.service[:200],
            "digitization": record.digitization,
            "address_line": record.address_line,
            "postcode": record.postcode,
            "department": record.department,
            "city": record.city,
        }
        values.update(entry_search_fields(record.address, values))
        return values

    def existing(self, keys: list[str]) -> Iterator[tuple[str, Any, str, int | None, bool]]:
        rows = DirectoryEntry.objects.filter(address__in=keys).values_list(
            "address", "pk", "content_hash", "seen_in_import", "active", "source"
        )
        for address, pk, digest, seen, active, source in rows:
            # Our own mailboxes are kept by directory.services from the mailbox
            # itself; the national copy of them must not overwrite that.
            if source == DirectoryEntry.Source.LOCAL:
                yield address, None, digest, seen, active
            else:
                yield address, pk, digest, seen, active

    # A stale national copy of one of our liste rouge or closed boxes, or of a
    # patient box, must not publish it: those addresses are never stored from the
    # file. Our unpublished boxes are the directory's own WithheldAddress rows
    # (kept by services.sync_mailbox); patient boxes are the whole patient domain.
    withheld_reason = "boîte de nos domaines non publiable (liste rouge, fermée ou patient)"

    def withheld(self, keys: list[str]) -> set[str]:
        patients = {k for k in keys if k.endswith("@" + settings.PATIENT_DOMAIN)}
        listed = WithheldAddress.objects.filter(address__in=keys).values_list("address", flat=True)
        return patients | set(listed)

    def withheld_sql(self) -> str:
        # Table names and a setting checked as a domain name: no input reaches this SQL.
        domain = settings.PATIENT_DOMAIN
        if not _DOMAIN.fullmatch(domain):
            raise ValueError(f"PATIENT_DOMAIN is not a domain name: {domain!r}")
        return (
            f"SELECT address FROM {WithheldAddress._meta.db_table} "  # noqa: S608
            f"UNION ALL SELECT address FROM {STAGE} WHERE address LIKE '%%@{domain}'"
        )

    def scope(self) -> models.QuerySet[Any]:
        return DirectoryEntry.objects.filter(source=DirectoryEntry.Source.NATIONAL)
