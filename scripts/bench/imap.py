#!/usr/bin/env python
"""Benchmark of IMAP: our server side by side with Dovecot, serving the same 10,000 messages.

    .venv/bin/python scripts/bench/imap.py [--quick] [--messages 10000] [--targets ours,dovecot]

The mailbox: 10,000 realistic MSSanté messages (tests/clients_e2e/corpus.py: French RFC 2047
subjects, quoted-printable bodies, PDF and CDA attachments on most; 33 kB on average;
generated deterministically, the same bytes for both servers), all in the inbox, unread.

Targets (one after the other, never at the same time; each in a private temp dir, on free
loopback ports, stopped by PID on the way out, also on Ctrl-C):

- ``dovecot``: Debian's Dovecot (dovecot-imapd, dovecot-lmtpd), STARTTLS required, the
  messages written into its Maildir before it starts; a delivery is an LMTP transaction.
- ``ours``: ``manage.py imap`` on a private production-like stack (scripts/bench/harness.py:
  durable PostgreSQL, Redis, clamd, a Celery prefork worker), started with IMAP_HOST,
  IMAP_PORT (and IMAP_LISTEN=host:port) and CLIENTS_TLS_CERT/KEY (trustme); the messages are
  received for one professional's box through the gateway's path
  (``read_reception`` + ``store_receptions``, 100 a transaction) and delivered by the worker
  (scanned, filed); the client logs in with the box's address and an application password
  (``clients.services.create_app_password``). A tree with the server
  (``clients/imap/server.py``) but not yet its command runs ``start_imap_server`` in a
  process of its own (``SERVER_PROCESS``); a tree with neither says "ours: not available
  (…)" and the table shows Dovecot alone.

Measured from one client process with Python's imaplib (the same client for both), each a
median over ``--reps`` runs after one untimed warm-up:

- login + SELECT: connect, STARTTLS, LOGIN, SELECT INBOX (10,000 messages);
- FETCH of 1,000 headers: ``FETCH a:a+999 (UID FLAGS INTERNALDATE RFC822.SIZE BODY.PEEK[HEADER])``
  at a different offset each run;
- FETCH of 100 full messages: ``FETCH a:a+99 (BODY.PEEK[])``;
- UID SEARCH: ``UNSEEN`` (flags), ``FROM "martin"`` (a header), ``SINCE <date>`` (the
  arrival date); the answers must agree between the two servers (same messages);
- IDLE wake-up: a client IDLEs on the inbox, a message is delivered (Dovecot: LMTP; ours:
  the reception path and the worker); the time from the start of the delivery to the
  client's ``* n EXISTS`` (and from the delivery's acknowledgement);
- memory per idle connection: ``--idle-connections`` clients logged in, in IDLE on the
  inbox; the RSS and PSS of the server's process tree (ours: the ``manage.py imap`` tree;
  Dovecot: its master and every child, login processes included) before and after,
  divided by the number of connections. PSS shares shared pages fairly between processes
  (Dovecot runs one process per connection, RSS counts their shared libraries each time).

Target: within 2x Dovecot on each latency (issue 15); memory is reported.
"""

from __future__ import annotations

import argparse
import contextlib
import imaplib
import os
import random
import re
import socket
import ssl
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import harness
import population
from harness import ROOT, Sizes, Stack, fmt, say, table

sys.path.insert(0, str(ROOT))
from tests.clients_e2e import corpus, dovecot

TARGET_RATIO = 2.0
# The corpus's To: (the same bytes for both servers); ours delivers by the envelope.
CORPUS_TO = f"dominique.essai@{population.DOMAIN}"
MAIL_FROM = "expediteur@ch-lilas.mssante.test"


# The IMAP server in a process of its own when the tree has no `manage.py imap` yet:
# argv host port; the certificate of CLIENTS_TLS_CERT/KEY; runs until SIGTERM.
SERVER_PROCESS = """
import signal, sys, threading
import django
django.setup()
from clients.imap.server import start_imap_server
from clients.submission import server_context
handle = start_imap_server(sys.argv[1], int(sys.argv[2]), server_context())
stop = threading.Event()
signal.signal(signal.SIGTERM, lambda *_: stop.set())
signal.signal(signal.SIGINT, lambda *_: stop.set())
stop.wait()
handle.stop()
"""


