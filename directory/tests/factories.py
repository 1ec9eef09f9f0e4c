"""Lines and files in the real Annuaire Santé formats, for the directory tests."""

from __future__ import annotations

import itertools
import zipfile
from pathlib import Path
from typing import Any

from directory import services
from directory.models import DirectoryEntry
from mssante.lib.annuaire import MSS_HEADER, PS_HEADER

_seq = itertools.count(1)


def mss_line(
    *,
    kind: str = "PER",
    address: str | None = None,
    last_name: str = "DUPONT",
    first_name: str = "Jean",
    profession: tuple[str, str] = ("10", "Médecin"),
    specialty: tuple[str, str] = ("SM54", "Médecine générale (SM)"),
    national_id: str | None = None,
    structure: str = "CABINET DU DR DUPONT",
    service: str = "",
    postcode: str = "33000",
    city: str = "BORDEAUX",
    department: str = "33",
) -> list[str]:
    n = next(_seq)
    rpps = f"1{n:010d}"
    values = {
        "Type de BAL": kind,
        "Adresse BAL": address or f"{first_name}.{last_name}.{n}@medecin.mssante.fr".lower(),
        "Type Identifiant PP": "8" if kind == "PER" else "",
        "Identifiant PP": rpps if kind == "PER" else "",
        "Identification nationale PP": national_id or (f"8{rpps}" if kind == "PER" else ""),
        "Type identifiant structure": "1",
        "Identification Structure": f"1{330000000 + n}",
        "Service de rattachement": service,
        "Civilité d'exercice": "DR" if kind == "PER" else "",
        "Nom d'exercice": last_name if kind == "PER" else "",
        "Prénom d'exercice": first_name if kind == "PER" else "",
        "Catégorie profession": "C",
        "Libellé de catégorie profession": "Civil",
        "Code Profession": profession[0] if kind == "PER" else "",
        "Libellé Profession": profession[1] if kind == "PER" else "",
        "Code savoir-faire": specialty[0] if kind == "PER" else "",
        "Libellé savoir-faire": specialty[1] if kind == "PER" else "",
        "Dématérialisation": "O",
        "Raison Sociale structure BAL": structure,
        "Enseigne commerciale structure BAL": "",
        "L2COMPLEMENTLOCALISATION structure BAL": "",
        "L3COMPLEMENTDISTRIBUTION structure BAL": "",
        "L4NUMEROVOIE structure BAL": "12",
        "L4COMPLEMENTNUMEROVOIE structure BAL": "",
        "NL4TYPEVOIE structure BAL": "R",
        "L4LIBELLEVOIE structure BAL": "DE LA PAIX",
        "L5LIEUDITMENTION structure BAL": "",
        "L6LIGNEACHEMINEMENT structure BAL": f"{postcode} {city}",
        "Code postal structure BAL": postcode,
        "Département structure BAL": department,
        "Pays structure BAL": "FRANCE",
    }
    return [values[h] for h in MSS_HEADER]


def ps_line(
    *,
    national_id: str,
    last_name: str = "DUPONT",
    first_name: str = "Jean",
    profession: tuple[str, str] = ("10", "Médecin"),
    specialty: tuple[str, str] = ("SM54", "Médecine générale (SM)"),
    site: str = "CABINET MEDICAL DE LA GARE",
    postcode: str = "69003",
    city: str = "Lyon",
    department: str = "69",
) -> list[str]:
    values: dict[str, str] = dict.fromkeys(PS_HEADER, "")
    values.update(
        {
            "Type d'identifiant PP": national_id[:1],
            "Identifiant PP": national_id[1:],
            "Identification nationale PP": national_id,
            "Code civilité d'exercice": "DR",
            "Libellé civilité d'exercice": "Docteur",
            "Nom d'exercice": last_name,
            "Prénom d'exercice": first_name,
            "Code profession": profession[0],
            "Libellé profession": profession[1],
            "Code savoir-faire": specialty[0],
            "Libellé savoir-faire": specialty[1],
            "Code mode exercice": "L",
            "Libellé mode exercice": "Libéral",
            "Numéro SIRET site": "12345678900011",
            "Raison sociale site": site,
            "Code postal (coord. structure)": postcode,
            "Libellé commune (coord. structure)": city,
            "Code Département (structure)": department,
        }
    )
    return [values[h] for h in PS_HEADER]


def write(
    path: Path,
    header: tuple[str, ...],
    rows: list[list[str] | str],
    *,
    encoding: str = "utf-8",
    trailing_pipe: bool = False,
    zipped: bool = False,
) -> Path:
    """Write rows (lists of fields, or raw text lines for malformed ones) as the ANS does."""
    end = "|" if trailing_pipe else ""
    lines = ["|".join(header) + end]
    lines += [row if isinstance(row, str) else "|".join(row) + end for row in rows]
    data = ("\r\n".join(lines) + "\r\n").encode(encoding)
    if zipped:
        with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
            archive.writestr("Extraction_Correspondance_MSSante_202503130900.txt", data)
    else:
        path.write_bytes(data)
    return path


def entry(**values: Any) -> DirectoryEntry:
    """A national entry written the way the importer writes it."""
    address = values.pop("address", f"pro{next(_seq)}@medecin.mssante.fr")
    values.setdefault("kind", DirectoryEntry.Kind.PERSONAL)
    values.setdefault("source", DirectoryEntry.Source.NATIONAL)
    return services.save_entry(address, values)
