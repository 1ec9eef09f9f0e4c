#!/usr/bin/env python
"""Benchmark of the message pipeline and of the inbox page, on the real services.

    .venv/bin/python scripts/bench/pipeline.py [--messages 200] [--keep] [--anchor]

Needs PostgreSQL and Redis from ``scripts/services start``. The benchmark creates
its own database (``webmail_bench``), its own Redis database and its own prefork
Celery worker (two processes, as on the two-core test box), so it measures the
code of this tree and never touches the test or demo data.

1. End to end: messages per second from the first ``submit_message`` to the
   last recipient entry written by the worker, for 1, 10 and 40 recipients
   (20 kB bodies, one submitting process, as the web tier would).
2. Inbox page: p50/p95 of ``mailboxes.selectors.folder_page`` (50 entries, newest
   first, message joined) on the first page and on deep keyset pages, with 10 000
   and 100 000 messages in the folder (rows bulk-inserted).

``--anchor`` also runs ../shared/bench/anchor-mailstack (Postfix → Dovecot) in the
same invocation and prints the ratio; without it the ratio uses the figure
RECIPES.md records for this kind of machine (182 msg/s).
"""

from __future__ import annotations

import argparse
import os
import random
import re
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from datetime import timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
# The schema owner: it creates the benchmark database (the app role may not).
PG = os.environ.get("BENCH_PG", "postgres://mssante_owner:owner@127.0.0.1:55432")
BENCH_DB = "webmail_bench"
BROKER = os.environ.get("BENCH_BROKER", "redis://127.0.0.1:56379/9")
POSTFIX_REFERENCE = 182.0  # msg/s, RECIPES.md, 20 kB, 1 recipient, concurrency 10

WORK = Path(tempfile.mkdtemp(prefix="mssante-bench-"))
os.environ.update(
    {
        "DJANGO_SETTINGS_MODULE": "mssante.settings",
        "DATABASE_URL": f"{PG}/{BENCH_DB}",
        "CELERY_BROKER_URL": BROKER,
        "MSSANTE_VAR_DIR": str(WORK / "var"),
        "MSSANTE_IGNORE_DOTENV": "true",
        "LOG_LEVEL": "WARNING",
    }
)
sys.path.insert(0, str(ROOT))


def recreate_database() -> None:
    import psycopg

    with psycopg.connect(f"{PG}/postgres", autocommit=True) as conn:
        conn.execute(f"DROP DATABASE IF EXISTS {BENCH_DB} WITH (FORCE)")
        conn.execute(f"CREATE DATABASE {BENCH_DB}")


def drop_database() -> None:
    import psycopg

    with psycopg.connect(f"{PG}/postgres", autocommit=True) as conn:
        conn.execute(f"DROP DATABASE IF EXISTS {BENCH_DB} WITH (FORCE)")


def start_worker() -> subprocess.Popen[bytes]:
    import redis

    redis.Redis.from_url(BROKER).flushdb()
    log = (WORK / "worker.log").open("wb")
    proc = subprocess.Popen(
        [sys.executable, "-m", "celery", "-A", "mssante", "worker", "--pool=prefork",
         "--concurrency=" + os.environ.get("BENCH_CONCURRENCY", "2"), "--without-gossip", "--without-mingle", "--loglevel=" + os.environ.get("BENCH_WORKER_LOG", "WARNING")],
        cwd=ROOT, env={**os.environ, "MSSANTE_MASTER_KEYS": master_keys()},
        stdout=log, stderr=subprocess.STDOUT,
    )  # fmt: skip
    from mssante.celery import app

    deadline = time.monotonic() + 30
    while not app.control.ping(timeout=0.5):
        if proc.poll() is not None or time.monotonic() > deadline:
            raise SystemExit("the Celery worker did not start; see " + str(WORK / "worker.log"))
    return proc


def stop_worker(proc: subprocess.Popen[bytes]) -> None:
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(timeout=30)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def master_keys() -> str:
    from django.conf import settings

    return str(settings.MSSANTE_MASTER_KEYS)


def setup_django() -> None:
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0)


