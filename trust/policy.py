"""The trust space's rules on what a message may carry and to whom, checked before anything is stored.

``check_attachments``, ``check_recipients`` (and its parts) and
``check_patient_reply`` raise PolicyError with a
French message naming the file (or the limit) and the rule; the submission
service shows it to the sender as it is.

The recipient rules need to know which domains this operator serves: that is the
mailboxes app's table (HostedDomain), above this one, so the caller passes them in
(``HostedDomains``) rather than this module reading them.

Blocked content is recognised by extension and by its first bytes, so that a
blocked type renamed with a harmless extension is still caught. Sniffing covers
formats with a reliable signature:

- Windows executables and libraries (``MZ``: exe, dll, scr, sys, most com/cpl);
- ELF (Linux) and Mach-O (macOS) executables;
- scripts starting with a shebang (``#!``);
- Java: class files (``CAFEBABE``, shared with Mach-O universal binaries: both
  blocked) and jars (a zip holding ``META-INF/MANIFEST.MF``);
- Windows Installer packages and patches (an OLE file whose root entry has the
  MSI or MSP class id; other OLE files, such as old .doc/.xls, pass);
- Windows shortcuts (.lnk);
- zip archives holding a member with a blocked extension;
- disk images (ISO 9660 / UDF, VHD, VHDX), whatever their name: they carry
  programs past mail filters that do not open them;
- Office documents with macros (OOXML with a VBA project or a macro-enabled
  content type, and legacy OLE documents with a VBA storage);
- archives inside a zip (by name or by their first bytes): an archive is
  inspected one level down, so nothing deeper is ever let through unseen.

Zips are inspected with bounded work (``mssante.lib.archives``): a central
directory over 1 MB, more than 1,000 members, more than 512 MB once
uncompressed or a member compressed more than 1000:1 (a "zip bomb") is refused.
Encrypted members are left to the antivirus.

Disk images and macro-enabled documents are also refused by extension
(``DISK_IMAGE_EXTENSIONS``, ``MACRO_EXTENSIONS``), independently of the
operator's BLOCKED_EXTENSIONS list, each with its own French reason.

Text scripts without a shebang (.js, .vbs, .bat, .ps1…) have no signature: they
are caught by extension only, and by the antivirus.
"""

from __future__ import annotations

import struct
from collections.abc import Collection, Iterable
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.utils.translation import gettext as _

from mssante.lib import archives
from mssante.lib.mime import human_size
from trust import selectors
from trust.models import ListedDomain


class PolicyError(Exception):
    """A message the trust space refuses; ``str(exc)`` is the French text for the sender.

    ``rule`` names the rule broken (a short stable code, kept in the audit journal
    and counted in the indicators): the sender reads the sentence, staff the code.
    """

    def __init__(self, message: str, rule: str = "") -> None:
        super().__init__(message)
        self.rule = rule


_OLE_MAGIC = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"
# Class ids (as stored, little-endian GUID layout) of Windows Installer storages:
# {000C1084-…} package (.msi), {000C1086-…} patch (.msp), {000C1082-…} transform (.mst).
_MSI_CLSIDS = {
    bytes.fromhex("84100c0000000000c000000000000046"),
    bytes.fromhex("86100c0000000000c000000000000046"),
    bytes.fromhex("82100c0000000000c000000000000046"),
}
_MACHO_MAGICS = (b"\xfe\xed\xfa\xce", b"\xfe\xed\xfa\xcf", b"\xce\xfa\xed\xfe", b"\xcf\xfa\xed\xfe")
_LNK_MAGIC = b"L\x00\x00\x00\x01\x14\x02\x00"
DISK_IMAGE_EXTENSIONS = frozenset({"iso", "img", "udf", "vhd", "vhdx", "dmg"})
MACRO_EXTENSIONS = frozenset(
    {"docm", "dotm", "xlsm", "xltm", "xlam", "pptm", "potm", "ppsm", "ppam", "sldm"}
)
# ISO 9660 and UDF volume descriptors start at sector 16 (of 2048 bytes), one per sector.
_ISO_OFFSETS = (0x8001, 0x8801, 0x9001)
_ISO_MARKERS = (b"CD001", b"BEA01", b"NSR02", b"NSR03", b"TEA01")
_VBA_STORAGE = "_VBA_PROJECT".encode("utf-16-le")

# Windows ignores trailing dots and spaces: "virus.exe. " runs as virus.exe.
_extension = archives.extension


def _blocked_extensions() -> set[str]:
    return {ext.lower().lstrip(".") for ext in settings.BLOCKED_EXTENSIONS}


