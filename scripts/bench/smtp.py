#!/usr/bin/env python
"""Benchmark of inbound SMTP with mutual TLS into the inbox, against Postfix → Dovecot with TLS.

    .venv/bin/python scripts/bench/smtp.py [--quick] [--messages 2000] [--no-anchor]

On a private stack (scripts/bench/harness.py: durable PostgreSQL, Redis, clamd scanning,
Celery prefork x 2 + beat), ``manage.py smtpd`` (with ``--processes N`` when this tree
has it) receives 20 kB messages, one recipient each, spread over ten boxes, from two load
processes x 5 connections, one message per connection, STARTTLS with a client
certificate whose DN the liste blanche lists for the sender's domain (certificates made
with trustme). Accepted = the last 250; delivered = the last entry in its inbox, after
the worker's scan and delivery (one COUNT query every 50 ms).

In the same invocation: Postfix → Dovecot with STARTTLS (scripts/bench/anchor.py), before
and, unless --quick, after our run; and, as a secondary line, a bare aiosmtpd server with
the same mutual TLS that writes and fsyncs each message (--no-bare to skip it).
"""

from __future__ import annotations

import argparse
import itertools
import os
import signal
import smtplib
import socket
import ssl
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path
from typing import Any

import anchor
import harness
import population
from harness import (
    Measure,
    Sizes,
    Stack,
    Window,
    cpu_cells,
    fmt,
    free_port,
    load_pool,
    say,
    smtp_greets,
    table,
    verdict,
    wait_for,
)

PEER = "peer.mssante.test"
PEER_DN = f"CN=mx.{PEER},OU=123456789,O=Operateur pair"
GROUPS = ("postgres", "redis", "clamd", "celery", "smtpd")


# --------------------------------------------------------------------------- material


def make_material(folder: Path) -> dict[str, str]:
    """A CA, our gateway's certificate and the peer's client certificate (trustme)."""
    import trustme

    folder.mkdir()
    ca = trustme.CA()
    files: dict[str, str] = {"ca": str(folder / "ca.pem")}
    ca.cert_pem.write_to_path(files["ca"])
    for name, cn, org in (
        ("server", f"mx.{population.DOMAIN}", "Operateur banc"),
        ("peer", f"mx.{PEER}", "Operateur pair"),
    ):
        leaf = ca.issue_cert("127.0.0.1", "localhost", common_name=cn, organization_name=org,
                             organization_unit_name="123456789")  # fmt: skip
        files[f"{name}_cert"] = str(folder / f"{name}.pem")
        files[f"{name}_key"] = str(folder / f"{name}.key")
        leaf.cert_chain_pems[0].write_to_path(files[f"{name}_cert"])
        leaf.private_key_pem.write_to_path(files[f"{name}_key"])
    return files


def message_bytes(i: int, to: str) -> bytes:
    body = population.TEXT.replace("\n", "\r\n")
    return (
        f"From: Dr Pair <dr.pair@{PEER}>\r\nTo: {to}\r\nSubject: Compte rendu {i}\r\n"
        f"Message-ID: <{uuid.uuid4().hex}@{PEER}>\r\nDate: Sat, 28 Nov 2026 10:00:00 +0000\r\n"
        f"MIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n{body}\r\n"
    ).encode()


# --------------------------------------------------------------------------- load


def _shard(args: tuple[int, int, int, int, dict[str, str], list[str], int]) -> tuple[int, int, list[str]]:  # fmt: skip
    """One load process: ``threads`` connections; messages shard, shard + shards, …"""
    port, shard, shards, threads, files, rcpts, messages = args
    context = ssl.create_default_context(cafile=files["ca"])
    context.load_cert_chain(files["peer_cert"], files["peer_key"])
    mine = range(shard, messages, shards)
    counter = itertools.count()
    lock = threading.Lock()
    done = [0, 0]
    errors: list[str] = []

    def worker() -> None:
        while (k := next(counter)) < len(mine):
            i = mine[k]
            to = rcpts[i % len(rcpts)]
            try:
                with smtplib.SMTP("127.0.0.1", port, timeout=120) as smtp:
                    assert smtp.sock is not None
                    smtp.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
                    smtp.starttls(context=context)
                    refused = smtp.sendmail(f"dr.pair@{PEER}", [to], message_bytes(i, to))
                ok, why = not refused, str(refused)
            except (OSError, smtplib.SMTPException) as exc:
                ok, why = False, repr(exc)
            with lock:
                done[0 if ok else 1] += 1
                if not ok and len(errors) < 3:
                    errors.append(why[:200])

    pool = [threading.Thread(target=worker) for _ in range(threads)]
    for t in pool:
        t.start()
    for t in pool:
        t.join()
    return done[0], done[1], errors


