"""The normalised columns searches compare against, computed once at write time."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from mssante.lib.annuaire import normalize


def entry_search_fields(address: str, values: Mapping[str, Any]) -> dict[str, str]:
    """last_name_norm, city_norm and search_text for an entry with these values."""
    words = (
        values.get("last_name", ""),
        values.get("first_name", ""),
        values.get("structure_name", ""),
        values.get("service", ""),
        address,
    )
    return {
        "last_name_norm": normalize(values.get("last_name", ""))[:100],
        "city_norm": normalize(values.get("city", ""))[:100],
        "search_text": normalize(" ".join(w for w in words if w))[:600],
    }


# Created by migration 0002 (PostgreSQL only, outside the model state); the
# importer rebuilds it with the same statement after a first bulk load.
TRIGRAM_INDEX = "directory_search_trgm"
TRIGRAM_INDEX_SQL = (
    f"CREATE INDEX IF NOT EXISTS {TRIGRAM_INDEX} ON directory_directoryentry "
    "USING gin (search_text gin_trgm_ops)"
)
