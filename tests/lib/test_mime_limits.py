"""Parsing is bounded: every door refuses what is past mime.LIMITS, and reading any message
costs bounded time and memory (docs/decisions.md, "Parsing limits (issue 11)").

The costly cases run in a child process that measures its own time and peak memory
under an address-space cap, so a regression fails the test instead of the machine.
"""

from __future__ import annotations

import email.utils
import json
import subprocess
import sys
import textwrap
from email import message_from_bytes, policy
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mssante.lib.mime import (
    LIMITS,
    Attachment,
    MimeLimitError,
    OutgoingMessage,
    build_message,
    check_limits,
    get_part,
    parse_message,
)
from mssante.lib.mime.limits import _bounded_parse

L = LIMITS


def headers(*lines: bytes, body: bytes = b"Bonjour\r\n") -> bytes:
    return (
        b"".join(line + b"\r\n" for line in (b"From: a@expediteur.test", *lines)) + b"\r\n" + body
    )


def encoded_to(size: int) -> bytes:
    """A To: of about ``size`` bytes of RFC 2047 display names, folded like real mail."""
    items = []
    total = 0
    i = 0
    while total < size:
        item = b"=?utf-8?q?Dr_J=C3=A9r=C3=B4me_%d?= <j%d@ch-exemple.test>" % (i, i)
        items.append(item)
        total += len(item) + 4
        i += 1
    return b"To: " + b",\r\n ".join(items)


def nested(depth: int, body: bytes) -> bytes:
    raw = b"From: a@expediteur.test\r\n"
    for i in range(depth - 1):
        raw += b"Content-Type: multipart/mixed; boundary=b%d\r\n\r\n--b%d\r\n" % (i, i)
    return raw + b"Content-Type: text/plain\r\n\r\n" + body


# --------------------------------------------------------------------------- each limit


@pytest.mark.parametrize(
    ("raw", "rule", "words"),
    [
        pytest.param(headers(encoded_to(150_000)), "header_size", "« To »", id="header-size"),
        pytest.param(
            headers(*(b"X-Trace-%d: x" % i for i in range(L.header_fields + 1))),
            "header_fields",
            "trop d'en-têtes",
            id="header-count",
        ),
        pytest.param(
            headers(*(b"X-Trace-%d: " % i + b"x" * 60_000 for i in range(5))),
            "header_block",
            "en-têtes du message",
            id="header-block",
        ),
        pytest.param(nested(L.depth + 1, b"x\r\n"), "mime_depth", "trop profonde", id="depth"),
        pytest.param(
            headers(
                b"Content-Type: multipart/mixed; boundary=b",
                body=b"--b\r\n\r\nx\r\n" * (L.parts + 1),
            ),
            "mime_parts",
            "trop de parties",
            id="parts",
        ),
        pytest.param(headers(body=b"\r\n" * (L.lines + 1)), "lines", "trop de lignes", id="lines"),
    ],
)
def test_check_limits_refuses_each_limit_in_french(raw: bytes, rule: str, words: str) -> None:
    with pytest.raises(MimeLimitError) as refused:
        check_limits(raw)
    assert refused.value.rule == rule
    assert refused.value.smtp_code == 552
    assert words in str(refused.value)
    # The reading side never parses it further, and says why.
    parsed = parse_message(raw)
    assert parsed.too_complex is not None and parsed.too_complex.rule == rule
    assert parsed.text is None and parsed.attachments == []


def test_a_message_just_within_every_limit_is_accepted_and_read() -> None:
    raw = headers(
        encoded_to(L.header_bytes - 2_000),
        b"Subject: =?utf-8?q?Compte_rendu?=",
        b"Content-Type: multipart/mixed; boundary=b",
        body=b"--b\r\nContent-Type: text/plain\r\n\r\nBonjour\r\n"
        + b"--b\r\nContent-Type: application/pdf; name=cr.pdf\r\n\r\n%PDF\r\n" * 50
        + b"--b--\r\n",
    )
    check_limits(raw)
    parsed = parse_message(raw)
    assert parsed.too_complex is None
    # Past 8 kB the linear address splitter takes over; a thousand addresses are kept.
    assert len(parsed.to) == 1000
    assert "To: header too long to be parsed in full" in parsed.defects
    assert parsed.to[0] == ("Dr Jérôme 0", "j0@ch-exemple.test")
    assert parsed.subject == "Compte rendu"
    assert parsed.text == "Bonjour"
    assert len(parsed.attachments) == 50
    assert get_part(raw, parsed.attachments[-1].index).data.startswith(b"%PDF")


def test_a_built_message_stays_within_the_limits() -> None:
    _id, raw = build_message(
        OutgoingMessage(
            from_addr="a@medecin.mssante.fr",
            from_name="Dr A",
            to=[f"d{i}@ch.mssante.fr" for i in range(40)],
            subject="é" * 998,
            text="Ligne\n" * 50_000,
            html="<p>x</p>" * 10_000,
            attachments=[Attachment("cr.pdf", "application/pdf", b"%PDF" * 100_000)],
        ),
        domain="medecin.mssante.fr",
    )
    check_limits(raw)


