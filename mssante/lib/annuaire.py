"""Reading the Annuaire Santé extraction files, line by line, with no Django import.

Both public extractions are ``|``-separated text with one header line. The
encoding is documented as UTF-8 for the MSSanté file but Windows-1252 copies
circulate (and some tools re-encode PS_LibreAcces), so each line is decoded as
UTF-8 and, failing that, as Windows-1252: a file mixing both (a hand-edited
copy) still imports. Lines are yielded one at a time so memory stays constant
whatever the file size; a ``.zip`` (the form the ANS distributes) is read
through without extracting it to disk.
"""

from __future__ import annotations

import hashlib
import re
import unicodedata
import zipfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Final

__all__ = [
    "MSS_HEADER",
    "PS_HEADER",
    "FormatError",
    "LineError",
    "MssRecord",
    "PsRecord",
    "content_hash",
    "normalize",
    "open_extraction",
    "parse_mss",
    "parse_ps",
    "read_lines",
]

MSS_HEADER: Final[tuple[str, ...]] = (
    "Type de BAL",
    "Adresse BAL",
    "Type Identifiant PP",
    "Identifiant PP",
    "Identification nationale PP",
    "Type identifiant structure",
    "Identification Structure",
    "Service de rattachement",
    "Civilité d'exercice",
    "Nom d'exercice",
    "Prénom d'exercice",
    "Catégorie profession",
    "Libellé de catégorie profession",
    "Code Profession",
    "Libellé Profession",
    "Code savoir-faire",
    "Libellé savoir-faire",
    "Dématérialisation",
    "Raison Sociale structure BAL",
    "Enseigne commerciale structure BAL",
    "L2COMPLEMENTLOCALISATION structure BAL",
    "L3COMPLEMENTDISTRIBUTION structure BAL",
    "L4NUMEROVOIE structure BAL",
    "L4COMPLEMENTNUMEROVOIE structure BAL",
    "NL4TYPEVOIE structure BAL",
    "L4LIBELLEVOIE structure BAL",
    "L5LIEUDITMENTION structure BAL",
    "L6LIGNEACHEMINEMENT structure BAL",
    "Code postal structure BAL",
    "Département structure BAL",
    "Pays structure BAL",
)

PS_HEADER: Final[tuple[str, ...]] = (
    "Type d'identifiant PP",
    "Identifiant PP",
    "Identification nationale PP",
    "Code civilité d'exercice",
    "Libellé civilité d'exercice",
    "Code civilité",
    "Libellé civilité",
    "Nom d'exercice",
    "Prénom d'exercice",
    "Code profession",
    "Libellé profession",
    "Code catégorie professionnelle",
    "Libellé catégorie professionnelle",
    "Code type savoir-faire",
    "Libellé type savoir-faire",
    "Code savoir-faire",
    "Libellé savoir-faire",
    "Code mode exercice",
    "Libellé mode exercice",
    "Numéro SIRET site",
    "Numéro SIREN site",
    "Numéro FINESS site",
    "Numéro FINESS établissement juridique",
    "Identifiant technique de la structure",
    "Raison sociale site",
    "Enseigne commerciale site",
    "Complément destinataire (coord. structure)",
    "Complément point géographique (coord. structure)",
    "Numéro Voie (coord. structure)",
    "Indice répétition voie (coord. structure)",
    "Code type de voie (coord. structure)",
    "Libellé type de voie (coord. structure)",
    "Libellé Voie (coord. structure)",
    "Mention distribution (coord. structure)",
    "Bureau cedex (coord. structure)",
    "Code postal (coord. structure)",
    "Code commune (coord. structure)",
    "Libellé commune (coord. structure)",
    "Code pays (coord. structure)",
    "Libellé pays (coord. structure)",
    "Téléphone (coord. structure)",
    "Téléphone 2 (coord. structure)",
    "Télécopie (coord. structure)",
    "Adresse e-mail (coord. structure)",
    "Code Département (structure)",
    "Libellé Département (structure)",
    "Ancien identifiant de la structure",
    "Autorité d'enregistrement",
    "Code secteur d'activité",
    "Libellé secteur d'activité",
    "Code section tableau pharmaciens",
    "Libellé section tableau pharmaciens",
    "Code rôle",
    "Libellé rôle",
    "Code genre activité",
    "Libellé genre activité",
)

MAILBOX_TYPES: Final = frozenset({"PER", "ORG", "APP"})