@dataclass(frozen=True)
class Account:
    host: str
    port: int
    login: str
    password: str
    ca_file: Path


class Target(Protocol):
    """A server under test: started with the corpus, an account, a delivery path."""

    name: str
    account: Account

    def unavailable(self) -> str:
        """'' when this target can run here, else why not (checked before any work)."""

    def start(self, messages: list[bytes]) -> None:
        """Start the server with ``messages`` in the account's inbox, unread."""

    def deliver(self, raw: bytes) -> None:
        """Deliver one message to the account's inbox by the server's own delivery path."""

    def server_pids(self) -> list[int]:
        """The roots of the server's process tree (for memory)."""

    def describe(self) -> list[str]:
        """What ran, for the report."""

    def stop(self) -> None:
        """Stop everything it started (by PID)."""


# --------------------------------------------------------------------------- certificates


@dataclass
class Certificates:
    folder: Path
    cert: Path = field(init=False)
    key: Path = field(init=False)
    ca_file: Path = field(init=False)

    def __post_init__(self) -> None:
        import trustme

        self.folder.mkdir(parents=True, exist_ok=True)
        self.folder.chmod(0o755)
        ca = trustme.CA()
        leaf = ca.issue_cert("127.0.0.1", "localhost", common_name="imap.bench.mssante.test")
        self.cert, self.key, self.ca_file = (
            self.folder / "cert.pem", self.folder / "key.pem", self.folder / "ca.pem",
        )  # fmt: skip
        leaf.cert_chain_pems[0].write_to_path(str(self.cert))
        for extra in leaf.cert_chain_pems[1:]:
            with self.cert.open("ab") as handle:
                handle.write(extra.bytes())
        leaf.private_key_pem.write_to_path(str(self.key))
        ca.cert_pem.write_to_path(str(self.ca_file))
        for path in (self.cert, self.key, self.ca_file):
            path.chmod(0o644)  # Dovecot reads them as root; a private temp dir of ours


# --------------------------------------------------------------------------- Dovecot


class DovecotTarget:
    name = "Dovecot"

    def __init__(self, certs: Certificates) -> None:
        self.certs = certs
        self.login, self.password = CORPUS_TO, "mot-de-passe-du-banc"
        self.server: dovecot.Dovecot | None = None
        self.account = Account("localhost", 0, self.login, self.password, certs.ca_file)

    def unavailable(self) -> str:
        missing = dovecot.available()
        if not missing and not Path("/usr/lib/dovecot/lmtp").exists():
            missing = "/usr/lib/dovecot/lmtp"
        return f"not installed: {missing} (bash scripts/install-deps)" if missing else ""

    def start(self, messages: list[bytes]) -> None:
        self.server = dovecot.Dovecot(self.certs.cert, self.certs.key, {self.login: self.password})
        self.server.seed(self.login, messages)
        self.server.start()
        self.account = Account("localhost", self.server.imap_port, self.login, self.password,
                               self.certs.ca_file)  # fmt: skip

    def deliver(self, raw: bytes) -> None:
        assert self.server is not None
        self.server.deliver(self.login, raw, MAIL_FROM)

    def server_pids(self) -> list[int]:
        assert self.server is not None
        return [self.server.pid]

    def describe(self) -> list[str]:
        version = subprocess.run([dovecot.DOVECOT, "--version"], capture_output=True, text=True,
                                 check=False).stdout.strip()  # fmt: skip
        return [
            f"Dovecot {version}: Maildir, STARTTLS required, passwd-file, default fsync "
            "(mail_fsync=optimized), deliveries over LMTP"
        ]

    def stop(self) -> None:
        if self.server is not None:
            self.server.remove()
            self.server = None


# --------------------------------------------------------------------------- ours


