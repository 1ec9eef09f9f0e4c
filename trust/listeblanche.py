"""The national liste blanche: parsing the published XML, importing it, reading it.

Reads used by the rest of the code: ``is_listed(domain)``, ``dns_for(domain)`` and, for
inbound SMTP, ``peer_allowed(domain, peer_subject)``, ``listed_anywhere(peer_subject)`` and
``listed_dns(domain)`` (for the gateway, which keeps them a while).

The file is untrusted input fetched over the network, so it is stream-parsed with
defusedxml's ``iterparse`` with DTDs forbidden (the parser itself refuses a DTD, in
any encoding: the byte scan below missed UTF-16 without a byte order mark, where
expat expands entities; docs/decisions.md, "Parsing limits (issue 11)"), and
guarded as follows:

- expat as shipped with Python never fetches external entities (an external
  reference is reported as an undefined entity), and from expat 2.4.1 on it
  limits entity amplification (billion laughs); older expat is refused;
- the liste blanche has no DTD, so any ``<!DOCTYPE`` or ``<!ENTITY`` is refused
  before the parser sees it, and so is a UTF-16/32 file where that byte scan
  would be blind;
- the size read is capped (LISTE_BLANCHE_MAX_BYTES).
"""

from __future__ import annotations

import pyexpat
import urllib.request
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from typing import IO, Any

from defusedxml import DefusedXmlException
from defusedxml import ElementTree as DefusedET
from django.conf import settings
from django.db import connection, transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from audit import journal
from trust.models import ListeBlancheImport, ListedDomain, OperatorCertificate

NAMESPACE = "https://listeblanche.mssante.fr/schema"
_ROOT = "ListeBlancheMSSante"
# expat error codes meaning "the input ended early" (no element found, unclosed
# token, partial character): after a complete </ListeDomaines> that is the known
# truncation of published copies; anything else is a broken file.
_END_OF_INPUT_CODES = {3, 5, 6}
_FORBIDDEN_MARKUP = (b"<!DOCTYPE", b"<!ENTITY")
_UNSAFE_BOMS = (b"\xff\xfe", b"\xfe\xff", b"\x00\x00\xfe\xff")


class ListeBlancheError(Exception):
    """The file cannot be taken as the liste blanche; the message says why, in French."""


# --- Reading selectors -------------------------------------------------------------------


def normalise_domain(domain: str) -> str:
    return domain.strip().rstrip(".").lower()


def is_listed(domain: str) -> bool:
    """True when the domain is in the imported liste blanche (exact match, any case)."""
    return ListedDomain.objects.filter(name=normalise_domain(domain)).exists()


def dns_for(domain: str) -> set[str]:
    """Subject DNs of the certificates allowed to send for this domain (empty if unlisted)."""
    return set(
        OperatorCertificate.objects.filter(domain__name=normalise_domain(domain)).values_list(
            "dn", flat=True
        )
    )


# Long names used by ssl.SSLSocket.getpeercert() and common aliases, mapped to the
# short names the liste blanche writes.
_DN_KEYS = {
    "COMMONNAME": "CN",
    "COUNTRYNAME": "C",
    "STATEORPROVINCENAME": "ST",
    "S": "ST",
    "LOCALITYNAME": "L",
    "ORGANIZATIONNAME": "O",
    "ORGANIZATIONALUNITNAME": "OU",
    "EMAILADDRESS": "E",
    "EMAIL": "E",
    "SERIALNUMBER": "SERIALNUMBER",
    "STREETADDRESS": "STREET",
    "ORGANIZATIONIDENTIFIER": "2.5.4.97",
}

DN = frozenset[tuple[str, str]]


def _split_dn(dn: str) -> list[str]:
    parts, current, escaped = [], [], False
    for char in dn:
        if escaped:
            current.append(char)
            escaped = False
        elif char == "\\":
            escaped = True
        elif char in ",;+":
            parts.append("".join(current))
            current = []
        else:
            current.append(char)
    parts.append("".join(current))
    return parts


def parse_dn(dn: str | tuple[Any, ...]) -> DN:
    """A DN as an order-free set of (attribute, value), for comparing two spellings.

    Accepts the liste blanche's string (``CN=…,OU=…,C=FR``), the reversed
    RFC 4514 string that ``cryptography`` prints, and the nested tuples of
    ``ssl.SSLSocket.getpeercert()["subject"]``. Values compare ignoring case and
    repeated spaces, as X.500 directory strings do.
    """
    pairs: list[tuple[str, str]] = []
    if isinstance(dn, tuple):
        pairs = [(str(k), str(v)) for rdn in dn for k, v in rdn]
    else:
        for part in _split_dn(dn):
            key, sep, value = part.partition("=")
            if sep:
                pairs.append((key, value))
    normalised = set()
    for key, value in pairs:
        name = key.strip().upper()
        normalised.add((_DN_KEYS.get(name, name), " ".join(value.split()).casefold()))
    return frozenset(normalised)


