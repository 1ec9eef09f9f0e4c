import base64
from datetime import UTC, datetime, timedelta, timezone
from email import message_from_bytes, policy

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mssante.lib.mime import (
    Attachment,
    OutgoingMessage,
    PartNotFoundError,
    build_message,
    get_part,
    human_size,
    parse_message,
    thread_key,
)

DOMAIN = "operateur.mssante.fr"
PDF = b"%PDF-1.4\n" + bytes(range(256)) * 4
NOW = datetime(2025, 3, 13, 14, 54, 10, tzinfo=UTC)
SUBJECT = "Compte rendu échographie \u2013 Mme Çağlar"


def outgoing(**overrides) -> OutgoingMessage:
    values = {
        "from_addr": "elodie.muller@medecin.mssante.fr",
        "from_name": "Dr Élodie Müller",
        "to": ["Jérôme Ça <jerome.ca@ch-xyz.mssante.fr>", "cardiologie@ch-xyz.mssante.fr"],
        "cc": ["secretariat@ch-xyz.mssante.fr"],
        "subject": SUBJECT,
        "text": "Bonjour,\n\nVoici le compte rendu de l'échographie.\n\nBien à vous\n",
        "html": None,
        "attachments": [],
        "in_reply_to": None,
        "references": [],
        "extra_headers": {},
        "sender": None,
    }
    values.update(overrides)
    return OutgoingMessage(**values)


def full_message() -> tuple[str, bytes]:
    return build_message(
        outgoing(
            html="<p>Bonjour,</p><p>Voici le compte rendu de l'<b>échographie</b>.</p>",
            attachments=[
                Attachment("Compte rendu échographie.pdf", "application/pdf", PDF),
                Attachment("résultats biologie.txt", "text/plain", "Hémoglobine 13,5\r\n".encode()),
                Attachment("cliché.png", "image/png", b"\x89PNG\r\n\x1a\n" + b"\x00" * 100),
            ],
            in_reply_to="<question@ch-xyz.mssante.fr>",
            references=["<racine@ch-xyz.mssante.fr>", "question@ch-xyz.mssante.fr"],
            extra_headers={
                "X-MSS-NIL": "Webmail 1.0",
                "X-MSS-INS": "O",
                "X-MSS-CODECDA": "11528-7",
            },
        ),
        domain=DOMAIN,
        now=NOW,
    )


# --------------------------------------------------------------------------- building


def test_it_builds_a_plain_text_message_alone():
    message_id, raw = build_message(outgoing(), domain=DOMAIN, now=NOW)
    parsed = message_from_bytes(raw, policy=policy.default)
    assert parsed.get_content_type() == "text/plain"
    assert parsed["MIME-Version"] == "1.0"
    assert parsed["Message-ID"] == message_id
    assert message_id.startswith("<") and message_id.endswith(f"@{DOMAIN}>")
    assert parsed["Date"].datetime == NOW


def test_it_writes_seven_bit_crlf_output_with_encoded_words():
    _, raw = full_message()
    raw.decode("ascii")
    assert b"\r\n" in raw and b"\n" not in raw.replace(b"\r\n", b"")
    assert "échographie".encode() not in raw
    assert b"=?utf-8?" in raw
    assert b"filename*=utf-8''Compte%20rendu%20%C3%A9chographie.pdf" in raw


def test_it_nests_alternative_inside_mixed_when_there_are_attachments():
    _, raw = full_message()
    parsed = message_from_bytes(raw, policy=policy.default)
    assert parsed.get_content_type() == "multipart/mixed"
    first = parsed.get_payload()[0]
    assert first.get_content_type() == "multipart/alternative"
    assert [p.get_content_type() for p in first.get_payload()] == ["text/plain", "text/html"]
    assert parsed.as_bytes().count(b"MIME-Version") == 1


def test_it_builds_alternative_without_attachments():
    _, raw = build_message(outgoing(html="<p>Bonjour</p>"), domain=DOMAIN, now=NOW)
    assert message_from_bytes(raw, policy=policy.default).get_content_type() == (
        "multipart/alternative"
    )