def push(port: int, messages: int, concurrency: int, processes: int, files: dict[str, str], rcpts: list[str]) -> tuple[int, int, list[str], float]:  # fmt: skip
    """(accepted, failed, first errors, seconds to the last 250)."""
    shards = [(port, p, processes, concurrency // processes + (p < concurrency % processes),
               files, rcpts, messages) for p in range(processes)]  # fmt: skip
    start = time.perf_counter()
    with load_pool(processes) as pool:
        parts = pool.map(_shard, shards)
    seconds = time.perf_counter() - start
    return sum(p[0] for p in parts), sum(p[1] for p in parts), [e for p in parts for e in p[2]][:3], seconds  # fmt: skip


# --------------------------------------------------------------------------- bare server


def bare_server(port: int, folder: str, files: dict[str, str]) -> None:
    """aiosmtpd with the gateway's TLS rules; each message written to a file and fsynced."""
    from aiosmtpd.controller import Controller

    class Handler:
        async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
            path = os.path.join(folder, uuid.uuid4().hex)
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            try:
                os.write(fd, envelope.original_content)
                os.fsync(fd)
            finally:
                os.close(fd)
            return "250 OK"

    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH, cafile=files["ca"])
    context.load_cert_chain(files["server_cert"], files["server_key"])
    context.verify_mode = ssl.CERT_REQUIRED
    controller = Controller(Handler(), hostname="127.0.0.1", port=port, tls_context=context,
                            require_starttls=True)  # fmt: skip
    controller.start()
    signal.sigwait({signal.SIGTERM, signal.SIGINT})
    controller.stop()


def run_bare(stack: Stack, args: argparse.Namespace, files: dict[str, str]) -> dict[str, Any]:
    folder = stack.work / "bare"
    folder.mkdir()
    port = free_port()
    log = stack.work / "bare.log"
    cmd = [sys.executable, __file__, "--bare-server", str(port), str(folder)]
    proc = subprocess.Popen(cmd, env={**os.environ, "BENCH_FILES": repr(files)},
                            stdout=log.open("wb"), stderr=subprocess.STDOUT)  # fmt: skip
    stack.children.append(proc)
    wait_for("the bare aiosmtpd server", lambda: smtp_greets(port), 30, log)
    rcpts = [f"x{i}@{population.DOMAIN}" for i in range(10)]
    push(port, 20, 2, args.load_processes, files, rcpts)
    say(f"bare aiosmtpd: {args.messages} messages")
    window = Window(lambda: {"bare": [proc.pid]}).start()
    accepted, failed, _errors, seconds = push(port, args.messages, args.concurrency, args.load_processes, files, rcpts)  # fmt: skip
    measure = window.stop()
    proc.send_signal(signal.SIGTERM)
    proc.wait(timeout=30)
    stack.children.remove(proc)
    return {"accepted": accepted, "failed": failed, "per_s": accepted / seconds, "measure": measure}


# --------------------------------------------------------------------------- our gateway


def prepare(count: int) -> list[population.Box]:
    """Ten recipients' boxes, and the peer's domain and certificate DN in the liste blanche."""
    from trust.models import ListedDomain, OperatorCertificate

    boxes = population.boxes(count)
    listed = ListedDomain.objects.create(name=PEER)
    OperatorCertificate.objects.create(domain=listed, dn=PEER_DN)
    return boxes