class OursTarget:
    name = "ours"

    def __init__(self, certs: Certificates, args: argparse.Namespace) -> None:
        self.certs = certs
        self.args = args
        self.stack: Stack | None = None
        self.account = Account("localhost", 0, "", "", certs.ca_file)
        self.port = harness.free_port()
        self.mailbox_id = 0
        self.command: list[str] = []
        self.how = ""

    def unavailable(self) -> str:
        """Ask the tree whether it has ``manage.py imap`` (on the default SQLite settings)."""
        env = {k: v for k, v in os.environ.items() if k not in harness.OURS}
        env.update(MSSANTE_IGNORE_DOTENV="true", DJANGO_SETTINGS_MODULE="mssante.settings")
        done = subprocess.run(
            [sys.executable, "manage.py", "imap", "--help"], cwd=ROOT, env=env,
            capture_output=True, text=True, check=False, timeout=120,
        )  # fmt: skip
        if done.returncode == 0:
            self.command = [sys.executable, "manage.py", "imap"]
            if "--listen" in done.stdout:
                self.command += ["--listen", f"127.0.0.1:{self.port}"]
            self.how = "manage.py imap, one process"
            return ""
        lines = [line for line in (done.stderr or done.stdout).splitlines() if line.strip()]
        why = f"manage.py imap: {lines[0].strip() if lines else 'exit ' + str(done.returncode)}"
        server = ROOT / "clients" / "imap" / "server.py"
        if server.exists() and "def start_imap_server(" in server.read_text():
            # A tree with the server but not yet its command: the same function the
            # command runs, in a process of its own.
            self.command = [sys.executable, "-c", SERVER_PROCESS, "127.0.0.1", str(self.port)]
            self.how = (f"clients.imap.server.start_imap_server in a process of its own ({why})")  # fmt: skip
            return ""
        return why

    def start(self, messages: list[bytes]) -> None:
        sizes = Sizes(celery=self.args.celery, beat=False, scan=not self.args.no_scan)
        self.stack = Stack(
            "imap",
            sizes,
            keep=self.args.keep,
            extra_env={
                "CLIENTS_TLS_CERT": str(self.certs.cert),
                "CLIENTS_TLS_KEY": str(self.certs.key),
                "IMAP_HOST": "127.0.0.1",
                "IMAP_PORT": str(self.port),
                "IMAP_LISTEN": f"127.0.0.1:{self.port}",
            },
        )
        self.stack.__enter__()
        self.stack.start_storage()
        self.stack.migrate()
        self.stack.start_app(web=False, worker=True)
        self._seed(messages)
        self._start_imap()

    def _seed(self, messages: list[bytes]) -> None:
        from django.db import connection

        from clients import services
        from clients.models import AppPassword
        from mailboxes.models import Mailbox
        from mailboxes.services.inbound import read_reception, store_receptions

        user, box = population.professional()
        self.mailbox_id = box.id
        mailbox = Mailbox.objects.get(pk=box.id)
        _password, raw = services.create_app_password(
            user, label="banc d'essai IMAP", scope=AppPassword.Scope.BOTH, mailbox=mailbox
        )
        self.account = Account("localhost", self.port, box.address, raw, self.certs.ca_file)
        say(f"ours: receiving {len(messages)} messages for {box.address} (the worker delivers)")
        with connection.cursor() as cursor:
            after = population.last_entry(cursor)
        started = time.monotonic()
        for start in range(0, len(messages), 100):
            receptions = [read_reception(m, MAIL_FROM, [box.address]) for m in messages[start : start + 100]]  # fmt: skip
            failed = [o for o in store_receptions(receptions) if isinstance(o, Exception)]
            if failed:
                raise SystemExit(f"ours: messages refused while seeding: {failed[:3]}")
        with connection.cursor() as cursor:
            if not population.wait_entries(cursor, [box.inbox], after, len(messages)):
                raise SystemExit("ours: the worker stopped delivering while seeding")
        say(f"ours: {len(messages)} messages delivered in {time.monotonic() - started:.0f} s")

    def _start_imap(self) -> None:
        assert self.stack is not None
        env = self.stack.env
        service = self.stack.spawn("imap", "imap", self.command, env)

        def greets() -> bool:
            with socket.create_connection(("127.0.0.1", self.port), timeout=2) as sock:
                return sock.recv(200).startswith(b"* OK")

        harness.wait_for("manage.py imap", greets, 60, service.log)

    def deliver(self, raw: bytes) -> None:
        from mailboxes.models import Mailbox
        from mailboxes.services.inbound import receive_message

        address = Mailbox.objects.get(pk=self.mailbox_id).address
        receive_message(raw, MAIL_FROM, [address])

    def server_pids(self) -> list[int]:
        assert self.stack is not None
        return self.stack.pids("imap")

    def postgres_pids(self) -> list[int]:
        assert self.stack is not None
        return self.stack.pids("postgres")

    def describe(self) -> list[str]:
        assert self.stack is not None
        return [self.how, *self.stack.describe()]

    def stop(self) -> None:
        if self.stack is not None:
            self.stack.__exit__(None, None, None)
            self.stack = None


