#!/usr/bin/env python
"""Benchmark of the delivery pipeline through its real entrance, against Postfix → Dovecot.

    .venv/bin/python scripts/bench/pipeline.py [--quick] [--messages 2000] [--no-anchor]

On a private stack (scripts/bench/harness.py: durable PostgreSQL, Redis, clamd scanning,
Celery prefork x 2 + beat, gunicorn x 2), load processes POST 20 kB messages to
``/api/v1/messages`` with the bearer tokens of applicative boxes, and the run lasts until
the last recipient's entry is in its inbox (one COUNT query every 50 ms):

- P1: delivered messages per second for 1, 10 and 40 recipients, and through
  ``POST /api/v1/messages/batch`` (skipped, with a note, while that answers 404), as a
  ratio to Postfix → Dovecot sending to as many recipients, measured in this invocation
  (scripts/bench/anchor.py) before and, unless --quick, after our runs;
- CPU milliseconds per message of every process group and all together (the load
  generator excluded, as the anchor excludes its own), the other processes' share of the
  machine during the run and the load average before → after;
- P5: during the 1-recipient run, a probe submits one message every 200 ms to a box of
  its own and times submit → entry in the inbox (p50/p95/max);
- P6: the largest RSS of a gunicorn worker and of a Celery worker after the runs.
"""

from __future__ import annotations

import argparse
import http.client
import itertools
import json
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import anchor
import harness
import population
from harness import (
    NCPU,
    Measure,
    Sizes,
    Stack,
    cpu_cells,
    fmt,
    load_pool,
    percentile,
    say,
    table,
    verdict,
)
from population import TEXT, Box

ROOT = Path(__file__).resolve().parents[2]
SINGLE = "/api/v1/messages"
BATCH = "/api/v1/messages/batch"
GROUPS = ("postgres", "redis", "clamd", "web", "celery")
CPU_TARGET_MS = 12.0
P5_TARGET_MS = 1000.0
RSS_TARGETS = {"web": 150.0, "celery": 200.0}


# --------------------------------------------------------------------------- load processes


def _shard(args: tuple[int, str, list[str], int, int, int, int, list[str], int]) -> tuple[int, int, list[str]]:  # fmt: skip
    """One load process: a thread per token, each with its own HTTP connection."""
    port, path, tokens, shard, shards, messages, rcpts, pool, per_request = args
    mine = list(range(shard, messages, shards))
    chunks = [mine[i : i + per_request] for i in range(0, len(mine), per_request)]
    counter = itertools.count()
    lock = threading.Lock()
    done = [0, 0]
    errors: list[str] = []

    def one(i: int) -> dict[str, Any]:
        to = [pool[(i * rcpts + j) % len(pool)] for j in range(rcpts)]
        return {"to": to, "subject": f"Compte rendu {i}", "text": TEXT}

    def worker(token: str) -> None:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=600)
        headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
        while (k := next(counter)) < len(chunks):
            chunk = chunks[k]
            body = one(chunk[0]) if path == SINGLE else {"messages": [one(i) for i in chunk]}
            try:
                conn.request("POST", path, json.dumps(body).encode(), headers)
                response = conn.getresponse()
                data = response.read()
                if response.will_close:
                    conn.close()
            except (OSError, http.client.HTTPException) as exc:
                conn.close()
                with lock:
                    done[1] += len(chunk)
                    errors.append(repr(exc)[:200])
                continue
            if path == SINGLE:
                good = int(response.status == 201)
            elif response.status == 200:
                good = sum(r.get("status") == 201 for r in json.loads(data).get("results", []))
            else:
                good = 0
            with lock:
                done[0] += good
                done[1] += len(chunk) - good
                if good < len(chunk) and len(errors) < 3:
                    errors.append(f"{response.status} {data[:200]!r}")

    threads = [threading.Thread(target=worker, args=(t,)) for t in tokens]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return done[0], done[1], errors


# --------------------------------------------------------------------------- P5 probe


