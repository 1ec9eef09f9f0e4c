"""A deterministic corpus of realistic MSSanté messages (the same bytes on every run).

Mail between professionals of the trust space: reports, biology results, discharge
letters, prescriptions, with French subjects (RFC 2047), a text body in quoted-printable
UTF-8 (some with an HTML alternative) and, for most, attachments: a PDF, a CDA R2 XML
document, now and then both. Lines end with CRLF, as on the wire and as IMAP serves them;
no line is longer than 998 bytes. Shared by the real-client tests (``tests/clients_e2e``)
and the IMAP benchmark (``scripts/bench/imap.py``).
"""

from __future__ import annotations

import base64
import quopri
import random
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from email.header import Header
from email.utils import format_datetime

# The domains of senders: other operators of the trust space (none is hosted here).
PEERS = (
    "ch-lilas.mssante.test",
    "clinique-des-tilleuls.mssante.test",
    "labo-biolyon.mssante.test",
    "cabinet-dupre.mssante.test",
    "chu-exemple.mssante.test",
)
LAST = ("Martin", "Bernard", "Dubois", "Thomas", "Robert", "Richard", "Petit", "Durand",
        "Leroy", "Moreau", "Simon", "Laurent", "Lefèvre", "Michel", "Garcia", "Faure")  # fmt: skip
FIRST = ("Jean", "Marie", "Hélène", "François", "Anaïs", "Jérôme", "Céline", "Benoît",
         "Agnès", "Loïc", "Zoé", "Noël")  # fmt: skip
KINDS = (
    ("Compte rendu d'hospitalisation", "CR-HOSPI"),
    ("Résultats de biologie", "CR-BIO"),
    ("Lettre de liaison à la sortie", "LDL-SES"),
    ("Ordonnance", "ORDO"),
    ("Compte rendu opératoire", "CR-OPE"),
    ("Demande d'avis spécialisé", "AVIS"),
)
PHRASES = (
    "Je vous remercie de m'avoir adressé votre patient(e) pour avis.",
    "L'examen clinique est sans particularité, la tension artérielle à 13/8.",
    "Le bilan biologique retrouve une créatininémie à 92 µmol/l et une CRP normale.",
    "Je propose une réévaluation dans trois mois avec un nouveau bilan.",
    "Traitement de sortie : paracétamol 1 g si douleur, sans dépasser 4 g par jour.",
    "Vous trouverez ci-joint le compte rendu détaillé et les résultats.",
    "Pas d'allergie connue. Antécédents : appendicectomie, HTA traitée.",
    "Bien confraternellement.",
)
BASE_DATE = datetime(2026, 1, 5, 8, 30, tzinfo=UTC)


def sender(i: int) -> tuple[str, str]:
    """The display name and address of message ``i``'s sender."""
    rng = random.Random(f"sender-{i % 97}")
    first, last = rng.choice(FIRST), rng.choice(LAST)
    local = f"{_ascii(first)}.{_ascii(last)}".lower()
    return f"Dr {first} {last}", f"{local}@{PEERS[i % len(PEERS)]}"


def _ascii(text: str) -> str:
    table = str.maketrans("éèêëàâäîïôöûüçÉÈÊÀÂÎÔÛÇ", "eeeeaaaiioouucEEEAAIOUC")
    return text.translate(table).replace(" ", "-")


def _encoded(text: str) -> str:
    """An RFC 2047 header value, folded with CRLF."""
    return Header(text, "utf-8").encode(linesep="\r\n")


def _qp(text: str) -> bytes:
    encoded = quopri.encodestring(text.replace("\r\n", "\n").encode("utf-8"))
    return encoded.replace(b"\r\n", b"\n").replace(b"\n", b"\r\n")


def _b64(data: bytes) -> bytes:
    return base64.encodebytes(data).replace(b"\n", b"\r\n")


def _pdf(rng: random.Random, title: str, size: int) -> bytes:
    """A small PDF-looking document: a header, text, then filler bytes (an image stream)."""
    head = (
        "%PDF-1.4\n%\xe2\xe3\xcf\xd3\n1 0 obj << /Type /Catalog /Pages 2 0 R >> endobj\n"
        f"% {title}\n"
    ).encode("latin-1", "replace")
    body = rng.randbytes(max(0, size - len(head) - 6))
    return head + body + b"\n%%EOF"