# --------------------------------------------------------------------------- the client


def session(account: Account) -> imaplib.IMAP4:
    conn = imaplib.IMAP4(account.host, account.port, timeout=120)
    conn.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    conn.starttls(ssl_context=ssl.create_default_context(cafile=str(account.ca_file)))
    conn.login(account.login, account.password)
    return conn


def ok(answer: tuple[str, Any], what: str) -> Any:
    typ, data = answer
    if typ != "OK":
        raise RuntimeError(f"{what}: {typ} {data!r}")
    return data


def timed(fn: Callable[[], object]) -> float:
    started = time.perf_counter()
    fn()
    return 1000 * (time.perf_counter() - started)


@dataclass
class Series:
    """Milliseconds of the runs of one operation, and the server's CPU per run."""

    values: list[float] = field(default_factory=list)
    note: str = ""
    cpu_ms: float | None = None
    answer: str = ""  # what the server answered (UID SEARCH: how many UIDs)  # the server's process trees (ours: and PostgreSQL's)

    @property
    def median(self) -> float | None:
        return statistics.median(self.values) if self.values else None

    @property
    def p95(self) -> float | None:
        return harness.percentile(self.values, 95)

    @property
    def worst(self) -> float | None:
        return max(self.values) if self.values else None


# An operation whose warm-up takes longer than this is timed SLOW_RUNS times only (the
# table says so): 20 runs of a 40-second search would take the benchmark's whole budget.
SLOW_MS = 5_000
SLOW_RUNS = 3


def runs(cpu_roots: Callable[[], list[int]], warm_up: Callable[[], object],
         each: list[Callable[[], object]]) -> Series:  # fmt: skip
    """One untimed warm-up, then each run timed; the server's CPU over the timed runs."""
    note = ""
    if timed(warm_up) > SLOW_MS and len(each) > SLOW_RUNS:
        each, note = each[:SLOW_RUNS], f"slow: {SLOW_RUNS} runs"
    roots = cpu_roots()
    cpu0 = harness.tree_cpu(roots)
    series = Series(values=[timed(fn) for fn in each], note=note)
    series.cpu_ms = 1000 * (harness.tree_cpu(roots) - cpu0) / max(1, len(each))
    return series


def login_select(account: Account, reps: int, count: int, cpu: Callable[[], list[int]]) -> Series:
    def once() -> None:
        conn = session(account)
        data = ok(conn.select("INBOX"), "SELECT")
        if int(data[0]) < count:
            raise RuntimeError(f"SELECT INBOX: {data[0]!r} messages, {count} expected")
        conn.logout()

    return runs(cpu, once, [once] * reps)


def fetches(conn: imaplib.IMAP4, count: int, reps: int, size: int, items: str,
            cpu: Callable[[], list[int]]) -> Series:  # fmt: skip
    rng = random.Random(f"fetch-{size}")

    def at(start: int) -> Callable[[], None]:
        def once() -> None:
            data = ok(conn.fetch(f"{start}:{start + size - 1}", items), "FETCH")
            got = sum(1 for d in data if isinstance(d, tuple))
            if got != size:
                raise RuntimeError(f"FETCH {items}: {got} messages, {size} expected")

        return once

    starts = [rng.randint(1, max(1, count - size + 1)) for _ in range(reps)]
    return runs(cpu, at(1), [at(s) for s in starts])


SEARCHES = {
    "UID SEARCH UNSEEN": ("UNSEEN",),
    'UID SEARCH FROM "martin"': ("FROM", '"martin"'),
    "UID SEARCH SINCE 1-Jan-2000": ("SINCE", "1-Jan-2000"),
}


def searches(conn: imaplib.IMAP4, reps: int, cpu: Callable[[], list[int]]) -> dict[str, Series]:
    found = {}
    for label, criteria in SEARCHES.items():
        answer: list[bytes] = [b""]

        def once(c: tuple[str, ...] = criteria, out: list[bytes] = answer) -> None:
            data = ok(conn.uid("SEARCH", *c), "UID SEARCH")
            out[0] = data[0] or b""

        series = runs(cpu, once, [once] * reps)
        series.answer = f"{len(answer[0].split())} UIDs"
        found[label] = series
    return found