def people(n: int) -> list[Any]:
    from accounts import services as accounts
    from mailboxes import services
    from mailboxes.models import HostedDomain
    from mssante.lib.identifiers import make_rpps

    domain, _ = HostedDomain.objects.get_or_create(name="bench.mssante.test")
    boxes = []
    for i in range(n):
        user = accounts.create_professional(
            identifier=make_rpps(f"10{i + 1:08d}"),
            first_name="Dominique",
            last_name=f"Essai{i}",
            profession_code="10",
        )
        boxes.append(services.create_personal_mailbox(user, domain))
    return boxes


def end_to_end(sender: Any, recipients: list[Any], messages: int) -> dict[str, float]:
    from mailboxes import services
    from mailboxes.models import Delivery

    body = ("Compte rendu de consultation. " * 700)[:20_000]
    to = [box.address for box in recipients]
    expected = Delivery.objects.filter(status=Delivery.Status.DELIVERED).count() + messages * len(
        to
    )
    start = time.perf_counter()
    for i in range(messages):
        services.submit_message(
            mailbox=sender, author=sender.owner, to=to, cc=[], subject=f"Essai {i}", text=body
        )
    submitted = time.perf_counter() - start
    while Delivery.objects.filter(status=Delivery.Status.DELIVERED).count() < expected:
        if time.perf_counter() - start > 600:
            raise SystemExit("deliveries did not finish within 10 minutes")
        time.sleep(0.02)
    elapsed = time.perf_counter() - start
    return {
        "recipients": len(to),
        "messages": messages,
        "accepted_per_s": messages / submitted,
        "messages_per_s": messages / elapsed,
        "deliveries_per_s": messages * len(to) / elapsed,
        "seconds": elapsed,
    }


def fill_folder(owner_box: Any, count: int) -> Any:
    """Bulk-insert ``count`` messages into the inbox of ``owner_box``."""
    from django.db import connection
    from django.utils import timezone

    from mailboxes.models import Entry, Folder, Message

    inbox = Folder.objects.get(mailbox=owner_box, role=Folder.Role.INBOX)
    now = timezone.now()
    batch = 5000
    for offset in range(0, count, batch):
        rows = []
        for i in range(offset, min(count, offset + batch)):
            when = now - timedelta(seconds=count - i)
            mid = f"<{uuid.uuid4().hex}@bench.mssante.test>"
            rows.append(
                Message(
                    message_id=mid,
                    thread_key=mid[1:-1],
                    from_addr=f"expediteur{i % 300}@bench.mssante.test",
                    from_name=f"Expéditeur {i % 300}",
                    to_addrs=[owner_box.address],
                    subject=f"Résultats du patient {i}",
                    date=when,
                    size=20_000 + i % 5000,
                    attachments=[
                        {
                            "index": 2,
                            "filename": "cr.pdf",
                            "content_type": "application/pdf",
                            "size": 1000,
                        }
                    ]
                    if i % 4 == 0
                    else [],
                    scan_status=Message.ScanStatus.NOT_SCANNED,
                    blob_name=f"bench/{uuid.uuid4().hex}",
                    key_id="k1",
                    wrapped_key=b"\0" * 61,
                    created_at=when,
                )
            )
        created = Message.objects.bulk_create(rows)
        Entry.objects.bulk_create(
            Entry(mailbox=owner_box, message=m, folder=inbox, seen=bool(j % 3), received_at=m.date)
            for j, m in enumerate(created)
        )
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE mailboxes_entry")
        cursor.execute("ANALYZE mailboxes_message")
    return inbox


def page_timings(folder: Any, runs: int) -> dict[str, float]:
    from django.db import connection

    from mailboxes import selectors

    first: list[float] = []
    deep: list[float] = []
    cursors: list[str | None] = [None]
    page = selectors.folder_page(folder)
    for _ in range(40):  # walk 40 pages deep to collect real cursors
        if not page.next_cursor:
            break
        cursors.append(page.next_cursor)
        page = selectors.folder_page(folder, before=page.next_cursor)
    executed: list[str] = []

    def count(execute: Any, sql: str, params: Any, many: bool, context: Any) -> Any:
        executed.append(sql)
        return execute(sql, params, many, context)

    with connection.execute_wrapper(count):
        _ = [e.message.subject for e in selectors.folder_page(folder).entries]
    for _ in range(runs):
        t = time.perf_counter()
        rows = selectors.folder_page(folder).entries
        _ = [e.message.subject for e in rows]
        first.append((time.perf_counter() - t) * 1000)
        cursor = random.choice(cursors[1:] or [None])
        t = time.perf_counter()
        rows = selectors.folder_page(folder, before=cursor).entries
        _ = [e.message.subject for e in rows]
        deep.append((time.perf_counter() - t) * 1000)

    def p95(values: list[float]) -> float:
        return statistics.quantiles(values, n=20)[-1]

    return {
        "first_p50_ms": statistics.median(first),
        "first_p95_ms": p95(first),
        "deep_p50_ms": statistics.median(deep),
        "deep_p95_ms": p95(deep),
        "queries": len(executed),
    }


