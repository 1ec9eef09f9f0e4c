#!/usr/bin/env python
"""Benchmark of the webmail pages of a big mailbox, over HTTP through gunicorn.

    .venv/bin/python scripts/bench/webmail.py [--quick] [--box 100000] [--total 1000000]

On a private stack (scripts/bench/harness.py), one box gets ``--box`` messages and the
database ``--total`` (the rest spread over other boxes), inserted with set-based SQL
(``INSERT … SELECT generate_series``, one statement per 50,000 messages and their entries;
every column the statement does not name gets the model field's default, so new columns
of another branch still fill). The listing and the search read rows only: those messages
have no blob. Five real messages are then sent to the box through the API and the
pipeline (scanned, delivered), so that the read page opens real blobs. The triggers on
the entry table (if any: folder counters) fire during the fill, as for any insert.

The client logs in as the box's holder the way tests/personas.py does: a session made
with Django's test client (``force_login``) carrying the verified second factor of the
holder's authenticator (enrolled through ``accounts.services.enrol_totp``); its cookie
then goes with every request to gunicorn. Timed, one request at a time (p50/p95/max):

- P2: the inbox's first page, a deep page (a keyset cursor 10-95 % down the box) and the
  read page of the real messages: target p95 ≤ 50 ms;
- P3: search results for a rare term (a handful of messages) and a common one (a fifth
  of the box): target p95 ≤ 100 ms.
"""

from __future__ import annotations

import argparse
import datetime
import http.client
import http.cookies
import re
import time
import urllib.parse
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import harness
import population
from harness import (
    Measure,
    Sizes,
    Stack,
    cpu_cells,
    fmt,
    percentile,
    say,
    table,
    verdict,
)
from population import TEXT, Box

GROUPS = ("postgres", "web")
RARE = "Zéphyrine"  # in one subject of 20,000
COMMON = "Résultats"  # in one subject of 5
RARE_BODY = "Ornithorynque"  # in one body of 25,000 (the search reads bodies: issue 14)
NAMES = ["Martin", "Bernard", "Dubois", "Thomas", "Robert", "Richard", "Petit", "Durand",
         "Leroy", "Moreau", "Simon", "Laurent", "Lefebvre", "Michel", "Garcia", "David",
         "Bertrand", "Roux", "Vincent", "Fournier"]  # fmt: skip
KINDS = ("Résultats", "Compte rendu", "Courrier", "Ordonnance", "Convocation")
BATCH = 50_000


# --------------------------------------------------------------------------- the fill


def _columns(model: Any, given: dict[str, str]) -> tuple[list[str], list[str], dict[str, Any]]:
    """Columns, SQL expressions and parameters for every concrete field but the id.

    ``given`` maps a column to its expression; the other fields get NULL when nullable,
    else their model default (a parameter), so a column added by a later migration fills.
    """
    from django.db import connection

    columns, expressions, params = [], [], {}
    for f in model._meta.concrete_fields:
        if f.primary_key:
            continue
        columns.append(f.column)
        if f.column in given:
            expressions.append(given[f.column])
        elif f.null and not f.has_default():
            expressions.append("NULL")
        elif (default := f.get_default()) is not None:  # "" for text without a default
            params[f"d_{f.column}"] = f.get_db_prep_save(default, connection)
            expressions.append(f"%(d_{f.column})s")
        else:
            raise SystemExit(f"the fill does not know how to fill {model.__name__}.{f.name}")
    return columns, expressions, params


def _part_tokens(box_id: int) -> dict[str, list[int]]:
    """The box's tokens of each piece a filled message is made of (mailboxes.search)."""
    from mailboxes import search
    from mssante.lib import searchindex

    def tokens(**doc: Any) -> list[int]:
        terms = searchindex.Document(**doc).terms()
        return search.entry_tokens(box_id, search.prepare(terms))

    parts: dict[str, list[int]] = {"body": tokens(texts=[TEXT])}
    parts["rare_body"] = tokens(texts=[RARE_BODY])
    parts["rare_subject"] = tokens(subject=f"Résultats de Mme {RARE}")
    parts["attachment"] = tokens(attachment_names=["compte-rendu.pdf"], has_attachments=True)
    for k, kind in enumerate(KINDS):
        parts[f"kind{k}"] = tokens(subject=kind)
    for n, name in enumerate(NAMES):
        parts[f"subject{n}"] = tokens(subject=name)
        parts[f"from{n}"] = tokens(senders=[f"Dr {name}", f"{name.lower()}@clinique.test"])
    return parts


