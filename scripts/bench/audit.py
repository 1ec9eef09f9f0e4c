#!/usr/bin/env python
"""Benchmark of the audit journal's hot path: concurrent writers, each event its own transaction.

    DATABASE_URL=postgres://app:app@127.0.0.1:55432/bench_audit \\
        .venv/bin/python scripts/bench/audit.py [--processes 4] [--events 500] [--per-transaction 1]

Starts nothing: it needs a PostgreSQL database already migrated by this tree's
``manage.py migrate`` (the schema owner runs it; the benchmark may then log in as the
application's role). N processes each record M events with ``audit.journal.record``,
``--per-transaction`` events per transaction (a stored message journals about 3), all
at once behind a barrier. Printed: events per second over the whole run, the writers'
CPU per event (the Python side) and, when PostgreSQL runs on this host, the CPU its
backends spent for them (read from /proc). When the journal has a sealer
(``audit.seals.seal``), one more process seals every ``--seal-every`` seconds during the
run, as Celery beat does, and its CPU per sealed event is printed too; then the journal
is verified once (``verify_chain``) and that time is printed. No speed target here:
the numbers are for the report, measured alone on the machine (see scripts/bench/).

The rows it writes stay in that database (action ``bench.event``): use a scratch one.
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def _environment() -> None:
    if not os.environ.get("DATABASE_URL", "").startswith(("postgres://", "postgresql://")):
        raise SystemExit("DATABASE_URL must name a PostgreSQL database (migrated beforehand)")
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "mssante.settings")
    os.environ.setdefault("MSSANTE_IGNORE_DOTENV", "true")
    # The same AUDIT_KEYS for every process (generated there on the first run).
    os.environ.setdefault("MSSANTE_VAR_DIR", str(Path(tempfile.gettempdir()) / "bench-audit-var"))
    os.environ.setdefault("LOG_LEVEL", "WARNING")
    os.environ.setdefault("AUDIT_ANCHOR_FILE", "")
    # Each process seals on its own schedule here; no broker is needed.
    os.environ.pop("CELERY_BROKER_URL", None)
    sys.path.insert(0, str(ROOT))


def _setup() -> None:
    import django

    django.setup()
    from mssante.celery import app

    # A trigger of the sealer after commit must not wait on a broker: in-process.
    app.conf.task_always_eager = True


def _backend_cpu(pid: int) -> float | None:
    """Seconds of CPU PostgreSQL's backend ``pid`` used so far (same host only)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS


def _used(before: float | None, after: float | None) -> float | None:
    return after - before if before is not None and after is not None else None


def _backend_pid() -> int:
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_backend_pid()")
        pid: int = cursor.fetchone()[0]
    return pid


def _writer(number: int, events: int, per_transaction: int, barrier: Any, results: Any) -> None:
    _setup()
    from django.db import transaction

    from audit import journal

    journal.record("bench.warmup", object_id=number)  # connection, caches, keys
    pid = _backend_pid()
    barrier.wait()
    server, cpu, started = _backend_cpu(pid), time.process_time(), time.perf_counter()
    done = 0
    while done < events:
        with transaction.atomic():
            for _ in range(min(per_transaction, events - done)):
                journal.record("bench.event", object_id=f"{number}-{done}", n=done)
                done += 1
    wall, cpu = time.perf_counter() - started, time.process_time() - cpu
    results.put(("writer", wall, cpu, _used(server, _backend_cpu(pid))))


def _sealer(every: float, stop: Any, results: Any) -> None:
    _setup()
    from audit import seals

    pid = _backend_pid()
    server, cpu = _backend_cpu(pid), time.process_time()
    sealed = 0
    while not stop.wait(every):
        sealed += seals.seal().rows
    sealed += seals.seal().rows
    cpu = time.process_time() - cpu
    results.put(("sealer", sealed, cpu, _used(server, _backend_cpu(pid))))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--processes", type=int, default=4)
    parser.add_argument("--events", type=int, default=500, help="events per process")
    parser.add_argument("--per-transaction", type=int, default=1)
    parser.add_argument("--seal-every", type=float, default=2.0, help="seconds (new journal)")
    args = parser.parse_args()
    _environment()
    _setup()
    from django.db import connection

    from audit import journal

    has_sealer = (ROOT / "audit" / "seals.py").exists()
    connection.close()

    context = multiprocessing.get_context("spawn")
    barrier = context.Barrier(args.processes + 1)
    results = context.Queue()
    stop = context.Event()
    writers = [
        context.Process(
            target=_writer, args=(n, args.events, args.per_transaction, barrier, results)
        )
        for n in range(args.processes)
    ]
    for process in writers:
        process.start()
    sealer = None
    if has_sealer:
        sealer = context.Process(target=_sealer, args=(args.seal_every, stop, results))
        sealer.start()
    barrier.wait()
    started = time.perf_counter()
    outcomes = [results.get() for _ in writers]
    wall = time.perf_counter() - started
    stop.set()
    sealed = results.get() if sealer is not None else None
    for process in [*writers, *([sealer] if sealer else [])]:
        process.join()

    total = args.processes * args.events
    client = sum(o[2] for o in outcomes)
    servers = [o[3] for o in outcomes]
    server = sum(s for s in servers if s is not None) if None not in servers else None
    print(
        f"audit journal: {args.processes} process(es) x {args.events} events, "
        f"{args.per_transaction} per transaction, load {os.getloadavg()[0]:.2f}"
    )
    print(f"  events/s                 {total / wall:10.0f}   ({total} in {wall:.2f} s)")
    print(f"  writers' CPU per event   {client / total * 1000:10.3f} ms (Python)")
    if server is not None:
        print(f"  PostgreSQL CPU per event {server / total * 1000:10.3f} ms (their backends)")
        print(f"  total CPU per event      {(client + server) / total * 1000:10.3f} ms")
    if sealed is not None:
        _, rows, cpu, backend = sealed
        extra = (
            f" + {backend / max(rows, 1) * 1000:.3f} ms PostgreSQL" if backend is not None else ""
        )
        print(
            f"  sealer (every {args.seal_every:g} s)   {cpu / max(rows, 1) * 1000:10.3f} ms "
            f"CPU per sealed event{extra} ({rows} sealed)"
        )
    started, cpu = time.perf_counter(), time.process_time()
    broken = journal.verify_chain()
    print(
        f"  verify_chain             {time.perf_counter() - started:10.2f} s, "
        f"{(time.process_time() - cpu) * 1000:.0f} ms CPU: "
        f"{'intact' if broken is None else broken.reason}"
    )


if __name__ == "__main__":
    main()