def test_a_hostile_mime_parameter_is_read_once_and_in_linear_time() -> None:
    # A quoted value full of ";" made the standard library's parameter parser quadratic,
    # once per access: seconds per part.
    hostile = b'Content-Type: text/plain; name="a.txt"; charset="' + b";" * 90_000 + b'"'
    raw = headers(
        b"Content-Type: multipart/mixed; boundary=b",
        body=(b"--b\r\n" + hostile + b"\r\nContent-Disposition: attachment\r\n\r\nx\r\n") * 3,
    )
    parsed = parse_message(raw)
    assert [a.filename for a in parsed.attachments] == ["a.txt"] * 3


def test_mime_parameters_read_the_same_as_the_standard_library() -> None:
    cases = [
        b'text/plain; charset="utf-8"; format=flowed',
        b"application/pdf; name*=utf-8''r%C3%A9sultat%3B%20biologie.pdf",
        b'application/pdf; name*0="compte "; name*1="rendu.pdf"',
        b'multipart/mixed; boundary="==_(x)+y.z?_=="',
        b"text/plain; charset=iso-8859-1 (commentaire)",
        b'image/png; name="a\\"b.png"',
    ]
    for value in cases:
        raw = b"Content-Type: " + value + b"\r\n\r\nx"
        ours = _bounded_parse(raw, LIMITS)
        stdlib = message_from_bytes(raw, policy=policy.compat32)
        assert ours.get_content_type() == stdlib.get_content_type(), value
        for param in ("charset", "name", "boundary", "format"):
            assert ours.get_param(param) == stdlib.get_param(param) or (
                email.utils.collapse_rfc2231_value(ours.get_param(param))
                == email.utils.collapse_rfc2231_value(stdlib.get_param(param))
            ), (value, param)


# --------------------------------------------------------------------------- time and memory

_CHILD = textwrap.dedent(
    """
    import json, resource, sys, time
    resource.setrlimit(resource.RLIMIT_AS, (2 * 1024**3, 2 * 1024**3))
    from mssante.lib import mime
    from tests.lib import test_mime_limits as cases
    raw = getattr(cases, "case_" + sys.argv[1])()

    def status(key):
        with open("/proc/self/status") as f:
            line = next(l for l in f if l.startswith(key + ":"))
        return int(line.split()[1]) * 1024

    before = status("VmRSS")
    with open("/proc/self/clear_refs", "w") as f:
        f.write("5")  # the peak (VmHWM) starts again from here
    start = time.perf_counter()
    try:
        parsed = mime.parse_message(raw)
        for part in parsed.attachments[-3:]:
            mime.get_part(raw, part.index)
        outcome = parsed.too_complex.rule if parsed.too_complex else "parsed"
    except MemoryError:
        outcome = "MemoryError"
    seconds = time.perf_counter() - start
    peak = status("VmHWM")
    print(json.dumps({"outcome": outcome, "seconds": seconds, "mb": max(0, peak - before) / 2**20}))
    """
)


def case_to_550k() -> bytes:
    return headers(encoded_to(550_000))


def case_to_99k() -> bytes:
    return headers(encoded_to(L.header_bytes - 2_000), encoded_to(50_000).replace(b"To", b"Cc"))