def _cda(i: int, kind_code: str, patient: str) -> bytes:
    return (
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        '<ClinicalDocument xmlns="urn:hl7-org:v3">\n'
        f'  <id root="1.2.250.1.213.1.1.9" extension="DOC-{i:06d}"/>\n'
        f'  <code code="{kind_code}" codeSystem="1.2.250.1.213.1.1.4.12"/>\n'
        f"  <title>{kind_code} {patient}</title>\n"
        f'  <effectiveTime value="{(BASE_DATE + timedelta(hours=i)).strftime("%Y%m%d%H%M%S")}"/>\n'
        "  <component><structuredBody><component><section>\n"
        + "".join(
            f"    <text>Ligne {n} : valeur {n * 7 % 13} mmol/l (normale).</text>\n"
            for n in range(40 + i % 60)
        )
        + "  </section></component></structuredBody></component>\n</ClinicalDocument>\n"
    ).encode()


def message(i: int, to: str) -> bytes:
    """Message number ``i`` (0-based) addressed to ``to``: the same bytes for the same i."""
    rng = random.Random(f"mssante-corpus-{i}")
    name, address = sender(i)
    title, code = KINDS[i % len(KINDS)]
    patient = f"{rng.choice(('M.', 'Mme'))} {rng.choice(LAST).upper()} {rng.choice(FIRST)}"
    subject = f"{title} \u2013 {patient} (n° {i})"
    date = BASE_DATE + timedelta(minutes=37 * i)
    boundary = f"=_mssante_{i:06d}_{rng.randrange(16**8):08x}"
    alt = f"=_alt_{i:06d}"
    text = "\r\n\r\n".join(
        ["Cher confrère,"]
        + [" ".join(rng.choice(PHRASES) for _ in range(rng.randint(2, 5))) for _ in range(3)]
        + [f"{name}\r\n{PEERS[i % len(PEERS)]}"]
    )
    headers = [
        f"From: {_encoded(name)} <{address}>",
        f"To: <{to}>",
        f"Subject: {_encoded(subject)}",
        f"Date: {format_datetime(date)}",
        f"Message-ID: <corpus.{i:06d}.{rng.randrange(10**9)}@{PEERS[i % len(PEERS)]}>",
        "MIME-Version: 1.0",
        f"X-Mailer: {rng.choice(('LPS Medecin 4.2', 'Weda 2026.1', 'Thunderbird 128.5'))}",
    ]
    attachments: list[tuple[str, str, bytes]] = []
    if i % 10 < 7:
        attachments.append(
            (f"{code.lower()}-{i:06d}.pdf", "application/pdf", _pdf(rng, subject, rng.randint(4_000, 60_000)))
        )  # fmt: skip
    if i % 5 == 1:
        attachments.append((f"{code}-{i:06d}.xml", "text/xml", _cda(i, code, patient)))
    parts: list[bytes] = []
    text_part = (
        b"Content-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\n"
        + _qp(text)
    )
    if i % 3 == 0:
        html = (
            "<html><body>"
            + "".join(f"<p>{p}</p>" for p in text.split("\r\n\r\n"))
            + "</body></html>"
        )
        html_part = (
            b"Content-Type: text/html; charset=utf-8\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\n"
            + _qp(html)
        )
        body_part = (
            f'Content-Type: multipart/alternative; boundary="{alt}"\r\n\r\n'.encode()
            + f"--{alt}\r\n".encode()
            + text_part
            + f"\r\n--{alt}\r\n".encode()
            + html_part
            + f"\r\n--{alt}--\r\n".encode()
        )
    else:
        body_part = text_part
    if not attachments:
        return ("\r\n".join(headers) + "\r\n").encode() + body_part + b"\r\n"
    parts.append(body_part)
    for filename, content_type, data in attachments:
        parts.append(
            f'Content-Type: {content_type}; name="{filename}"\r\n'
            f'Content-Disposition: attachment; filename="{filename}"\r\n'
            "Content-Transfer-Encoding: base64\r\n\r\n".encode()
            + _b64(data)
        )
    head = "\r\n".join([*headers, f'Content-Type: multipart/mixed; boundary="{boundary}"']).encode()
    out = head + b"\r\n\r\nCe message est au format MIME.\r\n"
    for part in parts:
        out += f"\r\n--{boundary}\r\n".encode() + part
    return out + f"\r\n--{boundary}--\r\n".encode()


def message_id(raw: bytes) -> str:
    """The Message-ID of a corpus message (its key in the comparisons)."""
    for line in raw.split(b"\r\n\r\n", 1)[0].split(b"\r\n"):
        if line.lower().startswith(b"message-id:"):
            return line.split(b":", 1)[1].strip().decode()
    raise ValueError("no Message-ID")


def messages(count: int, to: str) -> Iterator[bytes]:
    for i in range(count):
        yield message(i, to)