def test_a_built_message_round_trips_through_the_parser():
    message_id, raw = full_message()
    parsed = parse_message(raw)

    assert parsed.defects == []
    assert parsed.message_id == message_id
    assert parsed.from_ == ("Dr Élodie Müller", "elodie.muller@medecin.mssante.fr")
    assert parsed.to == [
        ("Jérôme Ça", "jerome.ca@ch-xyz.mssante.fr"),
        ("", "cardiologie@ch-xyz.mssante.fr"),
    ]
    assert parsed.cc == [("", "secretariat@ch-xyz.mssante.fr")]
    assert parsed.subject == SUBJECT
    assert parsed.date == NOW
    assert parsed.text == "Bonjour,\n\nVoici le compte rendu de l'échographie.\n\nBien à vous\n"
    assert parsed.html is not None and "<b>échographie</b>" in parsed.html
    assert parsed.headers == {
        "X-MSS-NIL": "Webmail 1.0",
        "X-MSS-INS": "O",
        "X-MSS-CODECDA": "11528-7",
    }
    assert [(a.filename, a.content_type) for a in parsed.attachments] == [
        ("Compte rendu échographie.pdf", "application/pdf"),
        ("résultats biologie.txt", "text/plain"),
        ("cliché.png", "image/png"),
    ]
    assert parsed.attachments[0].size == len(PDF)


def test_each_listed_attachment_can_be_extracted_byte_for_byte():
    _, raw = full_message()
    parsed = parse_message(raw)
    extracted = [get_part(raw, part.index) for part in parsed.attachments]
    assert extracted[0] == Attachment("Compte rendu échographie.pdf", "application/pdf", PDF)
    assert extracted[1].data == "Hémoglobine 13,5\r\n".encode()
    assert extracted[2].data.startswith(b"\x89PNG")
    assert [len(a.data) for a in extracted] == [p.size for p in parsed.attachments]


def test_get_part_refuses_an_index_that_is_not_an_attachment():
    _, raw = full_message()
    for index in (0, 1, 2, 99, -1):
        with pytest.raises(PartNotFoundError):
            get_part(raw, index)


def test_it_writes_reply_headers_and_threads_the_reply():
    _, raw = full_message()
    parsed = parse_message(raw)
    assert parsed.in_reply_to == "<question@ch-xyz.mssante.fr>"
    assert parsed.references == ["<racine@ch-xyz.mssante.fr>", "<question@ch-xyz.mssante.fr>"]
    assert parsed.thread_key == "racine@ch-xyz.mssante.fr"


def test_it_writes_a_sender_header_only_when_it_differs_from_from():
    _, raw = build_message(
        outgoing(from_addr="cardiologie@ch-xyz.mssante.fr", sender="jean.dupont@ch-xyz.mssante.fr"),
        domain=DOMAIN,
    )
    assert parse_message(raw).sender == ("", "jean.dupont@ch-xyz.mssante.fr")
    _, raw = build_message(outgoing(sender="elodie.muller@medecin.mssante.fr"), domain=DOMAIN)
    assert b"Sender:" not in raw


def test_a_display_name_of_long_words_never_ends_the_header_early():
    # Python's folder writes an empty line between two words longer than a line: what
    # followed (To, Subject…) would have become the body.
    name = "a" * 120 + " " + "b" * 120
    _, raw = build_message(outgoing(from_name=name), domain=DOMAIN)
    head = raw.split(b"\r\n\r\n", 1)[0]
    assert b"\r\nTo: " in head and b"\r\nSubject: " in head
    assert "".join(parse_message(raw).from_[0].split()) == "a" * 120 + "b" * 120