# Deliberately simple: the directory only needs to reject what cannot be an
# address at all (no @, spaces, empty parts); delivery validates the rest.
_ADDRESS: Final = re.compile(r"[a-z0-9!#$%&'*+/=?^_`{}~.-]+@[a-z0-9-]+(?:\.[a-z0-9-]+)+")
_NOT_WORD: Final = re.compile(r"[^a-z0-9@.]+")
# The L6 line of a French postal address is "<postcode> <CITY> [CEDEX nn]".
_ACHEMINEMENT: Final = re.compile(r"^\s*(\d{5})\s+(.*?)\s*$")


class FormatError(Exception):
    """The file is not the expected extraction (wrong header, unreadable archive)."""


class LineError(Exception):
    """One line cannot be imported; the message says why, in French, for the summary."""


def normalize(text: str) -> str:
    """Lowercase, without accents or punctuation: the form searches compare."""
    folded = text.casefold()
    if not folded.isascii():
        # Decomposing then dropping what is not ASCII removes the accents
        # ("é" is "e" + a combining accent); casefold already turned "ß" into "ss".
        folded = folded.replace("œ", "oe").replace("æ", "ae")
        folded = unicodedata.normalize("NFKD", folded).encode("ascii", "ignore").decode()
    return " ".join(_NOT_WORD.sub(" ", folded).split())


def content_hash(values: tuple[str, ...] | list[str]) -> str:
    """A digest of the fields we keep, so unchanged rows are never rewritten."""
    return hashlib.blake2b("\x1f".join(values).encode(), digest_size=16).hexdigest()


def _decode(raw: bytes) -> str:
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        return raw.decode("cp1252", errors="replace")


@contextmanager
def open_extraction(path: str | Path) -> Iterator[tuple[IO[bytes], str, int]]:
    """The binary stream of the extraction, its name and size, unzipping a ``.zip`` on the fly."""
    path = Path(path)
    if zipfile.is_zipfile(path):
        with zipfile.ZipFile(path) as archive:
            members = [m for m in archive.infolist() if not m.is_dir()]
            texts = [m for m in members if m.filename.lower().endswith((".txt", ".csv"))]
            chosen = (texts or members)[:1]
            if not chosen:
                raise FormatError("L'archive ne contient aucun fichier.")
            with archive.open(chosen[0]) as stream:
                yield stream, chosen[0].filename, chosen[0].file_size
    else:
        with path.open("rb") as stream:
            yield stream, path.name, path.stat().st_size


# A real line is under 2 kB (56 columns); a longer one is refused without being
# held in memory whole (a file with no line break would otherwise be read at once).
MAX_LINE_BYTES: Final = 64 * 1024


def _bounded_lines(stream: IO[bytes]) -> Iterator[bytes | None]:
    """Each line of ``stream``, or None for a line over MAX_LINE_BYTES (skipped in chunks)."""
    while True:
        line = stream.readline(MAX_LINE_BYTES + 1)
        if not line:
            return
        if len(line) <= MAX_LINE_BYTES or line.endswith(b"\n"):
            yield line
            continue
        while line and not line.endswith(b"\n"):
            line = stream.readline(MAX_LINE_BYTES)
        yield None


def read_lines(
    stream: IO[bytes], expected: tuple[str, ...]
) -> Iterator[tuple[int, list[str] | LineError]]:
    """Check the header, then yield (line number, fields or the reason it is malformed)."""
    header_raw = stream.readline(MAX_LINE_BYTES + 1)
    width = len(expected)
    header = _split(_decode(header_raw.removeprefix(b"\xef\xbb\xbf")), width)
    if tuple(h.strip() for h in header) != expected:
        raise FormatError(
            "En-tête inattendu : ce n'est pas le fichier attendu.\n"
            f"Attendu : {'|'.join(expected)}\n"
            f"Trouvé  : {'|'.join(header)[:2000]}"
        )
    for number, raw in enumerate(_bounded_lines(stream), start=2):
        if raw is None:
            yield number, LineError(f"ligne trop longue (plus de {MAX_LINE_BYTES // 1024} ko)")
            continue
        text = _decode(raw)
        if not text.strip():
            continue
        fields = _split(text, width)
        if len(fields) != width:
            yield number, LineError(f"{len(fields)} colonnes au lieu de {width}")
        else:
            yield number, fields


def _split(text: str, width: int) -> list[str]:
    fields = text.rstrip("\r\n").split("|")
    # Real files end some lines with a trailing separator: one empty column too many.
    if len(fields) == width + 1 and fields[-1] == "":
        fields.pop()
    return fields