def run_anchor() -> float | None:
    script = ROOT.parent / "shared" / "bench" / "anchor-mailstack"
    if not script.exists():
        script = Path("/work/shared/bench/anchor-mailstack")
    print("Running the Postfix → Dovecot anchor (this installs and starts Postfix and Dovecot)…")
    out = subprocess.run(
        ["bash", str(script), "--targets", "postfix", "--reps", "1", "-n", "2000"],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    match = re.search(r"delivered[^\n]*?median[^\d]*([\d.]+)", out.stdout) or re.search(
        r"delivered msg/s[^\d]*([\d.]+)", out.stdout
    )
    if not match:
        print(out.stdout[-2000:], out.stderr[-2000:])
        return None
    return float(match.group(1))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=200, help="messages per run (1 recipient)")
    parser.add_argument("--sizes", default="10000,100000", help="inbox sizes for the page timings")
    parser.add_argument("--page-runs", type=int, default=200)
    parser.add_argument("--keep", action="store_true", help="keep the bench database")
    parser.add_argument("--anchor", action="store_true", help="run anchor-mailstack too")
    args = parser.parse_args()

    recreate_database()
    setup_django()
    worker = start_worker()
    try:
        boxes = people(41)
        sender, recipients = boxes[0], boxes[1:]
        end_to_end(sender, recipients[:1], 20)  # warm-up: connections, imports
        results = []
        for count in (1, 10, 40):
            # Fewer messages for more recipients keeps each run near the same work.
            n = max(20, args.messages // max(1, count // 5 or 1))
            results.append(end_to_end(sender, recipients[:count], n))
    finally:
        stop_worker(worker)

    anchor = run_anchor() if args.anchor else None
    reference = anchor or POSTFIX_REFERENCE
    source = "measured now" if anchor else "RECIPES.md reference"
    print()
    print(
        "End to end, submit → delivered (PostgreSQL, Redis, prefork worker, 2 processes, 20 kB bodies)"
    )
    print(
        f"{'recipients':>10} {'messages':>9} {'accepted/s':>11} {'messages/s':>11} {'deliveries/s':>13} {'vs Postfix→Dovecot':>19}"
    )
    for r in results:
        print(
            f"{r['recipients']:>10} {r['messages']:>9} {r['accepted_per_s']:>11.1f} "
            f"{r['messages_per_s']:>11.1f} {r['deliveries_per_s']:>13.1f} "
            f"{r['deliveries_per_s'] / reference:>18.2f}x"
        )
    print(f"(Postfix → Dovecot delivered {reference:.0f} msg/s, {source}; ratio on deliveries/s)")

    print()
    print("Inbox page: selectors.folder_page(folder), 50 entries, message joined")
    print(
        f"{'messages':>9} {'first p50':>10} {'first p95':>10} {'deep p50':>9} {'deep p95':>9} {'queries':>8}"
    )
    for size in (int(s) for s in args.sizes.split(",")):
        box = people_box(size)
        folder = fill_folder(box, size)
        t = page_timings(folder, args.page_runs)
        print(
            f"{size:>9} {t['first_p50_ms']:>8.2f}ms {t['first_p95_ms']:>8.2f}ms "
            f"{t['deep_p50_ms']:>7.2f}ms {t['deep_p95_ms']:>7.2f}ms {t['queries']:>8}"
        )
    if not args.keep:
        from django.db import connections

        connections.close_all()
        drop_database()


def people_box(size: int) -> Any:
    from mailboxes import services
    from mailboxes.models import HostedDomain

    domain = HostedDomain.objects.get(name="bench.mssante.test")
    return services.create_mailbox("APP", f"inbox-{size}@bench.mssante.test", domain)


if __name__ == "__main__":
    main()