def _msi_class(data: bytes) -> bool:
    """True when an OLE compound file's root entry carries a Windows Installer class id."""
    if len(data) < 512:
        return False
    sector_shift = struct.unpack_from("<H", data, 30)[0]
    first_dir_sector = struct.unpack_from("<I", data, 48)[0]
    if not 7 <= sector_shift <= 16:
        return False
    sector_size = 1 << sector_shift
    root = (first_dir_sector + 1) * sector_size
    if root + 96 > len(data):
        return False
    return data[root + 80 : root + 96] in _MSI_CLSIDS


def _disk_image(data: bytes) -> bool:
    if any(data[at : at + 5] in _ISO_MARKERS for at in _ISO_OFFSETS):
        return True
    # VHDX starts with its signature; a fixed VHD ends with its footer ("conectix").
    return data.startswith((b"vhdxfile", b"conectix")) or data[-512:-504] == b"conectix"


def _zip_kind(data: bytes, blocked: set[str]) -> str | None:
    report = archives.inspect_zip(data)
    if report is None:
        return None  # damaged: left to the antivirus
    if report.problem in ("directory", "members"):
        return _("archive contenant trop de fichiers (plus de %(n)s)") % {"n": archives.MAX_MEMBERS}
    if report.problem is not None:
        return _("archive qui se décompresse en un volume anormal (bombe de décompression)")
    if report.java:
        return _("archive Java (jar)")
    if report.macros:
        return _("document Office avec macros")
    refused = blocked | DISK_IMAGE_EXTENSIONS | MACRO_EXTENSIONS
    inner = next((n for n in report.names if _extension(n) in refused), None)
    if inner is not None:
        return _("archive contenant « %(name)s »") % {"name": inner}
    if report.nested is not None:
        return _("archive contenant une autre archive (« %(name)s »)") % {"name": report.nested}
    return None


def sniff(data: bytes, blocked: Iterable[str] = ()) -> str | None:
    """The kind of blocked content ``data`` starts with, in French, or None."""
    head = data[:8]
    if head.startswith(b"MZ"):
        return _("exécutable Windows")
    if head.startswith(b"\x7fELF"):
        return _("exécutable Linux (ELF)")
    if head.startswith(_MACHO_MAGICS):
        return _("exécutable macOS")
    if head.startswith(b"\xca\xfe\xba\xbe"):
        return _("classe Java ou exécutable macOS")
    if head.startswith(b"#!"):
        return _("script")
    if head.startswith(_LNK_MAGIC):
        return _("raccourci Windows")
    if head.startswith(_OLE_MAGIC):
        if _msi_class(data):
            return _("paquet d'installation Windows")
        if _VBA_STORAGE in data:
            return _("document Office avec macros")
    if head.startswith(b"PK\x03\x04"):
        return _zip_kind(data, set(blocked))
    if _disk_image(data):
        return _("image disque")
    return None


def check_attachments(attachments: list[tuple[str, str, bytes]]) -> None:
    """Refuse the first attachment breaking a rule: size, total size, extension, content.

    Each item is (filename, content_type, data). The declared content type is
    not trusted, so it is not used to allow anything.
    """
    limit = settings.ATTACHMENT_MAX_BYTES
    blocked = _blocked_extensions()
    total = 0
    for filename, _content_type, data in attachments:
        name = filename or _("pièce jointe sans nom")
        if len(data) > limit:
            raise PolicyError(
                _(
                    "La pièce jointe « %(name)s » dépasse la taille maximale autorisée "
                    "(%(size)s pour %(limit)s au plus)."
                )
                % {"name": name, "size": human_size(len(data)), "limit": human_size(limit)},
                rule="attachment_size",
            )
        ext = _extension(filename)
        if ext in DISK_IMAGE_EXTENSIONS:
            raise PolicyError(
                _(
                    "La pièce jointe « %(name)s » est refusée : les images disque (.%(ext)s) "
                    "servent à faire passer des programmes malveillants. Envoyez les fichiers "
                    "eux-mêmes."
                )
                % {"name": name, "ext": ext},
                rule="attachment_disk_image",
            )
        if ext in MACRO_EXTENSIONS:
            raise PolicyError(
                _(
                    "La pièce jointe « %(name)s » est refusée : les documents Office avec "
                    "macros (.%(ext)s) peuvent exécuter du code. Enregistrez-le sans macros "
                    "(.docx, .xlsx, .pptx) avant de l'envoyer."
                )
                % {"name": name, "ext": ext},
                rule="attachment_macro",
            )
        if ext in blocked:
            raise PolicyError(
                _(
                    "La pièce jointe « %(name)s » est refusée : les fichiers .%(ext)s "
                    "(exécutables et scripts) ne sont pas autorisés."
                )
                % {"name": name, "ext": ext},
                rule="attachment_type",
            )
        kind = sniff(data, blocked)
        if kind is not None:
            raise PolicyError(
                _(
                    "La pièce jointe « %(name)s » est refusée : son contenu est un type bloqué "
                    "(%(kind)s), quelle que soit son extension."
                )
                % {"name": name, "kind": kind},
                rule="attachment_content",
            )
        total += len(data)
    if total > settings.MESSAGE_MAX_BYTES:
        raise PolicyError(
            _("Les pièces jointes dépassent ensemble la taille maximale d'un message (%(limit)s).")
            % {"limit": human_size(settings.MESSAGE_MAX_BYTES)},
            rule="message_size",
        )