@dataclass(slots=True)
class MssRecord:
    """One line of the Extraction Correspondance MSSanté, cleaned."""

    kind: str
    address: str
    id_type: str
    national_id: str
    structure_id_type: str
    structure_id: str
    service: str
    civility: str
    last_name: str
    first_name: str
    profession_code: str
    profession_label: str
    specialty_code: str
    specialty_label: str
    digitization: bool
    structure_name: str
    address_line: str
    postcode: str
    city: str
    department: str

    def stored(self) -> tuple[str, ...]:
        return (
            self.kind,
            self.id_type,
            self.national_id,
            self.structure_id_type,
            self.structure_id,
            self.service,
            self.civility,
            self.last_name,
            self.first_name,
            self.profession_code,
            self.profession_label,
            self.specialty_code,
            self.specialty_label,
            "1" if self.digitization else "0",
            self.structure_name,
            self.address_line,
            self.postcode,
            self.city,
            self.department,
        )


def _clean(value: str) -> str:
    value = value.strip()
    # Most fields are clean; only collapse inner runs of blanks when there are some.
    return " ".join(value.split()) if "  " in value or "\t" in value else value


def _city(acheminement: str, postcode: str) -> tuple[str, str]:
    match = _ACHEMINEMENT.match(acheminement)
    if match:
        return postcode or match.group(1), _clean(match.group(2))
    return postcode, _clean(acheminement)


def parse_mss(fields: list[str]) -> MssRecord:
    """Turn the 31 columns into a record, or raise LineError with the reason."""
    # Fields are stripped only: runs of inner blanks are rare, and the search
    # columns are normalised anyway.
    f = [v.strip() for v in fields]
    kind = f[0].upper()
    if kind not in MAILBOX_TYPES:
        raise LineError(f"type de BAL inconnu « {f[0][:20]} »")
    address = f[1].lower()
    if not _ADDRESS.fullmatch(address) or len(address) > 254:
        raise LineError(f"adresse BAL invalide « {f[1][:80]} »")
    street = " ".join(v for v in (f[22], f[23], f[24], f[25]) if v)
    address_line = ", ".join(v for v in (f[20], f[21], street, f[26]) if v)
    postcode, city = _city(f[27], f[28])
    return MssRecord(
        kind=kind,
        address=address,
        id_type=f[2],
        national_id=f[4],
        structure_id_type=f[5],
        structure_id=f[6],
        service=f[7],
        civility=f[8],
        last_name=f[9],
        first_name=f[10],
        profession_code=f[13],
        profession_label=f[14],
        specialty_code=f[15],
        specialty_label=f[16],
        digitization=f[17].lower() in {"o", "oui", "true", "1", "vrai"},
        structure_name=f[18] or f[19],
        address_line=address_line[:255],
        postcode=postcode[:10],
        city=city[:100],
        department=f[29][:60],
    )


@dataclass(slots=True)
class PsRecord:
    """One activity line of PS_LibreAcces_Personne_activite, the columns we keep."""

    national_id: str
    id_type: str
    civility: str
    last_name: str
    first_name: str
    profession_code: str
    profession_label: str
    specialty_code: str
    specialty_label: str
    structure_name: str
    siret: str
    finess: str
    postcode: str
    city: str
    department: str

    def stored(self) -> tuple[str, ...]:
        return (
            self.id_type,
            self.civility,
            self.last_name,
            self.first_name,
            self.profession_code,
            self.profession_label,
            self.specialty_code,
            self.specialty_label,
            self.structure_name,
            self.siret,
            self.finess,
            self.postcode,
            self.city,
            self.department,
        )


_PS_ID_TYPES: Final = {"0": "ADELI", "8": "RPPS"}


def parse_ps(fields: list[str]) -> PsRecord:
    """Turn the 56 columns into a record, or raise LineError with the reason."""
    f = [v.strip() for v in fields]
    national_id = f[2]
    if not national_id or not national_id.isalnum() or len(national_id) > 20:
        raise LineError(f"identification nationale PP invalide « {f[2][:30]} »")
    if f[0] not in {"0", "8"} and not f[0]:
        raise LineError("type d'identifiant PP absent")
    return PsRecord(
        national_id=national_id,
        id_type=_PS_ID_TYPES.get(f[0], f[0])[:8],
        civility=f[4] or f[6],
        last_name=f[7],
        first_name=f[8],
        profession_code=f[9],
        profession_label=f[10],
        specialty_code=f[15],
        specialty_label=f[16],
        structure_name=(f[24] or f[25])[:200],
        siret=f[19][:14],
        finess=f[21][:9],
        postcode=f[35][:10],
        city=f[37][:100],
        department=f[45][:60],
    )