def peer_allowed(domain: str, peer_subject: str | tuple[Any, ...]) -> bool:
    """Whether a peer certificate's subject matches a DN listed for this sender domain."""
    wanted = parse_dn(peer_subject)
    return bool(wanted) and any(parse_dn(dn) == wanted for dn in dns_for(domain))


def listed_anywhere(peer_subject: str | tuple[Any, ...]) -> bool:
    """Whether a peer certificate's subject is listed for any domain at all."""
    wanted = parse_dn(peer_subject)
    return bool(wanted) and any(
        parse_dn(dn) == wanted
        for dn in OperatorCertificate.objects.values_list("dn", flat=True).distinct()
    )


def listed_dns(domain: str | None = None) -> frozenset[DN]:
    """The DNs listed for this domain (for any domain when None), parsed (``parse_dn``).

    For a reader that keeps them a while (the SMTP gateway): a certificate subject is
    allowed when ``parse_dn(subject)`` is non-empty and in this set.
    """
    rows = OperatorCertificate.objects.all()
    if domain is not None:
        rows = rows.filter(domain__name=normalise_domain(domain))
    return frozenset(parse_dn(dn) for dn in rows.values_list("dn", flat=True).distinct())


def last_import() -> ListeBlancheImport | None:
    return ListeBlancheImport.objects.order_by("-started_at", "-id").first()


def last_successful_import() -> ListeBlancheImport | None:
    return (
        ListeBlancheImport.objects.exclude(result=ListeBlancheImport.Result.REFUSED)
        .order_by("-started_at", "-id")
        .first()
    )


# --- Parsing ------------------------------------------------------------------------------


@dataclass
class ParsedDomain:
    name: str
    description: str = ""
    responsible_contact: str = ""
    support_contact: str = ""
    updated_at: datetime | None = None
    dns: dict[str, datetime | None] = field(default_factory=dict)


@dataclass
class ParsedList:
    generated_at: datetime | None
    entries: int
    domains: dict[str, ParsedDomain]
    warnings: list[str]
    # Set when the file was cut or broken: the entries read before the break.
    error: str = ""


class _GuardedReader:
    """A binary file wrapper that refuses DTDs and caps the size read."""

    def __init__(self, raw: IO[bytes], limit: int) -> None:
        self._raw = raw
        self._limit = limit
        self._read = 0
        self._tail = b""

    def read(self, size: int = -1) -> bytes:
        chunk = self._raw.read(size)
        if self._read == 0 and chunk.startswith(_UNSAFE_BOMS):
            raise ListeBlancheError(_("Encodage du fichier non pris en charge (UTF-16 ou UTF-32)."))
        self._read += len(chunk)
        if self._read > self._limit:
            raise ListeBlancheError(
                _("Fichier trop volumineux (plus de %(n)s octets).") % {"n": self._limit}
            )
        window = (self._tail + chunk).upper()
        if any(marker in window for marker in _FORBIDDEN_MARKUP):
            raise ListeBlancheError(_("Le fichier contient une DTD ou des entités : refusé."))
        self._tail = window[-16:]
        return chunk


def _local(tag: str) -> tuple[str, str]:
    if tag.startswith("{"):
        namespace, _sep, name = tag[1:].partition("}")
        return namespace, name
    return "", tag


def _parse_date(value: str, warnings: list[str], what: str) -> datetime | None:
    if not value:
        return None
    try:
        parsed = datetime.fromisoformat(value.strip())
    except ValueError:
        warnings.append(_("Date illisible (%(what)s) : %(value)s") % {"what": what, "value": value})
        return None
    if timezone.is_naive(parsed):
        parsed = timezone.make_aware(parsed, timezone.get_fixed_timezone(0))
    return parsed