def test_it_converts_dates_to_rfc5322_with_their_offset():
    paris = timezone(timedelta(hours=1))
    _, raw = build_message(outgoing(), domain=DOMAIN, now=datetime(2025, 1, 2, 9, 30, tzinfo=paris))
    assert b"Thu, 02 Jan 2025 09:30:00 +0100" in raw
    assert parse_message(raw).date == datetime(2025, 1, 2, 8, 30, tzinfo=UTC)


@pytest.mark.parametrize(
    "overrides",
    [
        {"subject": "Bonjour\r\nBcc: espion@ailleurs.fr"},
        {"to": ["victime@x.fr\r\nBcc: espion@ailleurs.fr"]},
        {"from_name": "Dr X\nBcc: espion@ailleurs.fr"},
        {"to": ["pas une adresse"]},
        {"extra_headers": {"X-MSS-INS": "O\r\nBcc: espion@ailleurs.fr"}},
        {"extra_headers": {"Bad Name": "x"}},
        {"extra_headers": {"From": "autre@x.fr"}},
        {"extra_headers": {"content-type": "text/html"}},
    ],
)
def test_it_refuses_header_injection_and_reserved_headers(overrides):
    with pytest.raises(ValueError):
        build_message(outgoing(**overrides), domain=DOMAIN)


def test_it_sends_message_attachments_as_opaque_files():
    inner = b"From: a@x.fr\r\nSubject: transfert\r\n\r\ncorps\r\n"
    _, raw = build_message(
        outgoing(attachments=[Attachment("transfert.eml", "message/rfc822", inner)]),
        domain=DOMAIN,
    )
    parsed = parse_message(raw)
    assert parsed.attachments[0].content_type == "application/octet-stream"
    assert get_part(raw, parsed.attachments[0].index).data == inner


def test_it_makes_a_unique_message_id_per_message():
    first, _ = build_message(outgoing(), domain=DOMAIN)
    second, _ = build_message(outgoing(), domain=DOMAIN)
    assert first != second


# --------------------------------------------------------------------------- parsing foreign mail

FOREIGN = (
    b"From: =?iso-8859-1?q?J=E9r=F4me_B=E9ranger?= <jerome@labo.mssante.fr>\r\n"
    b'To: "Caf\xe9 Cr\xe8me" <cafe@ch.mssante.fr>, undisclosed-recipients:;\r\n'
    b"Subject: R\xe9sultats =?x-unknown?q?abc?=\r\n"
    b"Date: Tue, 1 Apr 2025 10:00:00 -0000\r\n"
    b"Message-ID: sans-chevrons@labo\r\n"
    b"In-Reply-To: <Q1@CH.mssante.fr> (commentaire)\r\n"
    b"References: <Root@CH.mssante.fr>\r\n <q1@ch.mssante.fr> n'importe quoi\r\n"
    b"X-Mss-Ins: N\r\n"
    b"Disposition-Notification-To: Dr X <x@labo.mssante.fr>\r\n"
    b'Content-Type: multipart/mixed; boundary="b"\r\n'
    b"\r\n"
    b"--b\r\nContent-Type: text/plain; charset=x-inconnu\r\n\r\nh\xe9matocrite normal\r\n"
    b"--b\r\nContent-Type: application/pdf\r\n"
    b'Content-Disposition: attachment; filename="=?utf-8?B?w6ljaG8ucGRm?="\r\n'
    b"Content-Transfer-Encoding: base64\r\n\r\nJVBE!!!Ri0x\r\n"
    b"--b\r\nContent-Type: message/rfc822\r\n\r\n"
    b"From: inner@x.fr\r\nSubject: inner\r\n\r\ncorps interne\r\n"
    b"--b\r\nContent-Type: image/png\r\nContent-ID: <img1@labo>\r\n"
    b"Content-Transfer-Encoding: base64\r\n\r\niVBORw0KGgo=\r\n"
    b'--b\r\nContent-Type: application/octet-stream; name="../../etc/passwd"\r\n\r\nroot\r\n'
)


