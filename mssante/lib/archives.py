"""Looking inside a zip archive with bounded work (attachment policy, IHE XDM).

Nothing is extracted. The central directory is read only when its declared
size is reasonable (``zipfile`` reads it whole and builds an object per entry),
then each member is judged by its name, its declared sizes and, for at most
``MAX_MEMBERS`` members, its first bytes (a few kilobytes decompressed at most).
Pure code: no Django.
"""

from __future__ import annotations

import io
import struct
import zipfile
from dataclasses import dataclass, field
from typing import Final

__all__ = [
    "ARCHIVE_EXTENSIONS",
    "MAX_CENTRAL_DIRECTORY",
    "MAX_MEMBERS",
    "MAX_RATIO",
    "MAX_UNCOMPRESSED",
    "ZipReport",
    "archive_signature",
    "central_directory_size",
    "extension",
    "inspect_zip",
]

MAX_MEMBERS: Final = 1000
# Enough for MAX_MEMBERS entries with long names and extra fields.
MAX_CENTRAL_DIRECTORY: Final = 1024 * 1024
MAX_UNCOMPRESSED: Final = 512 * 1024 * 1024
# Deflate cannot exceed about 1032:1; past it, entries share data (a "zip bomb").
MAX_RATIO: Final = 1000
_HEAD: Final = 8
_CONTENT_TYPES_READ: Final = 64 * 1024

ARCHIVE_EXTENSIONS: Final = frozenset(
    {"zip", "rar", "7z", "gz", "tgz", "tar", "bz2", "tbz", "xz", "txz", "zst", "lz", "lzma"}
    | {"z", "cab", "arj", "lzh", "lha", "ace", "iso", "img", "vhd", "vhdx", "dmg", "wim"}
)
_ARCHIVE_MAGICS: Final = (
    b"PK\x03\x04",  # zip (and jar, and OOXML/ODF documents: see inspect_zip)
    b"Rar!\x1a\x07",
    b"7z\xbc\xaf\x27\x1c",
    b"\x1f\x8b",  # gzip
    b"MSCF",  # cab
    b"\xfd7zXZ\x00",
    b"BZh",
    b"\x28\xb5\x2f\xfd",  # zstd
)
# Office (OOXML) and OpenDocument files are zips that may carry other such
# documents (a chart's workbook inside a report): not archives in archives.
_DOCUMENT_EXTENSIONS: Final = frozenset(
    {"docx", "xlsx", "pptx", "dotx", "xltx", "potx", "ppsx", "odt", "ods", "odp", "odg"}
)
_EOCD: Final = b"PK\x05\x06"
_ZIP64_LOCATOR: Final = b"PK\x06\x07"


def extension(filename: str) -> str:
    """Lower-case extension as Windows sees it ("virus.exe. " is .exe), without the dot."""
    name = filename.strip().rstrip(". ").rsplit("/", 1)[-1].rsplit("\\", 1)[-1]
    _stem, dot, ext = name.rpartition(".")
    return ext.lower() if dot else ""


def archive_signature(data: bytes) -> bool:
    """True when ``data`` starts like an archive."""
    return data.startswith(_ARCHIVE_MAGICS)


@dataclass(slots=True)
class ZipReport:
    """What a zip holds, as far as bounded work tells; ``problem`` set when it is refused."""

    names: list[str] = field(default_factory=list)
    nested: str | None = None
    macros: bool = False
    java: bool = False
    # "members", "directory", "uncompressed" or "ratio": why the archive is not inspected.
    problem: str | None = None
    declared_size: int = 0


def central_directory_size(data: bytes) -> int | None:
    """The central directory's declared size, from the end record (None: no end record)."""
    at = data.rfind(_EOCD, max(0, len(data) - 65_557))
    if at < 0 or at + 22 > len(data):
        return None
    size = struct.unpack_from("<I", data, at + 12)[0]
    if size == 0xFFFFFFFF and data[at - 20 : at - 16] == _ZIP64_LOCATOR:
        record = struct.unpack_from("<Q", data, at - 12)[0]
        if record + 56 <= len(data) and data[record : record + 4] == b"PK\x06\x06":
            size = struct.unpack_from("<Q", data, record + 40)[0]
    return int(size)


def inspect_zip(data: bytes, *, read_members: bool = True) -> ZipReport | None:
    """A report on the zip ``data``, or None when it is not a readable zip."""
    report = ZipReport()
    directory = central_directory_size(data)
    if directory is None:
        return None
    if directory > MAX_CENTRAL_DIRECTORY:
        report.problem = "directory"
        return report
    try:
        archive = zipfile.ZipFile(io.BytesIO(data))
    except (zipfile.BadZipFile, ValueError, OSError, EOFError, NotImplementedError):
        return None
    with archive:
        infos = archive.infolist()
        if len(infos) > MAX_MEMBERS:
            report.problem = "members"
            return report
        report.names = [info.filename for info in infos]
        report.declared_size = sum(info.file_size for info in infos)
        if report.declared_size > MAX_UNCOMPRESSED:
            report.problem = "uncompressed"
            return report
        if any(i.compress_size and i.file_size / i.compress_size > MAX_RATIO for i in infos):
            report.problem = "ratio"
            return report
        upper = {name.upper() for name in report.names}
        report.java = "META-INF/MANIFEST.MF" in upper
        document = "[CONTENT_TYPES].XML" in upper or "MIMETYPE" in upper
        report.macros = any(n.endswith("VBAPROJECT.BIN") for n in upper)
        for info in infos:
            ext = extension(info.filename)
            if info.is_dir():
                continue
            if ext in ARCHIVE_EXTENSIONS:
                report.nested = info.filename
                break
            if not read_members or ext in _DOCUMENT_EXTENSIONS:
                continue
            try:
                with archive.open(info) as member:
                    head = member.read(_HEAD)
                    if document and info.filename == "[Content_Types].xml":
                        head += member.read(_CONTENT_TYPES_READ)
            except (zipfile.BadZipFile, OSError, RuntimeError, ValueError, EOFError):
                continue  # encrypted or damaged: left to the antivirus
            except NotImplementedError:
                continue  # a compression zipfile does not know
            if document and info.filename == "[Content_Types].xml":
                report.macros = report.macros or b"macroEnabled" in head
                continue
            if archive_signature(head) and not (document and head.startswith(b"PK")):
                report.nested = info.filename
                break
    return report