def idle_latency(target: Target, account: Account, reps: int, count: int) -> tuple[Series, Series]:
    """(delivery started → EXISTS, delivery acknowledged → EXISTS), in ms."""
    conn = session(account)
    ok(conn.select("INBOX"), "SELECT")
    tag = conn._new_tag().decode()  # type: ignore[attr-defined]
    conn.send(f"{tag} IDLE\r\n".encode())
    line = conn.readline()
    if not line.startswith(b"+"):
        raise RuntimeError(f"IDLE refused: {line!r}")
    conn.sock.settimeout(120)
    from_start, from_ack = Series(), Series()
    for n in range(reps):
        raw = corpus.message(count + n, CORPUS_TO)
        started = time.perf_counter()
        target.deliver(raw)
        acked = time.perf_counter()
        while True:
            line = conn.readline()
            if not line:
                raise RuntimeError("the server closed the IDLE connection")
            if re.match(rb"\* \d+ EXISTS", line):
                break
        woke = time.perf_counter()
        from_start.values.append(1000 * (woke - started))
        from_ack.values.append(1000 * (woke - acked))
        time.sleep(0.2)  # the next delivery is a new event, not a burst
    conn.send(b"DONE\r\n")
    with contextlib.suppress(Exception):
        while not conn.readline().startswith(tag.encode()):
            pass
        conn.logout()
    return from_start, from_ack


def tree_memory(roots: list[int]) -> tuple[float, float, int]:
    """(RSS MB, PSS MB, processes) of the process trees under ``roots``."""
    table_ = harness.proc_table()
    pids = harness.descendants(roots, table_)
    rss = pss = 0.0
    for pid in pids:
        rss += harness.rss_mb(pid)
        with contextlib.suppress(OSError):
            for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
                if line.startswith("Pss:"):
                    pss += int(line.split()[1]) / 1024
    return rss, pss, len(pids)


@dataclass
class Memory:
    connections: int
    rss_kb: float  # per connection
    pss_kb: float
    processes: int  # more processes for N connections
    before_rss_mb: float
    postgres_kb: float | None = None  # ours: PostgreSQL's PSS per connection


def idle_memory(target: Target, account: Account, n: int) -> Memory:
    postgres = getattr(target, "postgres_pids", None)
    time.sleep(1)
    rss0, pss0, procs0 = tree_memory(target.server_pids())
    pg0 = tree_memory(postgres())[1] if postgres else 0.0
    conns = []
    try:
        for _ in range(n):
            conn = session(account)
            ok(conn.select("INBOX"), "SELECT")
            tag = conn._new_tag().decode()  # type: ignore[attr-defined]
            conn.send(f"{tag} IDLE\r\n".encode())
            if not conn.readline().startswith(b"+"):
                raise RuntimeError("IDLE refused")
            conns.append(conn)
        time.sleep(3)
        rss1, pss1, procs1 = tree_memory(target.server_pids())
        pg1 = tree_memory(postgres())[1] if postgres else 0.0
    finally:
        for conn in conns:
            with contextlib.suppress(Exception):
                conn.send(b"DONE\r\n")
                conn.logout()
    return Memory(
        connections=n,
        rss_kb=1024 * (rss1 - rss0) / n,
        pss_kb=1024 * (pss1 - pss0) / n,
        processes=procs1 - procs0,
        before_rss_mb=rss0,
        postgres_kb=1024 * (pg1 - pg0) / n if postgres else None,
    )


@dataclass
class Result:
    rows: dict[str, Series] = field(default_factory=dict)
    memory: Memory | None = None
    described: list[str] = field(default_factory=list)
    first_select_ms: float | None = None
    failures: dict[str, str] = field(default_factory=dict)