def test_it_reads_a_sloppy_foreign_message_and_lists_the_defects():
    parsed = parse_message(FOREIGN)

    assert parsed.from_ == ("Jérôme Béranger", "jerome@labo.mssante.fr")
    assert parsed.to == [("Café Crème", "cafe@ch.mssante.fr")]
    assert parsed.subject == "Résultats abc"
    assert parsed.date == datetime(2025, 4, 1, 10, 0, tzinfo=UTC)
    assert parsed.message_id == "<sans-chevrons@labo>"
    assert parsed.in_reply_to == "<Q1@CH.mssante.fr>"
    assert parsed.references == ["<Root@CH.mssante.fr>", "<q1@ch.mssante.fr>"]
    assert parsed.thread_key == "root@ch.mssante.fr"
    assert parsed.headers == {"X-MSS-INS": "N"}
    assert parsed.disposition_notification_to == "x@labo.mssante.fr"
    assert parsed.text == "hématocrite normal"
    assert any("x-inconnu" in d for d in parsed.defects)
    assert any("CloseBoundaryNotFound" in d for d in parsed.defects)
    assert any("Base64" in d for d in parsed.defects)


def test_it_lists_foreign_attachments_with_safe_names():
    parsed = parse_message(FOREIGN)
    names = [(a.filename, a.content_type, a.content_id) for a in parsed.attachments]
    assert names == [
        ("écho.pdf", "application/pdf", ""),
        ("piece-jointe-3.eml", "message/rfc822", ""),
        ("piece-jointe-4.png", "image/png", "img1@labo"),
        ("_.._etc_passwd", "application/octet-stream", ""),
    ]
    assert get_part(FOREIGN, 3).data == b"From: inner@x.fr\r\nSubject: inner\r\n\r\ncorps interne"
    assert get_part(FOREIGN, 2).data == b"%PDF-1"


def test_it_reads_a_multipart_without_boundary_as_text():
    parsed = parse_message(b"Content-Type: multipart/mixed\r\nSubject: x\r\n\r\ncorps seul\r\n")
    assert parsed.text == "corps seul\n"
    assert parsed.defects


@pytest.mark.parametrize(
    "raw",
    [
        b"",
        b"\x00\xff\xfe",
        b"Subject: =?utf-8?b?invalid base64?=\r\n\r\n",
        b"From: <<<@@@>>>\r\nTo: ,,,;;;\r\nDate: 99 Foo 99999 99:99:99 +9999\r\n\r\n",
        b"Content-Type: text/plain; charset=utf-16\r\n\r\n\xd8\x00",
        b"Content-Type: text/plain; charset=idna\r\n\r\n\xff\xff",
        b"Content-Type: text/plain; charset=\xff\xfe\r\n\r\nx",
        b"Content-Transfer-Encoding: base64\r\n\r\n====",
        b"Content-Type: message/rfc822\r\nContent-Transfer-Encoding: base64\r\n\r\n!!!",
        b'Content-Type: multipart/mixed; boundary="a"\r\n\r\n--a\r\n--a\r\n--a--',
        b"Content-Type: multipart/mixed; boundary=a\r\n\r\n"
        + b"--a\r\nContent-Type: multipart/mixed; boundary=a\r\n\r\n" * 300,
        b"Message-ID: " + b"<" + b"x" * 5000 + b"@y>\r\n\r\n",
    ],
)
def test_it_never_raises_on_broken_mime(raw):
    parsed = parse_message(raw)
    assert_storable(parsed)


def assert_storable(parsed) -> None:
    strings = [parsed.message_id, parsed.subject, *parsed.references, *parsed.defects]
    strings += [s for pair in [parsed.from_, *parsed.to, *parsed.cc] for s in pair]
    strings += [parsed.text or "", parsed.html or "", *parsed.headers.values()]
    strings += [a.filename for a in parsed.attachments]
    for value in strings:
        value.encode("utf-8")
        assert "\x00" not in value
    assert parsed.date is None or parsed.date.tzinfo is not None