class Probe:
    """Submits one message every ``interval`` to its own box; times submit → entry exists."""

    def __init__(self, stack: Stack, sender: Box, box: Box, interval: float = 0.2) -> None:
        import psycopg

        self.port, self.sender, self.box, self.interval = stack.ports["web"], sender, box, interval
        self.db = psycopg.connect(stack.app_url, autocommit=True)
        self.after = population.last_entry(self.db.cursor())
        self.submitted: dict[str, float] = {}
        self.seen: dict[str, float] = {}
        self.failed = 0
        self.stopping = threading.Event()
        self.threads = [
            threading.Thread(target=self._post, daemon=True),
            threading.Thread(target=self._check, daemon=True),
        ]

    def start(self) -> None:
        for t in self.threads:
            t.start()

    def _post(self) -> None:
        n = 0
        while not self.stopping.is_set():
            start = time.perf_counter()
            payload = {"to": [self.box.address], "subject": f"Sonde {n}", "text": TEXT}
            status, body = population.post(self.port, self.sender.token, payload)
            if status == 201:
                self.submitted[str(body["id"])] = start
            else:
                self.failed += 1
            n += 1
            self.stopping.wait(max(0.0, self.interval - (time.perf_counter() - start)))

    def _check(self) -> None:
        cursor = self.db.cursor()
        while not self.stopping.is_set() or len(self.seen) < len(self.submitted):
            cursor.execute(
                "SELECT m.public_id FROM mailboxes_entry e JOIN mailboxes_message m "
                "ON m.id = e.message_id WHERE e.folder_id = %s AND e.id > %s",
                (self.box.inbox, self.after),
            )
            now = time.perf_counter()
            for (public_id,) in cursor.fetchall():
                self.seen.setdefault(str(public_id), now)
            if self.stopping.is_set() and now - self.stopped_at > 120:
                break
            time.sleep(0.02)

    def stop(self) -> None:
        self.stopped_at = time.perf_counter()
        self.stopping.set()
        self.threads[0].join()

    def join(self) -> list[float]:
        """Wait for the probe's last messages; their latencies in ms."""
        self.threads[1].join()
        self.db.close()
        return [1000 * (self.seen[k] - t) for k, t in self.submitted.items() if k in self.seen]

    @property
    def count(self) -> int:
        return len(self.submitted)


# --------------------------------------------------------------------------- one row


@dataclass
class Row:
    label: str
    rcpts: int
    messages: int
    accepted_per_s: float | None = None
    delivered_per_s: float | None = None
    measure: Measure | None = None
    delivered: int = 0  # messages whose every recipient has the entry
    errors: int = 0
    first_errors: list[str] | None = None
    complete: bool = True
    extra: int = 0  # probe messages delivered in the same window
    latencies: list[float] = field(default_factory=list)  # P5, ms
    skipped: str = ""


def run_row(
    stack: Stack, row: Row, senders: list[Box], pool: list[Box], path: str, per_request: int,
    processes: int, probe: Probe | None = None,
) -> Row:  # fmt: skip
    import psycopg

    tokens = [s.token for s in senders]
    shards = [
        (stack.ports["web"], path, tokens[p::processes], p, processes, row.messages, row.rcpts,
         [b.address for b in pool], per_request)
        for p in range(processes)
    ]  # fmt: skip
    folders = [b.inbox for b in pool]
    with psycopg.connect(stack.app_url, autocommit=True) as db:
        cursor = db.cursor()
        after = population.last_entry(cursor)
        say(f"{row.label}: {row.messages} messages")
        window = stack.window().start()
        if probe is not None:
            probe.start()
        try:
            with load_pool(processes) as workers:
                parts = workers.map(_shard, shards)
            accept_s = time.perf_counter() - window.t0
        finally:
            if probe is not None:
                probe.stop()
        row.accepted_per_s = sum(p[0] for p in parts) / accept_s
        accepted = sum(p[0] for p in parts)
        row.errors = sum(p[1] for p in parts)
        row.first_errors = [e for p in parts for e in p[2]][:3]
        row.complete = population.wait_entries(cursor, folders, after, accepted * row.rcpts)
        row.latencies = probe.join() if probe is not None else []
        row.measure = window.stop()
        row.delivered = population.count_entries(cursor, folders, after) // row.rcpts
        row.extra = len(row.latencies)
        row.delivered_per_s = (row.delivered + row.extra) / row.measure.seconds
    return row