def _rows(box: Box, lo: int, hi: int, parts: dict[str, list[int]]) -> list[tuple[int, bytes, list[int]]]:  # fmt: skip
    """For messages lo..hi: the sealed subject and the entry's tokens, as the pipeline makes them."""
    from mailboxes import blobs
    from mssante.lib import fieldseal

    ring = blobs.keyring()
    recipient = set(search_recipient_tokens(box))
    out = []
    for i in range(lo, hi + 1):
        rare = i % 20000 == 777
        kind, name = i % 5, (i // 7) % 20
        subject = f"Résultats de Mme {RARE} {i}" if rare else f"{KINDS[kind]} {NAMES[name]} n° {i}"
        tokens = set(parts["body"]) | set(parts[f"from{i % 20}"]) | recipient
        tokens |= set(
            parts["rare_subject"] if rare else parts[f"kind{kind}"] + parts[f"subject{name}"]
        )
        if i % 4 == 0:
            tokens |= set(parts["attachment"])
        if i % 25000 == 4321:
            tokens |= set(parts["rare_body"])
        sealed = fieldseal.seal_value(ring, "mailboxes.message.subject", subject)
        out.append((i, sealed, sorted(tokens)))
    return out


def search_recipient_tokens(box: Box) -> list[int]:
    from mailboxes import search
    from mssante.lib import searchindex

    terms = searchindex.Document(recipients=[box.address]).terms()
    return search.entry_tokens(box.id, search.prepare(terms))


def fill(box: Box, count: int, tag: str) -> None:
    """``count`` messages in the inbox of ``box``, newest now, one every 37 seconds before.

    Subjects are sealed and the entries' search tokens computed in Python as the pipeline
    does (from the pieces each message is made of: kind, names, the shared body, a rare
    body word in one message of 25,000, an attachment in one of 4), then copied in.
    """
    from django.db import connection
    from django.utils import timezone

    from mailboxes import blobs
    from mailboxes.models import Entry, Message
    from mssante.lib import fieldseal

    ring = blobs.keyring()
    attached = fieldseal.seal_value(
        ring,
        "mailboxes.message.attachments",
        '[{"index":2,"filename":"compte-rendu.pdf","content_type":"application/pdf","size":81234}]',
    )
    bare = fieldseal.seal_value(ring, "mailboxes.message.attachments", "[]")
    parts = _part_tokens(box.id)
    names = "(ARRAY[" + ",".join(f"'{n}'" for n in NAMES) + "])"
    when = "%(now)s - make_interval(secs => (%(count)s - i) * 37)"
    message = {
        "public_id": "gen_random_uuid()",
        "message_id": "concat('<', %(tag)s, '.', i, '@clinique.test>')",
        "thread_key": "concat(%(tag)s, '.', i, '@clinique.test')",
        "in_reply_to": "''",
        "from_addr": f"concat(lower({names}[1 + mod(i, 20)]), '@clinique.test')",
        "from_name": f"concat('Dr ', {names}[1 + mod(i, 20)])",
        "to_addrs": "jsonb_build_array(%(address)s)",
        "cc_addrs": "'[]'::jsonb",
        "subject": "b.subject",
        "date": when,
        "created_at": when,
        "size": "20000 + mod(i, 5000)",
        "attachments": "CASE WHEN mod(i, 4) = 0 THEN %(attached)s ELSE %(bare)s END",
        "origin": "'smtp'",
        "scan_status": "'clean'",
        "blob_name": "concat('bench/', %(tag)s, '/', i)",  # no blob: lists and search only
        "key_id": "'k1'",
        "wrapped_key": "'\\x00'::bytea",
    }
    entry = {
        "mailbox_id": "%(box)s",
        "message_id": "m.id",
        "folder_id": "%(folder)s",
        "seen": "mod(m.id, 3) <> 0",
        "flagged": "mod(m.id, 50) = 0",
        "answered": "false",
        "received_at": "m.date",
        "search_tokens": "b.tokens",
    }
    m_cols, m_exprs, m_params = _columns(Message, message)
    e_cols, e_exprs, e_params = _columns(Entry, entry)
    # Column names come from the models, every value is a parameter or a constant above.
    sql = (
        f"WITH m AS (INSERT INTO mailboxes_message ({', '.join(m_cols)}) "  # noqa: S608
        f"SELECT {', '.join(m_exprs)} FROM generate_series(%(lo)s, %(hi)s) AS i "
        f"JOIN bench_rows AS b ON b.n = i RETURNING id, date, message_id) "
        f"INSERT INTO mailboxes_entry ({', '.join(e_cols)}) SELECT {', '.join(e_exprs)} FROM m "
        f"JOIN bench_rows AS b ON b.n = substring(m.message_id from '\\.([0-9]+)@')::int"
    )
    params = {**m_params, **e_params, "tag": tag, "address": box.address, "box": box.id,
              "folder": box.inbox, "count": count, "now": timezone.now(),
              "attached": attached, "bare": bare}  # fmt: skip
    with connection.cursor() as cursor:
        cursor.execute(
            "CREATE TEMP TABLE IF NOT EXISTS bench_rows "
            "(n integer PRIMARY KEY, subject bytea, tokens bigint[])"
        )
        for lo in range(1, count + 1, BATCH):
            hi = min(count, lo + BATCH - 1)
            cursor.execute("TRUNCATE bench_rows")
            with cursor.cursor.copy("COPY bench_rows (n, subject, tokens) FROM STDIN") as copy:
                copy.set_types(["int4", "bytea", "int8[]"])
                for row in _rows(box, lo, hi, parts):
                    copy.write_row(row)
            cursor.execute(sql, {**params, "lo": lo, "hi": hi})


def triggers() -> list[str]:
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT tgrelid::regclass::text || '.' || tgname FROM pg_trigger "
            "WHERE NOT tgisinternal AND tgrelid IN "
            "('mailboxes_entry'::regclass, 'mailboxes_message'::regclass)"
        )
        return [r[0] for r in cursor.fetchall()]


