"""Import of PS_LibreAcces_Personne_activite (one line per activity of a professional)."""

from __future__ import annotations

from typing import Any

from django.db.models import OuterRef, Q, Subquery

from directory.importers.base import Importer
from directory.models import DirectoryEntry, ImportRun, Practitioner
from mssante.lib import annuaire


class PsImporter(Importer[annuaire.PsRecord]):
    kind = "ps"
    header = annuaire.PS_HEADER
    lock_key = 2
    model = Practitioner
    key = "national_id"
    # A professional has one line per activity: the first one in the file is
    # kept as the place of practice, the others are read and merged.
    duplicates_rejected = False

    def parse(self, fields: list[str]) -> annuaire.PsRecord:
        return annuaire.parse_ps(fields)

    def key_of(self, record: annuaire.PsRecord) -> str:
        return record.national_id

    def digest_of(self, record: annuaire.PsRecord) -> str:
        return annuaire.content_hash(record.stored())

    def values(self, record: annuaire.PsRecord) -> dict[str, Any]:
        return {
            "id_type": record.id_type,
            "civility": record.civility[:40],
            "first_name": record.first_name[:100],
            "last_name": record.last_name[:100],
            "profession_code": record.profession_code[:8],
            "profession_label": record.profession_label[:120],
            "specialty_code": record.specialty_code[:16],
            "specialty_label": record.specialty_label[:120],
            "structure_name": record.structure_name,
            "siret": record.siret,
            "finess": record.finess,
            "postcode": record.postcode,
            "city": record.city,
            "city_norm": annuaire.normalize(record.city)[:100],
            "department": record.department,
        }

    def after(self, run: ImportRun) -> None:
        enrich_entries()


def enrich_entries() -> int:
    """Fill the blanks of personal entries from the practitioner's first activity.

    The MSSanté extraction often leaves the place of practice empty for
    professionals in private practice; PS_LibreAcces has it. Only empty
    fields are filled, so what the mailbox line says always wins.
    """
    practitioner = Practitioner.objects.filter(national_id=OuterRef("national_id"), active=True)
    base = DirectoryEntry.objects.filter(kind=DirectoryEntry.Kind.PERSONAL).exclude(national_id="")
    known = Q(national_id__in=Practitioner.objects.filter(active=True).values("national_id"))
    total = 0
    for fields, blank in (
        (("profession_code", "profession_label"), Q(profession_code="")),
        (("specialty_code", "specialty_label"), Q(specialty_code="")),
        (("postcode", "city", "city_norm", "department"), Q(city="")),
    ):
        total += base.filter(known & blank).update(
            **{name: Subquery(practitioner.values(name)[:1]) for name in fields}
        )
    return total