def case_deep_and_long() -> bytes:
    lines = L.lines - L.depth * 4
    return nested(L.depth, b"--b1x\r\n" * (lines // 2) + b"\r\n" * (lines // 2))


def case_deeper_than_allowed() -> bytes:
    return nested(10_000, b"x\r\n")


def case_parts_with_hostile_parameters() -> bytes:
    per_part = L.header_total_bytes // L.parts - 120
    value = b'text/plain; name="' + b";" * per_part + b'"'
    part = b"--b\r\nContent-Type: " + value + b"\r\nContent-Disposition: attachment\r\n\r\nx\r\n"
    return headers(b"Content-Type: multipart/mixed; boundary=b", body=part * (L.parts - 2))


def case_many_parts() -> bytes:
    return headers(b"Content-Type: multipart/mixed; boundary=b", body=b"--b\r\n\r\n" * 200_000)


def case_many_encoded_headers() -> bytes:
    value = b" ".join([b"=?utf-8?q?caf=C3=A9?="] * 10)
    return headers(*(b"X-MSS-H%d: " % i + value for i in range(L.header_fields - 2)))


def case_biggest_attachment() -> bytes:
    return headers(
        b"Content-Type: multipart/mixed; boundary=b",
        body=b"--b\r\nContent-Type: application/pdf\r\nContent-Transfer-Encoding: base64\r\n"
        b"Content-Disposition: attachment; filename=irm.pdf\r\n\r\n"
        + (b"JVBERi0xLjQK" * 6 + b"\r\n") * (20_000_000 // 74)
        + b"--b--\r\n",
    )


@pytest.mark.parametrize(
    ("case", "outcome", "seconds", "mb"),
    [
        # ~550 kB To: took 10-40 s and gigabytes (issue 11); refused at once now.
        ("to_550k", "header_size", 2, 50),
        ("to_99k", "parsed", 5, 150),
        ("deep_and_long", "parsed", 8, 300),
        ("deeper_than_allowed", "mime_depth", 2, 50),
        ("parts_with_hostile_parameters", "parsed", 8, 150),
        ("many_parts", "mime_parts", 2, 50),
        ("many_encoded_headers", "parsed", 5, 100),
        ("biggest_attachment", "parsed", 8, 400),
    ],
)
def test_parsing_any_message_is_bounded_in_time_and_memory(
    case: str, outcome: str, seconds: float, mb: float
) -> None:
    # Generous bounds for a loaded 2-core machine: each is several times what the
    # bounded parser takes, and a fraction of what the unbounded one did.
    result = subprocess.run(
        [sys.executable, "-c", _CHILD, case],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    measured: dict[str, Any] = json.loads(result.stdout)
    assert measured["outcome"] == outcome
    assert measured["seconds"] < seconds, measured
    assert measured["mb"] < mb, measured


# --------------------------------------------------------------------------- hostile input

_names = st.sampled_from(
    [
        *(b"To", b"Cc", b"From", b"Subject", b"Date", b"Content-Type", b"Content-Disposition"),
        *(b"Content-Transfer-Encoding", b"Message-ID", b"References", b"X-MSS-MES", b"Reply-To"),
    ]
)
_atoms = st.sampled_from(
    [
        b"=?utf-8?q?caf=C3=A9?=",
        b"=?utf-8?b?w6k=?=",
        b"=?x-unknown?q?a?=",
        b'"',
        b"\\",
        b";",
        b",",
        b"<",
        b">",
        b"@",
        b"(",
        b")",
        b"multipart/mixed",
        b"boundary=b",
        b'boundary="b"',
        b"name*0*=utf-8''%E9",
        b"filename*1=x",
        b"base64",
        b"\xe9\xff",
        b"\x00",
        b"\r\n ",
        b" ",
    ]
)
_value = st.lists(_atoms, max_size=40).map(b"".join)
_header = st.tuples(_names, _value).map(lambda nv: nv[0] + b": " + nv[1] + b"\r\n")
_line = st.one_of(
    st.sampled_from([b"--b\r\n", b"--b--\r\n", b"--c\r\n", b"\r\n", b"=E9=\r\n", b"AAAA\r\n"]),
    _header,
)


@st.composite
def hostile_messages(draw: st.DrawFn) -> bytes:
    """Headers and bodies made of the pieces parsers trip on, with a repeated run to scale."""
    top = b"".join(draw(st.lists(_header, max_size=12)))
    body = b"".join(draw(st.lists(_line, max_size=40)))
    repeat = draw(st.sampled_from([1, 1, 50, 2_000]))
    run = draw(st.sampled_from([b"", b"--b\r\n\r\n", b"=?utf-8?q?x?= ", b"\r\n", b";"]))
    where = draw(st.sampled_from(["header", "body"]))
    if where == "header":
        top += b"X-Run: " + run * repeat + b"\r\n"
    else:
        body += run * repeat
    return top + b"\r\n" + body


def _storable(value: str) -> bool:
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return "\x00" not in value


@settings(
    max_examples=150,
    deadline=3000,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(hostile_messages())
def test_no_exception_escapes_and_every_field_is_storable(raw: bytes) -> None:
    parsed = parse_message(raw)
    texts = [parsed.subject, parsed.message_id, parsed.text or "", parsed.html or ""]
    texts += [n + a for n, a in (parsed.to + parsed.cc + [parsed.from_])]
    texts += [a.filename + a.content_type for a in parsed.attachments]
    assert all(_storable(t) for t in texts)
    for part in parsed.attachments[:5]:
        assert get_part(raw, part.index).filename == part.filename
    try:
        check_limits(raw)
    except MimeLimitError as exc:
        assert parsed.too_complex is not None and exc.rule == parsed.too_complex.rule


@settings(max_examples=60, deadline=3000)
@given(
    st.lists(
        st.tuples(
            st.text(min_size=1, max_size=60).filter(lambda s: s.strip()),
            st.sampled_from(["application/pdf", "text/plain", "image/png", "text/xml"]),
            st.binary(max_size=300),
        ),
        max_size=4,
    ),
    st.text(max_size=200),
)
def test_ordinary_mail_reads_as_the_standard_library_reads_it(
    files: list[tuple[str, str, bytes]], text: str
) -> None:
    _id, raw = build_message(
        OutgoingMessage(
            from_addr="a@medecin.mssante.fr",
            from_name="Dr A",
            to=["b@ch.mssante.fr"],
            text=text,
            attachments=[Attachment(*f) for f in files],
        ),
        domain="medecin.mssante.fr",
    )
    check_limits(raw)
    ours = _bounded_parse(raw, LIMITS)
    stdlib = message_from_bytes(raw, policy=policy.default)
    pairs = list(zip(ours.walk(), stdlib.walk(), strict=True))
    for a, b in pairs:
        assert a.get_content_type() == b.get_content_type()
        assert a.get_filename() == b.get_filename()
        assert a.get_payload(decode=True) == b.get_payload(decode=True)