# --------------------------------------------------------------------------- the client


class Browser:
    """One logged-in user's HTTP connection to gunicorn, cookies kept."""

    def __init__(self, port: int, cookies: dict[str, str]) -> None:
        self.port, self.cookies = port, dict(cookies)
        self.conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)

    def request(self, method: str, path: str, body: dict[str, str] | None = None) -> tuple[int, str, dict[str, str]]:  # fmt: skip
        headers = {"Cookie": "; ".join(f"{k}={v}" for k, v in self.cookies.items())}
        data = None
        if body is not None:
            data = urllib.parse.urlencode(body).encode()
            headers["Content-Type"] = "application/x-www-form-urlencoded"
        try:
            self.conn.request(method, path, data, headers)
            response = self.conn.getresponse()
            text = response.read().decode(errors="replace")
        except (OSError, http.client.HTTPException):
            self.conn.close()
            raise
        for value in response.headers.get_all("Set-Cookie") or []:
            jar = http.cookies.SimpleCookie(value)
            self.cookies.update({k: m.value for k, m in jar.items()})
        if response.will_close:
            self.conn.close()
        return response.status, text, dict(response.headers)

    def get(self, path: str) -> str:
        status, text, _headers = self.request("GET", path)
        if status != 200:
            raise SystemExit(f"GET {path} answered {status}: {text[:300]}")
        return text

    def search(self, mailbox: int, term: str, **filters: str) -> str:
        """POST the search form (CSRF token from its page); the results URL (303)."""
        form = f"/messagerie/bal/{mailbox}/recherche/"
        self.get(form)
        status, text, headers = self.request(
            "POST", form, {"csrfmiddlewaretoken": self.cookies["csrftoken"], "q": term, **filters}
        )
        if status != 303:
            raise SystemExit(f"POST {form} answered {status}: {text[:300]}")
        return urllib.parse.urlsplit(headers["Location"]).path


def log_in(user: Any, device: Any) -> dict[str, str]:
    """A session past both login steps, as tests/personas.login makes it."""
    from django.conf import settings
    from django.test import Client
    from django_otp import DEVICE_ID_SESSION_KEY

    client = Client()
    client.force_login(user, backend="accounts.backends.IdentifierBackend")
    session = client.session
    session[DEVICE_ID_SESSION_KEY] = device.persistent_id
    session.save()
    return {settings.SESSION_COOKIE_NAME: client.cookies[settings.SESSION_COOKIE_NAME].value}


def holder() -> tuple[Any, Box, Any]:
    """The box's holder, enrolled with an authenticator app through the accounts service."""
    from django_otp.oath import totp

    from accounts import services as accounts

    user, box = population.professional("Camille", "Grandeboite")
    secret = accounts.new_totp_secret()
    enrolment = accounts.enrol_totp(user, secret_hex=secret, code=f"{totp(bytes.fromhex(secret)):06d}")  # fmt: skip
    return user, box, enrolment.device