def measure(target: Target, messages: list[bytes], args: argparse.Namespace) -> Result:
    """Every operation on ``target``; an operation that fails is noted, the next one runs."""
    say(f"{target.name}: starting with {len(messages)} messages")
    target.start(messages)
    result = Result(described=target.describe())
    load = harness.loadavg()
    account = target.account
    count = len(messages)
    extra = getattr(target, "postgres_pids", None)

    def cpu() -> list[int]:
        return target.server_pids() + (extra() if extra else [])

    def phase(name: str, fn: Callable[[], None]) -> None:
        say(f"{target.name}: {name}")
        try:
            fn()
        except Exception as exc:  # noted in the report; the other operations still run
            say(f"{target.name}: {name} failed: {exc!r}")
            result.failures[name] = repr(exc)[:300]

    def first_select() -> None:
        conn = session(account)
        result.first_select_ms = timed(lambda: ok(conn.select("INBOX"), "SELECT"))
        conn.logout()

    def reading() -> None:
        conn = session(account)
        ok(conn.select("INBOX", readonly=True), "SELECT")
        items = "(UID FLAGS INTERNALDATE RFC822.SIZE BODY.PEEK[HEADER])"
        result.rows["FETCH 1,000 headers"] = fetches(conn, count, args.reps, min(1000, count), items, cpu)  # fmt: skip
        result.rows["FETCH 100 full messages"] = fetches(conn, count, args.reps, min(100, count), "(BODY.PEEK[])", cpu)  # fmt: skip
        result.rows.update(searches(conn, args.reps, cpu))
        conn.logout()

    def idle() -> None:
        start, ack = idle_latency(target, account, args.idle_reps, count)
        result.rows["IDLE: delivery started -> EXISTS"] = start
        result.rows["IDLE: delivery acknowledged -> EXISTS"] = ack

    def memory() -> None:
        result.memory = idle_memory(target, account, args.idle_connections)

    phase("first SELECT (the server reads the new mailbox)", first_select)
    phase("login + SELECT", lambda: result.rows.__setitem__(
        "login + SELECT INBOX", login_select(account, args.reps, count, cpu)))  # fmt: skip
    phase("FETCH and UID SEARCH", reading)
    phase("IDLE wake-up after a delivery", idle)
    phase(f"memory of {args.idle_connections} idle connections", memory)
    result.described.append(f"load average {load:.1f} -> {harness.loadavg():.1f} "
                            f"({harness.NCPU} CPU, shared with whatever else runs)")  # fmt: skip
    return result


# --------------------------------------------------------------------------- report


def report(results: dict[str, Result | str], args: argparse.Namespace) -> None:
    ours, theirs = results.get("ours"), results.get("Dovecot")
    print()
    print(f"IMAP benchmark: {args.messages} messages, {args.reps} runs per operation (median), "
          f"{args.idle_reps} IDLE wake-ups, {args.idle_connections} idle connections")  # fmt: skip
    for name, result in results.items():
        if isinstance(result, str):
            print(f"{name}: not available ({result})")
    labels: list[str] = []
    for result in (ours, theirs):
        if isinstance(result, Result):
            labels += [k for k in result.rows if k not in labels]
    rows = []
    for label in labels:
        a = ours.rows.get(label) if isinstance(ours, Result) else None
        b = theirs.rows.get(label) if isinstance(theirs, Result) else None
        ratio = a.median / b.median if a and b and a.median and b.median else None
        rows.append([
            label, fmt(a.median if a else None), fmt(b.median if b else None),
            fmt(ratio, ".2f") + ("x" if ratio else ""), f"<= {TARGET_RATIO:.0f}x",
            ("met" if ratio <= TARGET_RATIO else "NOT met") if ratio else "-",
        ])  # fmt: skip
    mem_a = ours.memory if isinstance(ours, Result) else None
    mem_b = theirs.memory if isinstance(theirs, Result) else None
    for label, attr in (("memory per idle connection, PSS kB", "pss_kb"),
                        ("memory per idle connection, RSS kB", "rss_kb")):  # fmt: skip
        va = getattr(mem_a, attr) if mem_a else None
        vb = getattr(mem_b, attr) if mem_b else None
        ratio = va / vb if va is not None and vb else None
        rows.append([label, fmt(va, ".0f"), fmt(vb, ".0f"),
                     fmt(ratio, ".2f") + ("x" if ratio else ""), "reported", "-"])  # fmt: skip
    table("IMAP, ours and Dovecot on the same messages (milliseconds unless said)",
          ["metric", "ours", "Dovecot", "ratio", "target", "verdict"], rows)  # fmt: skip

    details = []
    for name, result in results.items():
        if not isinstance(result, Result):
            continue
        for label, series in result.rows.items():
            details.append([name, label, fmt(series.median), fmt(series.p95), fmt(series.worst),
                            str(len(series.values)), fmt(series.cpu_ms),
                            " ".join(filter(None, [series.answer, series.note]))])  # fmt: skip
    if details:
        table("Spread of each operation (ms) and the server's CPU per operation",
              ["server", "operation", "p50", "p95", "max", "runs", "CPU ms/op", "answer"],
              details,
              ["CPU ms/op: the server's process tree (ours: and PostgreSQL) over the timed runs."])  # fmt: skip
    print()
    for name, result in results.items():
        if not isinstance(result, Result):
            continue
        mem = result.memory
        if mem is not None:
            extra = (f"; PostgreSQL +{mem.postgres_kb:.0f} kB PSS per connection"
                     if mem.postgres_kb is not None else "")  # fmt: skip
            print(f"{name}: server tree {mem.before_rss_mb:.0f} MB RSS before, "
                  f"+{mem.processes} processes for {mem.connections} connections{extra}; "
                  f"first SELECT of the new mailbox {fmt(result.first_select_ms)} ms")  # fmt: skip
        for line in result.described:
            print(f"{name}: {line}")
        for what, why in result.failures.items():
            print(f"{name}: FAILED {what}: {why}")
    answers = {
        label: {n: r.rows[label].answer for n, r in results.items() if isinstance(r, Result)
                and label in r.rows}
        for label in SEARCHES
    }  # fmt: skip
    for label, by in answers.items():
        if len(set(by.values())) > 1:
            print(f"WARNING: {label} answers differ: {by}")