def mutate(raw: bytes, data) -> bytes:
    operation = data.draw(st.sampled_from(["truncate", "flip", "insert", "delete", "splice"]))
    position = data.draw(st.integers(0, len(raw)))
    if operation == "truncate":
        return raw[:position]
    if operation == "flip":
        if position == len(raw):
            return raw
        return (
            raw[:position]
            + bytes([raw[position] ^ data.draw(st.integers(1, 255))])
            + raw[position + 1 :]
        )
    if operation == "insert":
        return raw[:position] + data.draw(st.binary(max_size=64)) + raw[position:]
    if operation == "delete":
        return raw[:position] + raw[position + data.draw(st.integers(1, 200)) :]
    chunk = data.draw(
        st.sampled_from([b"\r\n--", b"=?utf-8?q?", b"\r\n\r\n", b"; charset=zlib", b"\xff\xfe"])
    )
    return raw[:position] + chunk + raw[position:]


def check_never_raises(raw: bytes) -> None:
    parsed = parse_message(raw)
    assert_storable(parsed)
    for part in parsed.attachments:
        assert len(get_part(raw, part.index).data) == part.size


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.binary(max_size=2000))
def test_it_never_raises_on_random_bytes(raw):
    check_never_raises(raw)


_SEEDS = [full_message()[1], FOREIGN]


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.sampled_from(_SEEDS), st.data())
def test_it_never_raises_on_mutated_real_messages(seed, data):
    raw = seed
    for _ in range(data.draw(st.integers(1, 4))):
        raw = mutate(raw, data)
    check_never_raises(raw)


@settings(max_examples=200, deadline=None)
@given(
    st.lists(
        st.sampled_from(
            [
                b"From: ",
                b"To: ",
                b"Subject: ",
                b"Content-Type: ",
                b"Content-Transfer-Encoding: ",
                b"Content-Disposition: ",
                b"multipart/mixed; boundary=x",
                b"text/plain; charset=",
                b"message/rfc822",
                b"base64",
                b"quoted-printable",
                b"attachment; filename*=utf-8''%C3",
                b"=?iso-8859-1?q?caf=E9?=",
                b"<a@b>",
                b"\r\n",
                b"\r\n\r\n",
                b"--x\r\n",
                b"--x--\r\n",
                b"\xe9\xff",
                b"QUJD",
            ]
        ),
        max_size=60,
    )
)
def test_it_never_raises_on_mime_shaped_garbage(chunks):
    check_never_raises(b"".join(chunks))


# --------------------------------------------------------------------------- threading and sizes


@pytest.mark.parametrize(
    ("message_id", "in_reply_to", "references", "expected"),
    [
        ("<Own@X>", None, [], "own@x"),
        ("<own@x>", "<Parent@X>", [], "parent@x"),
        ("<own@x>", "<parent@x>", ["<Root@X>", "<parent@x>"], "root@x"),
        ("own@x", " <parent@x> ", None, "parent@x"),
        ("<own@x>", None, ["", "  "], "own@x"),
    ],
)
def test_thread_key_is_the_normalised_root_message_id(
    message_id, in_reply_to, references, expected
):
    assert thread_key(message_id, in_reply_to, references) == expected


@pytest.mark.parametrize(
    ("size", "text"),
    [
        (0, "0 o"),
        (999, "999 o"),
        (1000, "1 ko"),
        (12_345, "12,3 ko"),
        (123_456, "123 ko"),
        (999_960, "1 Mo"),
        (1_234_567, "1,2 Mo"),
        (20_000_000, "20 Mo"),
        (3_400_000_000, "3,4 Go"),
    ],
)
def test_human_size_writes_french_units(size, text):
    assert human_size(size) == text


def test_human_size_refuses_a_negative_size():
    with pytest.raises(ValueError):
        human_size(-1)


def test_base64_of_the_fixture_is_what_the_parser_decodes():
    # Guards the FOREIGN fixture: its filename is RFC 2047 inside a quoted parameter.
    assert base64.b64decode("w6ljaG8ucGRm").decode() == "écho.pdf"
