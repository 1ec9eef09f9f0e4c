"""FHIR R4 resources shaped like the ANS Annuaire Santé implementation guide.

Only what the directory holds is published: Practitioner (one per national
id), PractitionerRole (one per personal mailbox) and Organization (one per
structure holding organisational or applicative mailboxes). Every MSSanté
address is a ``telecom`` of system ``email`` carrying the French email-type
extension (MSSANTE) and the ANS mailbox metadata extension (type of box,
service, acceptance of paperless exchanges). Entries come from the
selectors, so liste rouge boxes, never stored, cannot appear.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from typing import Any, Final

from django.db.models import QuerySet

from directory import selectors
from directory.models import DirectoryEntry
from mssante.lib.annuaire import normalize

IG: Final = "https://interop.esante.gouv.fr/ig/fhir/annuaire"
PROFILE_PRACTITIONER: Final = f"{IG}/StructureDefinition/as-practitioner"
PROFILE_ROLE: Final = f"{IG}/StructureDefinition/as-practitionerrole"
PROFILE_ORGANIZATION: Final = f"{IG}/StructureDefinition/as-organization"
EXT_MAILBOX: Final = f"{IG}/StructureDefinition/as-ext-mailbox-mss-metadata"
EXT_EMAIL_TYPE: Final = (
    "https://hl7.fr/ig/fhir/core/StructureDefinition/fr-core-contact-point-email-type"
)
CS_EMAIL_TYPE: Final = (
    "https://mos.esante.gouv.fr/NOS/TRE_R256-TypeMessagerie/FHIR/TRE-R256-TypeMessagerie"
)
CS_BAL_TYPE: Final = "https://mos.esante.gouv.fr/NOS/TRE_R257-TypeBAL/FHIR/TRE-R257-TypeBAL"
CS_IDENTIFIER_TYPE: Final = "https://hl7.fr/ig/fhir/core/CodeSystem/fr-core-cs-v2-0203"
CS_PROFESSION: Final = (
    "https://mos.esante.gouv.fr/NOS/TRE_G15-ProfessionSante/FHIR/TRE-G15-ProfessionSante"
)
CS_SPECIALTY: Final = (
    "https://mos.esante.gouv.fr/NOS/TRE_R38-SpecialiteOrdinale/FHIR/TRE-R38-SpecialiteOrdinale"
)
OID_IDNPS: Final = "urn:oid:1.2.250.1.71.4.2.1"
OID_IDNST: Final = "urn:oid:1.2.250.1.71.4.2.2"

DEFAULT_COUNT = 20
MAX_COUNT = 100

_BAL_LABELS: Final = {"PER": "Personnelle", "ORG": "Organisationnelle", "APP": "Applicative"}


def telecom(entry: DirectoryEntry) -> dict[str, Any]:
    """The as-mailbox-mss ContactPoint of one mailbox."""
    metadata: list[dict[str, Any]] = [
        {
            "url": "type",
            "valueCodeableConcept": {
                "coding": [
                    {"system": CS_BAL_TYPE, "code": entry.kind, "display": _BAL_LABELS[entry.kind]}
                ]
            },
        },
        {"url": "digitization", "valueBoolean": entry.digitization},
    ]
    if entry.service:
        metadata.append({"url": "service", "valueString": entry.service})
    return {
        "extension": [
            {"url": EXT_EMAIL_TYPE, "valueCoding": {"system": CS_EMAIL_TYPE, "code": "MSSANTE"}},
            {"url": EXT_MAILBOX, "extension": metadata},
        ],
        "system": "email",
        "value": entry.address,
    }


def _identifier(system: str, code: str, value: str) -> dict[str, Any]:
    return {
        "use": "official",
        "type": {"coding": [{"system": CS_IDENTIFIER_TYPE, "code": code}]},
        "system": system,
        "value": value,
    }


def _address(entry: DirectoryEntry) -> list[dict[str, Any]]:
    if not (entry.address_line or entry.city or entry.postcode):
        return []
    address: dict[str, Any] = {"use": "work", "country": "FRA"}
    if entry.address_line:
        address["line"] = [entry.address_line]
    if entry.city:
        address["city"] = entry.city
    if entry.postcode:
        address["postalCode"] = entry.postcode
    return [address]


def _qualification(entry: DirectoryEntry) -> list[dict[str, Any]]:
    codes = []
    if entry.profession_code:
        codes.append(
            {
                "system": CS_PROFESSION,
                "code": entry.profession_code,
                "display": entry.profession_label,
            }
        )
    if entry.specialty_code:
        codes.append(
            {"system": CS_SPECIALTY, "code": entry.specialty_code, "display": entry.specialty_label}
        )
    return [{"coding": [c]} for c in codes]


def practitioner_id(entry: DirectoryEntry) -> str:
    # FHIR ids allow [A-Za-z0-9-.]{1,64}: national ids fit; boxes without one
    # get an id of their own.
    return entry.national_id or f"bal-{entry.pk}"


def organization_id(entry: DirectoryEntry) -> str:
    return f"st-{entry.structure_id}" if entry.structure_id else f"bal-{entry.pk}"


def practitioner(entries: list[DirectoryEntry]) -> dict[str, Any]:
    """One Practitioner from the personal mailboxes of one professional."""
    first = entries[0]
    resource: dict[str, Any] = {
        "resourceType": "Practitioner",
        "id": practitioner_id(first),
        "meta": {"profile": [PROFILE_PRACTITIONER]},
        "active": True,
    }
    if first.national_id:
        resource["identifier"] = [_identifier(OID_IDNPS, "IDNPS", first.national_id)]
    name: dict[str, Any] = {"use": "official"}
    if first.last_name:
        name["family"] = first.last_name
    if first.first_name:
        name["given"] = [first.first_name]
    if first.civility:
        name["prefix"] = [first.civility]
    if len(name) > 1:
        resource["name"] = [name]
    resource["telecom"] = [telecom(e) for e in entries]
    qualification = [{"code": q} for q in _qualification(first)]
    if qualification:
        resource["qualification"] = qualification
    return resource


def practitioner_role(entry: DirectoryEntry) -> dict[str, Any]:
    """One PractitionerRole per personal mailbox: who, where, and the address."""
    resource: dict[str, Any] = {
        "resourceType": "PractitionerRole",
        "id": f"bal-{entry.pk}",
        "meta": {"profile": [PROFILE_ROLE]},
        "active": True,
        "practitioner": {"reference": f"Practitioner/{practitioner_id(entry)}"},
    }
    if entry.structure_id:
        resource["organization"] = {
            "reference": f"Organization/{organization_id(entry)}",
            "display": entry.structure_name or None,
        }
        if not entry.structure_name:
            del resource["organization"]["display"]
    code = _qualification(entry)
    if code:
        resource["code"] = code[:1]
        if len(code) > 1:
            resource["specialty"] = code[1:]
    resource["telecom"] = [telecom(entry)]
    return resource


def organization(entries: list[DirectoryEntry]) -> dict[str, Any]:
    """One Organization from the organisational/applicative mailboxes of one structure."""
    first = entries[0]
    resource: dict[str, Any] = {
        "resourceType": "Organization",
        "id": organization_id(first),
        "meta": {"profile": [PROFILE_ORGANIZATION]},
        "active": True,
    }
    if first.structure_id:
        resource["identifier"] = [_identifier(OID_IDNST, "IDNST", first.structure_id)]
    resource["name"] = first.structure_name or first.service or first.address
    resource["telecom"] = [telecom(e) for e in entries]
    address = _address(first)
    if address:
        resource["address"] = address
    return resource


# --- searches ------------------------------------------------------------------------


def _identifier_value(raw: str) -> str:
    # token search: "system|value" or "value"
    return raw.rsplit("|", 1)[-1].strip()


def _filter(entries: QuerySet[DirectoryEntry], params: dict[str, str]) -> QuerySet[DirectoryEntry]:
    if params.get("mailbox-mss"):
        entries = entries.filter(address=params["mailbox-mss"].strip().lower())
    if params.get("name"):
        for word in normalize(params["name"]).split():
            entries = entries.filter(search_text__contains=word)
    return entries


def search(resource_type: str, params: dict[str, str]) -> tuple[int, list[dict[str, Any]]]:
    """(total, resources) for a search on one resource type, paged by _count/_offset."""
    count = bounded(params.get("_count"), DEFAULT_COUNT, 1, MAX_COUNT)
    offset = bounded(params.get("_offset"), 0, 0, 10_000)
    entries = _filter(selectors.published_entries(), params)
    identifier = _identifier_value(params.get("identifier", ""))
    if resource_type == "PractitionerRole":
        roles = entries.filter(kind=DirectoryEntry.Kind.PERSONAL)
        if identifier:
            roles = roles.filter(national_id=identifier)
        roles = roles.order_by("pk")
        return roles.count(), [practitioner_role(e) for e in roles[offset : offset + count]]
    if resource_type == "Practitioner":
        people = entries.filter(kind=DirectoryEntry.Kind.PERSONAL)
        if identifier:
            people = people.filter(national_id=identifier)
        return _grouped(people, "national_id", count, offset, practitioner)
    structures = entries.filter(
        kind__in=[DirectoryEntry.Kind.ORGANISATIONAL, DirectoryEntry.Kind.APPLICATIVE]
    )
    if identifier:
        structures = structures.filter(structure_id=identifier)
    return _grouped(structures, "structure_id", count, offset, organization)


def _grouped(
    entries: QuerySet[DirectoryEntry], key: str, count: int, offset: int, build: Any
) -> tuple[int, list[dict[str, Any]]]:
    # Resources are keyed by national (or structure) id; mailboxes without one
    # stand alone. Page over distinct keys, then fetch every mailbox of the page.
    keyed = entries.exclude(**{key: ""})
    keys = keyed.order_by(key).values_list(key, flat=True).distinct()
    single = entries.filter(**{key: ""}).order_by("pk")
    total_keys = keys.count()
    total = total_keys + single.count()
    page_keys = list(keys[offset : offset + count])
    groups: dict[str, list[DirectoryEntry]] = defaultdict(list)
    for entry in entries.filter(**{f"{key}__in": page_keys}).order_by(key, "address"):
        groups[getattr(entry, key)].append(entry)
    resources = [build(groups[k]) for k in page_keys if groups[k]]
    room = count - len(resources)
    if room > 0:
        start = max(offset - total_keys, 0)
        resources += [build([e]) for e in single[start : start + room]]
    return total, resources


def bounded(raw: str | None, default: int, low: int, high: int) -> int:
    try:
        value = int(raw) if raw else default
    except ValueError:
        value = default
    return min(max(value, low), high)


def bundle(
    total: int,
    resources: Iterable[dict[str, Any]],
    base_url: str,
    self_url: str,
    next_url: str | None,
) -> dict[str, Any]:
    """A searchset Bundle."""
    links = [{"relation": "self", "url": self_url}]
    if next_url:
        links.append({"relation": "next", "url": next_url})
    return {
        "resourceType": "Bundle",
        "type": "searchset",
        "total": total,
        "link": links,
        "entry": [
            {
                "fullUrl": f"{base_url}/{r['resourceType']}/{r['id']}",
                "resource": r,
                "search": {"mode": "match"},
            }
            for r in resources
        ],
    }


def operation_outcome(code: str, diagnostics: str) -> dict[str, Any]:
    return {
        "resourceType": "OperationOutcome",
        "issue": [{"severity": "error", "code": code, "diagnostics": diagnostics}],
    }