def deep_cursors(box: Box, count: int, size: int) -> list[str]:
    """Cursors of pages 10 % to 95 % down the inbox, as the page's own link makes them."""
    from mailboxes import selectors
    from mailboxes.models import Entry

    ordered = Entry.objects.filter(folder_id=box.inbox).order_by("-received_at", "-pk")
    depths = [int(size * (0.10 + 0.85 * k / max(1, count - 1))) for k in range(count)]
    return [selectors._cursor(ordered[d]) for d in depths]


# --------------------------------------------------------------------------- timing


@dataclass
class Row:
    label: str
    target: float
    times: list[float]
    measure: Measure


def time_page(stack: Stack, label: str, target: float, requests: int, path: Callable[[int], str], browser: Browser, check: Callable[[str], bool]) -> Row:  # fmt: skip
    for i in range(3):  # warm-up: the workers' caches, the first plan
        if not check(browser.get(path(i))):
            raise SystemExit(f"{label}: the page does not show what it should ({path(i)})")
    say(f"{label}: {requests} requests")
    times = []
    window = stack.window().start()
    for i in range(requests):
        start = time.perf_counter()
        browser.get(path(i))
        times.append(1000 * (time.perf_counter() - start))
    return Row(label, target, times, window.stop())


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a smoke run (20,000 / 60,000)")
    parser.add_argument("--box", type=int, default=100_000, help="messages in the timed box")
    parser.add_argument("--total", type=int, default=1_000_000, help="messages in the database")
    parser.add_argument("--other-boxes", type=int, default=18, help="boxes holding the rest")
    parser.add_argument("--requests", type=int, default=200, help="timed requests per page")
    parser.add_argument("--web-workers", type=int, default=2)
    parser.add_argument("--web-threads", type=int, default=1, help=">1: gthread workers")
    parser.add_argument("--keep", action="store_true", help="keep the work dir")
    args = parser.parse_args()
    if args.quick:
        args.box, args.total, args.requests, args.other_boxes = 20_000, 60_000, 30, 4

    stack = Stack("webmail", Sizes(args.web_workers, args.web_threads), keep=args.keep)
    with stack:
        stack.start_storage()
        stack.migrate()
        user, box, device = holder()
        others = population.boxes(args.other_boxes)
        say(f"filling: {args.box} messages in the box, {args.total} in the database")
        start = time.perf_counter()
        fill(box, args.box, "grande")
        rest = max(0, args.total - args.box)
        for n, other in enumerate(others):
            fill(other, rest // len(others) + (n < rest % len(others)), f"autre{n}")
        filled = time.perf_counter() - start
        import psycopg

        with psycopg.connect(stack.owner_url, autocommit=True) as owner:
            owner.execute("VACUUM ANALYZE")  # what autovacuum does after a bulk load
        fired = triggers()
        stack.start_app()
        entries = real_messages(stack, box)
        cookies = log_in(user, device)
        browser = Browser(stack.ports["web"], cookies)
        rows = pages(stack, args, box, entries, browser)
        described = stack.describe()
    report(args, rows, described, fired, filled)


def real_messages(stack: Stack, box: Box) -> list[int]:
    """Five messages through the API and the pipeline: their entries have real blobs."""
    import psycopg

    sender = population.software("laboratoire")
    with psycopg.connect(stack.app_url, autocommit=True) as db:
        cursor = db.cursor()
        after = population.last_entry(cursor)
        for i in range(5):
            payload = {"to": [box.address], "subject": f"Résultats réels {i}", "text": TEXT}
            status, body = population.post(stack.ports["web"], sender.token, payload)
            if status != 201:
                raise SystemExit(f"POST /api/v1/messages answered {status}: {body}")
        if not population.wait_entries(cursor, [box.inbox], after, 5, 60):
            raise SystemExit("the five real messages were not delivered within a minute")
        cursor.execute("SELECT id FROM mailboxes_entry WHERE folder_id = %s AND id > %s", (box.inbox, after))  # fmt: skip
        return [r[0] for r in cursor.fetchall()]


def pages(stack: Stack, args: argparse.Namespace, box: Box, entries: list[int], browser: Browser) -> list[Row]:  # fmt: skip
    inbox = f"/messagerie/dossier/{box.inbox}/"
    first = browser.get(inbox)
    link = re.search(r'href="[^"]*\?avant=([^"&]+)"', first)
    cursors = deep_cursors(box, 10, args.box)
    # The cursor of page 2 as the page's link has it: our deep cursors are made alike.
    from mailboxes import selectors
    from mailboxes.models import Entry

    second = Entry.objects.filter(folder_id=box.inbox).order_by("-received_at", "-pk")[49]
    if not link or urllib.parse.unquote(link.group(1)) != selectors._cursor(second):
        raise SystemExit("the inbox's 'older messages' link is not the cursor expected")
    rare = browser.search(box.id, RARE)
    common = browser.search(box.id, COMMON)
    body = browser.search(box.id, RARE_BODY)
    body_common = browser.search(box.id, "consultation examen")
    filtered = browser.search(box.id, f"{COMMON} {NAMES[5]}", with_attachments="on", unread="on")
    since = (datetime.date.today() - datetime.timedelta(days=60)).isoformat()
    prefix_dated = browser.search(box.id, "compte ren", since=since)
    rows = [
        time_page(stack, "P2 inbox, first page", 50, args.requests, lambda i: inbox, browser,
                  lambda html: "Résultats réels" in html),
        time_page(stack, "P2 inbox, deep page (cursor)", 50, args.requests,
                  lambda i: f"{inbox}?avant={urllib.parse.quote(cursors[i % len(cursors)])}",
                  browser, lambda html: " n° " in html),
        time_page(stack, "P2 read page (real message)", 50, args.requests,
                  lambda i: f"/messagerie/message/{entries[i % len(entries)]}/", browser,
                  lambda html: "Compte rendu de consultation" in html),
        time_page(stack, f"P3 search, rare term ({RARE})", 100, args.requests, lambda i: rare,
                  browser, lambda html: f"Mme {RARE}" in html),
        time_page(stack, f"P3 search, common term ({COMMON})", 100, args.requests,
                  lambda i: common, browser, lambda html: " n° " in html),
        time_page(stack, f"P3 search, rare body word ({RARE_BODY})", 100, args.requests,
                  lambda i: body, browser, lambda html: "n° " in html),
        time_page(stack, "P3 search, body words in every message", 100, args.requests,
                  lambda i: body_common, browser, lambda html: " n° " in html),
        time_page(stack, f"P3 search, {COMMON} {NAMES[5]} + attachments + unread", 100,
                  args.requests, lambda i: filtered, browser, lambda html: " n° " in html),
        time_page(stack, "P3 search, prefix (compte ren…) + last 60 days", 100, args.requests,
                  lambda i: prefix_dated, browser, lambda html: " n° " in html),
    ]  # fmt: skip
    return rows


def report(args: argparse.Namespace, rows: list[Row], described: list[str], fired: list[str], filled: float) -> None:  # fmt: skip
    headers = ["page", "requests", "p50 ms", "p95 ms", "max ms", "target p95", "met",
               *[f"{g} ms/req" for g in GROUPS], "all ms/req", "other %", "load"]  # fmt: skip
    lines = []
    for row in rows:
        p95 = percentile(row.times, 95)
        lines.append([
            row.label, str(len(row.times)), fmt(percentile(row.times, 50)), fmt(p95),
            fmt(max(row.times)), f"≤ {row.target:.0f} ms", verdict(p95, row.target, at_least=False),
            *cpu_cells(row.measure, len(row.times), GROUPS), fmt(row.measure.other_pct, ".0f"),
            row.measure.load,
        ])  # fmt: skip
    notes = [
        f"box: {args.box:,} messages in its inbox; database: {args.total:,} messages "
        f"({args.other_boxes} other boxes), filled by set-based SQL in {filled:.0f} s, then "
        "VACUUM ANALYZE; the read page opens 5 real messages sent through the API and the pipeline",
        "triggers on the entry and message tables (fired by the fill): "
        + (", ".join(fired) if fired else "none — anything the application maintains in Python "
           "(folder counters, a search index) was not maintained by the fill"),
        "login: a session made by Django's test client (force_login) with the holder's verified "
        "authenticator device (enrolled by accounts.services.enrol_totp), as tests/personas.login",
        "one request at a time, timed from sending to the last byte; CPU ms per request of "
        "PostgreSQL, gunicorn and all our processes (the client excluded)",
        *described,
    ]  # fmt: skip
    table("P2/P3 — pages of a big mailbox over HTTP through gunicorn", headers, lines, notes)


if __name__ == "__main__":
    harness.run(main)