def parse(stream: IO[bytes]) -> ParsedList:
    """Stream-parse a liste blanche; raises ListeBlancheError only when nothing usable was read."""
    if pyexpat.version_info < (2, 4, 1):
        raise ListeBlancheError(_("Version d'expat trop ancienne pour lire un fichier externe."))
    warnings: list[str] = []
    domains: dict[str, ParsedDomain] = {}
    generated_at: datetime | None = None
    entries = 0
    seen_root = closed_list = False
    current: dict[str, str] = {}
    container: ET.Element | None = None
    error = ""
    reader: Any = _GuardedReader(stream, settings.LISTE_BLANCHE_MAX_BYTES)
    try:
        for event, elem in DefusedET.iterparse(reader, events=("start", "end"), forbid_dtd=True):
            namespace, name = _local(elem.tag)
            if event == "start":
                if not seen_root:
                    seen_root = True
                    if name != _ROOT:
                        raise ListeBlancheError(
                            _("Ce fichier n'est pas une liste blanche MSSanté (racine %(tag)s).")
                            % {"tag": name}
                        )
                    if namespace != NAMESPACE:
                        warnings.append(
                            _("Espace de noms inattendu : « %(ns)s ».") % {"ns": namespace}
                        )
                elif name == "ListeDomaines":
                    container = elem
                elif name == "Domaine":
                    current = {}
                continue
            if name == "DateDeGeneration":
                generated_at = _parse_date(elem.text or "", warnings, "DateDeGeneration")
            elif name == "Domaine":
                entries += 1
                _add_entry(domains, current, warnings, entries)
                # Keep memory flat on a multi-megabyte file.
                if container is not None:
                    container.remove(elem)
            elif name == "ListeDomaines":
                closed_list = True
            else:
                current[name] = (elem.text or "").strip()
    except DefusedXmlException:
        raise ListeBlancheError(_("Le fichier contient une DTD ou des entités : refusé.")) from None
    except ET.ParseError as exc:
        if closed_list and exc.code in _END_OF_INPUT_CODES:
            warnings.append(
                _(
                    "Fichier tronqué après </ListeDomaines> (balise </%(root)s> absente) : "
                    "la liste des domaines est complète, elle est importée."
                )
                % {"root": _ROOT}
            )
        else:
            error = _("Fichier illisible ou tronqué (%(error)s) après %(n)s entrée(s).") % {
                "error": exc,
                "n": entries,
            }
    if not seen_root and not error:
        raise ListeBlancheError(_("Le fichier est vide."))
    if seen_root and not closed_list and not error:
        error = _("Élément ListeDomaines absent.")
    return ParsedList(generated_at, entries, domains, warnings, error)


def _add_entry(
    domains: dict[str, ParsedDomain], values: dict[str, str], warnings: list[str], number: int
) -> None:
    name = normalise_domain(values.get("Nom", ""))
    if not name or " " in name or "." not in name:
        warnings.append(
            _("Entrée n°%(n)s ignorée : nom de domaine absent ou invalide (« %(name)s »).")
            % {"n": number, "name": values.get("Nom", "")}
        )
        return
    updated_at = _parse_date(values.get("DateMAJ", ""), warnings, name)
    domain = domains.get(name)
    if domain is None:
        domain = domains[name] = ParsedDomain(name=name)
    # A domain repeats once per server certificate; keep the freshest descriptive fields.
    if domain.updated_at is None or (updated_at is not None and updated_at >= domain.updated_at):
        domain.description = values.get("Description", "") or domain.description
        domain.responsible_contact = (
            values.get("ResponsableContact", "") or domain.responsible_contact
        )
        domain.support_contact = values.get("SupportContact", "") or domain.support_contact
        domain.updated_at = updated_at or domain.updated_at
    dn = " ".join(values.get("DNCertificatOperateur", "").split())
    if dn:
        domain.dns[dn] = updated_at
    else:
        warnings.append(
            _("Entrée n°%(n)s (%(name)s) sans DN de certificat.") % {"n": number, "name": name}
        )


# --- Importing ----------------------------------------------------------------------------


@contextmanager
def _open(source: str) -> Iterator[IO[bytes]]:
    if source.startswith(("https://", "http://")):
        timeout = settings.LISTE_BLANCHE_TIMEOUT
        # The scheme is checked just above: no file:// or ftp:// through urlopen.
        with urllib.request.urlopen(source, timeout=timeout) as response:  # noqa: S310
            yield response
    else:
        with open(source, "rb") as handle:
            yield handle