# --------------------------------------------------------------------------- main


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a smoke run (2,000 messages, 5 runs)")  # fmt: skip
    parser.add_argument("--messages", type=int, default=10_000)
    parser.add_argument("--reps", type=int, default=20, help="timed runs per operation")
    parser.add_argument("--idle-reps", type=int, default=10, help="IDLE wake-ups measured")
    parser.add_argument("--idle-connections", type=int, default=100)
    parser.add_argument("--targets", default="ours,dovecot", help="ours, dovecot or both")
    parser.add_argument("--celery", type=int, default=2, help="ours: Celery prefork processes")
    parser.add_argument("--no-scan", action="store_true", help="ours: no clamd (a warning)")
    parser.add_argument("--keep", action="store_true", help="keep the work dirs")
    args = parser.parse_args()
    if args.quick:
        args.messages, args.reps, args.idle_reps, args.idle_connections = 2000, 5, 3, 20
    wanted = [t.strip().lower() for t in args.targets.split(",") if t.strip()]
    if not set(wanted) <= {"ours", "dovecot"}:
        raise SystemExit("--targets: ours, dovecot")

    work = Path(tempfile.mkdtemp(prefix="mssante-bench-imap-"))
    work.chmod(0o755)
    certs = Certificates(work / "tls")
    targets: list[Any] = []
    if "ours" in wanted:
        targets.append(OursTarget(certs, args))
    if "dovecot" in wanted:
        targets.append(DovecotTarget(certs))
    results: dict[str, Result | str] = {}
    try:
        for target in targets:
            why = target.unavailable()
            if why:
                say(f"{target.name}: not available ({why})")
                results[target.name] = why
        if all(isinstance(r, str) for r in results.values()) and len(results) == len(targets):
            report(results, args)
            return
        say(f"generating {args.messages} messages")
        messages = list(corpus.messages(args.messages, CORPUS_TO))
        say(f"{sum(map(len, messages)) / len(messages) / 1024:.1f} kB on average, "
            f"{sum(b'Content-Disposition: attachment' in m for m in messages)} with attachments")  # fmt: skip
        for target in targets:
            if target.name in results:
                continue
            try:
                results[target.name] = measure(target, messages, args)
            except (Exception, SystemExit) as exc:  # the other target still runs
                say(f"{target.name}: failed: {exc!r}"[:2000])
                results[target.name] = f"failed: {exc!r}"[:500]
            finally:
                target.stop()
        report(results, args)
    finally:
        for target in targets:
            target.stop()
        if not args.keep:
            import shutil

            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    harness.run(main)
