"""Reads of the directory used by the search page, the autocomplete and the FHIR export.

Every read starts from ``listed_entries`` or ``published_entries`` so that
nothing unlisted can leak: liste rouge and closed boxes are never stored (see
services.sync_mailbox, called by the mailboxes app's actions), inactive entries and applicative boxes are filtered
here. User input only ever becomes a bound LIKE parameter on a normalised
column (``startswith``/``contains`` escape % and _), never SQL or a regex.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from django.db import connection
from django.db.models import Case, IntegerField, QuerySet, Value, When
from django.db.models.functions import Collate

from directory.models import DirectoryEntry
from mssante.lib.annuaire import normalize

MIN_QUERY = 2
AUTOCOMPLETE_LIMIT = 10


def words(text: str) -> list[str]:
    """The normalised words of a query; lone punctuation ("." or "@") is no word."""
    return [w for w in (w.strip(".@") for w in normalize(text).split()) if w]


def published_entries() -> QuerySet[DirectoryEntry]:
    """Entries we publish (FHIR): active; liste rouge boxes are never stored."""
    return DirectoryEntry.objects.filter(active=True)


def listed_entries() -> QuerySet[DirectoryEntry]:
    """Entries offered to end users: published, and not applicative boxes."""
    return published_entries().exclude(kind=DirectoryEntry.Kind.APPLICATIVE)


@dataclass(frozen=True)
class SearchFilters:
    q: str = ""
    profession: str = ""
    specialty: str = ""
    place: str = ""  # department, postcode or its beginning
    city: str = ""
    kind: str = ""


def search(filters: SearchFilters) -> QuerySet[DirectoryEntry]:
    """The search page: every filter narrows, exact surname matches come first."""
    entries = listed_entries()
    terms = words(filters.q)
    if filters.q.strip() and not terms:
        return entries.none()  # only punctuation: nothing to look for
    for word in terms:
        entries = entries.filter(search_text__contains=word)
    if filters.profession:
        entries = entries.filter(profession_code=filters.profession)
    if filters.specialty:
        entries = entries.filter(specialty_label__icontains=filters.specialty.strip())
    place = filters.place.strip().upper()
    if place:
        entries = entries.filter(postcode__startswith=place) | entries.filter(department=place)
    city = normalize(filters.city)
    if city:
        entries = entries.filter(city_norm__startswith=city)
    if filters.kind in DirectoryEntry.Kind.values:
        entries = entries.filter(kind=filters.kind)
    # Under the C collation on PostgreSQL the order can come from the prefix
    # index of migration 0002 (incremental sort): a filter-only search on the
    # national directory then reads one page instead of sorting every match.
    surname: Any = (
        Collate("last_name_norm", "C") if connection.vendor == "postgresql" else "last_name_norm"
    )
    order: list[Any] = [surname, "first_name", "address"]
    if terms:
        exact = Case(
            When(last_name_norm__in=[terms[0], terms[-1]], then=Value(0)),
            default=Value(1),
            output_field=IntegerField(),
        )
        entries = entries.annotate(exact=exact)
        order.insert(0, "exact")
    return entries.order_by(*order)


_FIELDS = (
    "address",
    "kind",
    "first_name",
    "last_name",
    "structure_name",
    "service",
    "profession_label",
    "specialty_label",
    "city",
)


def autocomplete(query: str, limit: int = AUTOCOMPLETE_LIMIT) -> list[dict[str, str]]:
    """Up to ``limit`` suggestions for a recipient field.

    Fast path first, so the common case stays within a few milliseconds on the
    national directory: surname prefix (btree pattern index), then address
    prefix, and only when those leave room a substring match on the trigram
    index, unordered so PostgreSQL can stop at the limit.
    """
    raw = query.strip().lower()
    terms = words(query)
    if len(raw) < MIN_QUERY or not terms:
        return []
    entries = listed_entries()
    found: dict[str, dict[str, Any]] = {}

    def take(queryset: QuerySet[DirectoryEntry]) -> None:
        for row in queryset.exclude(address__in=list(found)).values(*_FIELDS)[: limit - len(found)]:
            found[row["address"]] = row

    first, rest = terms[0], terms[1:]
    by_name = entries
    for word in rest:
        by_name = by_name.filter(search_text__contains=word)
    # In C order a word sorts before every longer word it starts, so exact
    # surname matches come first without a separate query.
    take(_prefix(by_name, "last_name_norm", first))
    if len(found) < limit:
        take(_prefix(entries, "address", raw))
    if len(found) < limit and len(" ".join(terms)) >= 3:
        contains = entries
        for word in terms:
            contains = contains.filter(search_text__contains=word)
        take(contains)
    return [_suggestion(row) for row in found.values()]


def _prefix(entries: QuerySet[DirectoryEntry], field: str, value: str) -> QuerySet[DirectoryEntry]:
    """Rows whose field starts with value, in order, through one index.

    On PostgreSQL the column is compared under the C collation, matching the
    indexes of migration 0002: the btree then answers both the prefix and the
    order, and the scan stops after the limit instead of sorting every match.
    """
    if connection.vendor == "postgresql":
        return (
            entries.annotate(prefix_key=Collate(field, "C"))
            .filter(prefix_key__startswith=value)
            .order_by("prefix_key")
        )
    return entries.filter(**{f"{field}__startswith": value}).order_by(field)


def _suggestion(row: dict[str, Any]) -> dict[str, str]:
    if row["kind"] == DirectoryEntry.Kind.PERSONAL and (row["first_name"] or row["last_name"]):
        name = " ".join(p for p in (row["first_name"], row["last_name"]) if p)
    else:
        name = " — ".join(p for p in (row["structure_name"], row["service"]) if p) or row["address"]
    profession = row["profession_label"]
    if row["specialty_label"] and row["specialty_label"] != profession:
        profession = (
            f"{profession} ({row['specialty_label']})" if profession else row["specialty_label"]
        )
    return {
        "address": row["address"],
        "name": name,
        "profession": profession,
        "city": row["city"],
        "type": row["kind"],
    }