def import_liste_blanche(
    source: str, *, force: bool = False, by: Any = None, stream: IO[bytes] | None = None
) -> ListeBlancheImport:
    """Replace the liste blanche from a file or URL, or refuse and keep the current one.

    ``stream``: the file already open (a staff upload in the admin); ``source`` then only
    names it. The command, the scheduled refresh and the admin all come through here, so
    the same guards apply (size, DTD, truncation, the share of domains removed).
    Always returns the saved ListeBlancheImport; its ``result`` says which.
    """
    run = ListeBlancheImport(started_at=timezone.now(), source=source[:1000], forced=force)
    if getattr(by, "pk", None):
        run.by = by
    try:
        if stream is not None:
            parsed = parse(stream)
        else:
            with _open(source) as opened:
                parsed = parse(opened)
    except (ListeBlancheError, OSError) as exc:
        return _refuse(run, str(exc) or exc.__class__.__name__)
    run.generated_at = parsed.generated_at
    run.entries = parsed.entries
    warnings = list(parsed.warnings)
    if not parsed.domains:
        # Even --force cannot empty the list: that would cut the operator off
        # from the whole trust space, and no real file is ever empty.
        return _refuse(
            run, "\n".join([parsed.error, _("Le fichier ne contient aucun domaine.")]).strip()
        )
    if parsed.error:
        if not force:
            return _refuse(run, parsed.error)
        warnings.append(_("Import forcé malgré l'erreur : %(e)s") % {"e": parsed.error})

    with transaction.atomic():
        if connection.vendor == "postgresql":
            with connection.cursor() as cursor:
                # Two imports at once would each delete and re-insert the list.
                cursor.execute("SELECT pg_advisory_xact_lock(727275)")
        current = set(ListedDomain.objects.values_list("name", flat=True))
        removed = current - parsed.domains.keys()
        limit = settings.LISTE_BLANCHE_MAX_REMOVAL
        refusal = ""
        if current and len(removed) * 100 > limit * len(current):
            share = _(
                "%(removed)s domaine(s) sur %(total)s seraient retirés, "
                "au-delà de la limite de %(limit)s %%."
            ) % {"removed": len(removed), "total": len(current), "limit": limit}
            if force:
                warnings.append(_("Import forcé : %(share)s") % {"share": share})
            else:
                refusal = share + " " + _("Relancer avec --force si c'est voulu.")
        if not refusal:
            _replace(run, parsed, current, removed, warnings)
            journal.record(
                "listeblanche.imported",
                actor=by,
                obj=run,
                domains=run.domains,
                added=run.added,
                removed=run.removed,
                forced=force,
            )
    if refusal:
        return _refuse(run, refusal)
    return run


def _replace(
    run: ListeBlancheImport,
    parsed: ParsedList,
    current: set[str],
    removed: set[str],
    warnings: list[str],
) -> None:
    OperatorCertificate.objects.all().delete()
    ListedDomain.objects.all().delete()
    ListedDomain.objects.bulk_create(
        (
            ListedDomain(
                name=d.name,
                description=d.description[:500],
                responsible_contact=d.responsible_contact[:500],
                support_contact=d.support_contact[:500],
                updated_at=d.updated_at,
            )
            for d in parsed.domains.values()
        ),
        batch_size=2000,
    )
    ids = dict(ListedDomain.objects.values_list("name", "pk"))
    certificates = [
        OperatorCertificate(domain_id=ids[d.name], dn=dn[:1000], updated_at=updated_at)
        for d in parsed.domains.values()
        for dn, updated_at in d.dns.items()
    ]
    OperatorCertificate.objects.bulk_create(certificates, batch_size=2000)
    run.result = (
        ListeBlancheImport.Result.IMPORTED_WITH_WARNINGS
        if warnings
        else ListeBlancheImport.Result.IMPORTED
    )
    run.domains = len(ids)
    run.certificates = len(certificates)
    run.added = len(parsed.domains.keys() - current)
    run.removed = len(removed)
    run.messages = "\n".join(warnings)
    run.finished_at = timezone.now()
    run.save()


def refuse(source: str, reason: str, *, by: Any = None) -> ListeBlancheImport:
    """Record an import refused before its file was read (too large to be opened)."""
    run = ListeBlancheImport(started_at=timezone.now(), source=source[:1000])
    if getattr(by, "pk", None):
        run.by = by
    return _refuse(run, reason)


def _refuse(run: ListeBlancheImport, reason: str) -> ListeBlancheImport:
    run.result = ListeBlancheImport.Result.REFUSED
    run.messages = reason
    run.finished_at = timezone.now()
    with transaction.atomic():
        run.save()
        journal.record("listeblanche.refused", actor=run.by, obj=run, reason=reason[:500])
    return run