def run_gateway(stack: Stack, args: argparse.Namespace, files: dict[str, str], pool: list[population.Box]) -> dict[str, Any]:  # fmt: skip
    import psycopg

    port = stack.ports["smtp"]
    rcpts = [b.address for b in pool]
    folders = [b.inbox for b in pool]
    with psycopg.connect(stack.app_url, autocommit=True) as db:
        cursor = db.cursor()
        after = population.last_entry(cursor)
        warm, _failed, errors, _s = push(port, 20, 2, args.load_processes, files, rcpts)
        if warm < 20 or not population.wait_entries(cursor, folders, after, 20, 60):
            raise SystemExit(f"the warm-up failed: {warm} of 20 accepted {errors}")
        after = population.last_entry(cursor)
        say(f"gateway: {args.messages} messages")
        window = stack.window().start()
        accepted, failed, errors, accept_s = push(port, args.messages, args.concurrency, args.load_processes, files, rcpts)  # fmt: skip
        complete = population.wait_entries(cursor, folders, after, accepted)
        measure: Measure = window.stop()
        delivered = population.count_entries(cursor, folders, after)
    return {
        "accepted": accepted, "failed": failed, "errors": errors, "complete": complete,
        "delivered": delivered, "accepted_per_s": accepted / accept_s,
        "delivered_per_s": delivered / measure.seconds, "measure": measure,
    }  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a smoke run (small sizes, one anchor run)")  # fmt: skip
    parser.add_argument("--messages", type=int, default=2000)
    parser.add_argument("--concurrency", type=int, default=10, help="connections, all processes")
    parser.add_argument("--load-processes", type=int, default=2)
    parser.add_argument("--processes", type=int, default=2, help="smtpd --processes, when it has it")  # fmt: skip
    parser.add_argument("--celery", type=int, default=2, help="Celery prefork processes")
    parser.add_argument("--no-scan", action="store_true", help="no clamd (prints a warning)")
    parser.add_argument("--no-anchor", action="store_true", help="skip Postfix → Dovecot")
    parser.add_argument("--no-bare", action="store_true", help="skip the bare aiosmtpd line")
    parser.add_argument("--keep", action="store_true", help="keep the work dir")
    parser.add_argument("--bare-server", nargs=2, metavar=("PORT", "DIR"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.bare_server:
        import ast

        files = ast.literal_eval(os.environ["BENCH_FILES"])
        return bare_server(int(args.bare_server[0]), args.bare_server[1], files)
    if args.quick:
        args.messages = min(args.messages, 150)
    why_not = "--no-anchor" if args.no_anchor else anchor.available()
    sizes = Sizes(celery=args.celery, scan=not args.no_scan, smtpd=True, smtpd_processes=args.processes)  # fmt: skip
    stack = Stack("smtp", sizes, keep=args.keep)
    anchors: list[dict[int, anchor.AnchorRow]] = []
    bare = None
    with stack:
        if why_not is None:
            anchors.append(anchor.run(stack, "before", messages={1: args.messages}, concurrency=args.concurrency, tls=True, warmup=50 if args.quick else 200))  # fmt: skip
        files = make_material(stack.work / "tls")
        stack.extra_env.update({
            "SMTP_TLS_CERT": files["server_cert"], "SMTP_TLS_KEY": files["server_key"],
            "SMTP_CA_FILE": files["ca"], "SMTP_HOSTNAME": f"mx.{population.DOMAIN}",
        })  # fmt: skip
        stack.start_storage()
        stack.migrate()
        pool = prepare(10)
        stack.start_app(web=False)
        ours = run_gateway(stack, args, files, pool)
        described = stack.describe()
        stack.stop()
        if not args.no_bare:
            bare = run_bare(stack, args, files)
        if why_not is None and not args.quick:
            anchors.append(anchor.run(stack, "after", messages={1: args.messages}, concurrency=args.concurrency, tls=True))  # fmt: skip
    report(args, ours, bare, anchors, described, why_not)


def report(args: argparse.Namespace, ours: dict[str, Any], bare: dict[str, Any] | None, anchors: list[dict[int, anchor.AnchorRow]], described: list[str], why_not: str | None) -> None:  # fmt: skip
    found = [a[1] for a in anchors if 1 in a]
    rate = sum(a.delivered_per_s for a in found) / len(found) if found else None
    cpu = sum(a.cpu_ms for a in found) / len(found) if found else None
    headers = ["run", "msgs", "accepted/s", "delivered/s", "Postfix TLS/s", "ratio", "target",
               "met", *[f"{g} ms" for g in GROUPS], "all ms", "Postfix ms", "other %", "load"]  # fmt: skip
    m = ours["measure"]
    ratio = ours["delivered_per_s"] / rate if rate else None
    lines = [[
        "gateway, mutual TLS → inbox (P1-SMTP)", str(args.messages), fmt(ours["accepted_per_s"]),
        fmt(ours["delivered_per_s"]), fmt(rate), fmt(ratio, ".2f") + ("x" if ratio else ""),
        "≥ 1.0x", verdict(ratio, 1.0, at_least=True), *cpu_cells(m, ours["delivered"], GROUPS),
        fmt(cpu), fmt(m.other_pct, ".0f"), m.load,
    ]]  # fmt: skip
    if bare is not None:
        b = bare["measure"]
        ratio = bare["per_s"] / rate if rate else None
        lines.append([
            "bare aiosmtpd, mutual TLS, write + fsync", str(args.messages), fmt(bare["per_s"]),
            "-", fmt(rate), fmt(ratio, ".2f") + ("x" if ratio else ""), "-", "-",
            *(["-"] * len(GROUPS)), fmt(b.ms_per(bare["accepted"])["all"]), fmt(cpu),
            fmt(b.other_pct, ".0f"), b.load,
        ])  # fmt: skip
    notes = []
    if ours["failed"]:
        notes.append(f"gateway: {ours['failed']} refused or failed, first: {ours['errors']}")
    if not ours["complete"]:
        notes.append(f"gateway: INCOMPLETE, {ours['delivered']} of {ours['accepted']} delivered")
    if why_not:
        notes.append(f"Postfix → Dovecot not measured: {why_not}")
    notes += [anchor.describe(tag, a) for tag, a in zip(("before", "after"), anchors, strict=False)]  # fmt: skip
    notes += [
        "Postfix TLS/s: mean of the runs above (anchor-mailstack --tls on: STARTTLS, Python "
        "smtplib generator, no client certificate); Postfix ms: Postfix + Dovecot CPU per message",
        f"load: {args.load_processes} processes x {args.concurrency // args.load_processes} "
        "connections, one message per connection, 20 kB, 1 recipient (10 boxes); CPU ms per "
        "message, the generator excluded; other % = the rest of the machine's CPU during the run",
        *described,
    ]
    table("P1-SMTP — inbound SMTP with mutual TLS, delivered into the inbox, vs Postfix → Dovecot with TLS", headers, lines, notes)  # fmt: skip


if __name__ == "__main__":
    harness.run(main)