# --------------------------------------------------------------------------- main


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a smoke run (small sizes, one anchor run)")  # fmt: skip
    parser.add_argument("--messages", type=int, default=2000, help="messages of the 1-recipient run")  # fmt: skip
    parser.add_argument("--recipients", default="1,10,40", help="recipient counts to run")
    parser.add_argument("--batch-size", type=int, default=100, help="messages per batch request")
    parser.add_argument("--load-processes", type=int, default=2)
    parser.add_argument("--concurrency", type=int, default=10, help="connections, all processes")
    parser.add_argument("--web-workers", type=int, default=2)
    parser.add_argument("--web-threads", type=int, default=1, help=">1: gthread workers")
    parser.add_argument("--celery", type=int, default=2, help="Celery prefork processes")
    parser.add_argument("--no-scan", action="store_true", help="no clamd (prints a warning)")
    parser.add_argument("--no-anchor", action="store_true", help="skip Postfix → Dovecot")
    parser.add_argument("--keep", action="store_true", help="keep the work dir")
    args = parser.parse_args()
    if args.quick:
        args.messages = min(args.messages, 150)
    counts = [int(r) for r in args.recipients.split(",")]
    sizes = {r: max(10, args.messages // (1 if r == 1 else 4 if r <= 10 else 10)) for r in counts}
    why_not = None if not args.no_anchor else "--no-anchor"
    why_not = why_not or anchor.available()

    stack = Stack(
        "pipeline",
        Sizes(args.web_workers, args.web_threads, args.celery, scan=not args.no_scan),
        keep=args.keep,
        # 600 requests per minute and token would cap the load: documented setting.
        extra_env={"API_RATE_LIMIT": "1000000000"},
    )
    anchors: list[dict[int, anchor.AnchorRow]] = []
    rows: list[Row] = []
    with stack:
        if why_not is None:
            anchors.append(anchor.run(stack, "before", messages=sizes, concurrency=args.concurrency, tls=False, warmup=50 if args.quick else 200))  # fmt: skip
        stack.start_storage()
        stack.migrate()
        pool = population.boxes(40)
        probe_box = population.boxes(1)[0]
        senders = [population.software(f"logiciel{i}") for i in range(args.concurrency)]
        probe_sender = population.software("sonde")
        stack.start_app()
        batch_ok = warm_up(stack, senders[0], pool)
        for r in counts:
            probe = Probe(stack, probe_sender, probe_box) if r == 1 else None
            row = Row(f"{r} rcpt" + (" + P5 probe" if probe else ""), r, sizes[r])
            rows.append(run_row(stack, row, senders, pool, SINGLE, 1, args.load_processes, probe))
        batch = Row(f"batch x{args.batch_size}/request, 1 rcpt", 1, sizes.get(1, args.messages))
        if batch_ok:
            rows.append(run_row(stack, batch, senders, pool, BATCH, args.batch_size, args.load_processes))  # fmt: skip
        else:
            batch.skipped = f"POST {BATCH} does not exist in this tree (404/405): row skipped"
            rows.append(batch)
        rss = stack.rss()
        described = stack.describe()
        stack.stop()
        if why_not is None and not args.quick:
            anchors.append(anchor.run(stack, "after", messages=sizes, concurrency=args.concurrency, tls=False))  # fmt: skip
    report(args, rows, anchors, rss, described, why_not)


def warm_up(stack: Stack, sender: Box, pool: list[Box]) -> bool:
    """20 messages through the whole pipeline; True when the batch entrance exists."""
    import psycopg

    with psycopg.connect(stack.app_url, autocommit=True) as db:
        cursor = db.cursor()
        after = population.last_entry(cursor)
        for i in range(20):
            payload = {"to": [pool[i].address], "subject": "Mise en route", "text": TEXT}
            status, body = population.post(stack.ports["web"], sender.token, payload)
            if status != 201:
                raise SystemExit(f"POST {SINGLE} answered {status}: {body}")
        status, body = population.post(
            stack.ports["web"], sender.token,
            {"messages": [{"to": [pool[0].address], "subject": "Mise en route", "text": TEXT}]}, BATCH,
        )  # fmt: skip
        batch_ok = status not in (404, 405)  # 405: only GET /messages/{id} matches
        expected = 20 + (1 if status == 200 else 0)
        if not population.wait_entries(cursor, [b.inbox for b in pool], after, expected, 60):
            raise SystemExit("the warm-up messages were not delivered within a minute")
    return batch_ok


def report(
    args: argparse.Namespace, rows: list[Row], anchors: list[dict[int, anchor.AnchorRow]],
    rss: dict[str, float], described: list[str], why_not: str | None,
) -> None:  # fmt: skip
    def postfix(rcpts: int) -> tuple[float | None, float | None]:
        found = [a[rcpts] for a in anchors if rcpts in a]
        if not found:
            return None, None
        n = len(found)
        return sum(a.delivered_per_s for a in found) / n, sum(a.cpu_ms for a in found) / n

    headers = ["run", "msgs", "accepted/s", "delivered/s", "Postfix/s", "ratio", "target", "met",
               *[f"{g} ms" for g in GROUPS], "all ms", "Postfix ms", "other %", "load"]  # fmt: skip
    lines = []
    for row in rows:
        if row.skipped:
            lines.append([row.label] + ["-"] * (len(headers) - 1))
            continue
        rate, cpu = postfix(row.rcpts)
        ratio = row.delivered_per_s / rate if rate and row.delivered_per_s else None
        count = row.delivered + row.extra
        m = row.measure
        lines.append([
            row.label, f"{row.messages}" + (f"+{row.extra}" if row.extra else ""),
            fmt(row.accepted_per_s), fmt(row.delivered_per_s), fmt(rate),
            fmt(ratio, ".2f") + ("x" if ratio else ""), "≥ 1.0x", verdict(ratio, 1.0, at_least=True),
            *cpu_cells(m, count, GROUPS), fmt(cpu), fmt(m.other_pct if m else None, ".0f"),
            m.load if m else "-",
        ])  # fmt: skip
    notes = [
        f"{r.label}: {r.errors} refused or failed, first: {r.first_errors}"
        for r in rows
        if r.errors
    ]
    notes += [f"{r.label}: INCOMPLETE, {r.delivered} of {r.messages} delivered" for r in rows if not r.complete]  # fmt: skip
    notes += [f"{r.label}: {r.skipped}" for r in rows if r.skipped]
    first = next((r for r in rows if r.rcpts == 1 and r.measure), None)
    if first and first.measure:
        per = first.measure.ms_per(first.delivered + first.extra)["all"]
        notes.append(
            f"P1 CPU per message, all processes, 1 recipient: {per:.1f} ms "
            f"(target ≤ {CPU_TARGET_MS:.0f} ms: {verdict(per, CPU_TARGET_MS, at_least=False)})"
        )
    lat = [ms for r in rows for ms in r.latencies]
    p95 = percentile(lat, 95)
    notes.append(
        f"P5 submit → entry in the inbox under the 1-recipient load ({len(lat)} probes, one every "
        f"200 ms): p50 {fmt(percentile(lat, 50), '.0f')} ms, p95 {fmt(p95, '.0f')} ms, max "
        f"{fmt(max(lat) if lat else None, '.0f')} ms (target p95 ≤ {P5_TARGET_MS:.0f} ms: "
        f"{verdict(p95, P5_TARGET_MS, at_least=False)})"
    )
    notes.append(
        "P6 largest RSS after the runs: gunicorn worker "
        f"{rss['web']:.0f} MB (target ≤ {RSS_TARGETS['web']:.0f}: "
        f"{verdict(rss['web'], RSS_TARGETS['web'], at_least=False)}), Celery worker "
        f"{rss['celery']:.0f} MB (target ≤ {RSS_TARGETS['celery']:.0f}: "
        f"{verdict(rss['celery'], RSS_TARGETS['celery'], at_least=False)})"
    )
    if why_not:
        notes.append(f"Postfix → Dovecot not measured: {why_not}")
    notes += [anchor.describe(tag, found) for tag, found in zip(("before", "after"), anchors, strict=False)]  # fmt: skip
    notes.append(
        "Postfix/s: mean of the runs above; 1 rcpt by anchor-mailstack (smtp-source), 10 and "
        "40 by its Postfix/Dovecot with our generator of R RCPT TO (scripts/bench/anchor.py)"
    )
    notes += described
    notes.append(
        f"load: {args.load_processes} processes x {args.concurrency // args.load_processes} "
        f"connections (one applicative box and token each), 20 kB text, POST {SINGLE}; "
        f"delivered = the last recipient's entry is in its inbox; {NCPU} cores; CPU ms per "
        "message, generator excluded; other % = the rest of the machine's CPU during the run"
    )
    table(
        "P1 — end to end over HTTP (POST → scanned → delivered → in the inbox) vs Postfix → Dovecot",
        headers, lines, notes,
    )  # fmt: skip


if __name__ == "__main__":
    harness.run(main)