def check_recipient_count(n: int, exception_active: bool) -> None:
    """Refuse more than MAX_RECIPIENTS recipients, unless staff recorded an exception."""
    limit = settings.MAX_RECIPIENTS
    if n > limit and not exception_active:
        raise PolicyError(
            _(
                "Un message ne peut pas avoir plus de %(limit)s destinataires (ici %(n)s) : "
                "règle de l'espace de confiance MSSanté."
            )
            % {"limit": limit, "n": n},
            rule="recipient_limit",
        )


# --- Recipients ------------------------------------------------------------------------------


@dataclass(frozen=True)
class HostedDomains:
    """The domains this operator serves, as the mailboxes app records them.

    ``active``: the hosted domains that receive mail; ``patient``: the domains of
    patient boxes (active or not: a patient stays a patient).
    """

    active: frozenset[str]
    patient: frozenset[str]


def check_recipient_domains(addresses: Iterable[str], *, hosted: Collection[str]) -> None:
    """Refuse the first address outside the trust space (neither hosted here nor listed).

    ``hosted`` is the active domains this operator serves (``HostedDomains.active``).
    """
    wanted = {
        address: address.strip().lower().rpartition("@")[2].rstrip(".") for address in addresses
    }
    domains = set(wanted.values())
    allowed = (domains & set(hosted)) | set(
        ListedDomain.objects.filter(name__in=domains).values_list("name", flat=True)
    )
    for address, domain in wanted.items():
        if domain not in allowed:
            raise PolicyError(
                _(
                    "Le destinataire « %(address)s » est hors de l'espace de confiance MSSanté : "
                    "son domaine n'est ni hébergé ici ni inscrit sur la liste blanche."
                )
                % {"address": address},
                rule="trust_space",
            )


def check_patient_recipients(addresses: Iterable[str], *, patient_domains: Collection[str]) -> None:
    """A message to a patient has no other patient among its recipients (to and cc)."""
    wanted = list(dict.fromkeys(address.strip().lower() for address in addresses))
    patients = [a for a in wanted if a.rpartition("@")[2] in patient_domains]
    if len(patients) > 1:
        raise PolicyError(
            _(
                "Un message adressé à un patient ne peut pas avoir d'autre patient parmi ses "
                "destinataires (ici : %(addresses)s). Écrivez à chaque patient séparément."
            )
            % {"addresses": ", ".join(patients)},
            rule="one_patient",
        )


def check_patient_reply(*, conversation_opened_by_professional: bool, closed: bool) -> None:
    """A patient's box only replies inside a conversation a professional opened and did not close."""
    if not conversation_opened_by_professional:
        raise PolicyError(
            _(
                "Un patient ne peut pas écrire le premier à un professionnel : il peut "
                "seulement répondre à un message reçu d'un professionnel."
            ),
            rule="patient_first",
        )
    if closed:
        raise PolicyError(
            _(
                "Le professionnel a clos cette conversation (X-MSS-MES : FIN) : il n'est plus "
                "possible d'y répondre."
            ),
            rule="patient_closed",
        )


def check_recipients(sender: Any, addresses: list[str], *, domains: HostedDomains) -> None:
    """Every recipient rule that needs only the sending mailbox and the addresses (to + cc).

    ``sender`` is the sending mailbox (a mailboxes.Mailbox); ``domains`` the domains
    this operator serves. The patient reply rule needs the conversation: the patient
    rules of the submission call check_patient_reply themselves.
    """
    check_recipient_count(
        len(addresses),
        exception_active=len(addresses) > settings.MAX_RECIPIENTS
        and selectors.recipient_limit_exception_active(sender),
    )
    check_recipient_domains(addresses, hosted=domains.active)
    check_patient_recipients(addresses, patient_domains=domains.patient)
