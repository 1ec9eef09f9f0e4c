#!/usr/bin/env python
"""Benchmark of the inbound SMTP gateway against a bare aiosmtpd server that writes to disk.

    .venv/bin/python scripts/bench/smtp.py [--messages 1000] [--concurrency 10]
        [--gateways 1] [--per-connection 1] [--clamd 127.0.0.1:53310] [--keep]

Needs PostgreSQL and Redis from ``scripts/services start``. The benchmark makes
its own certificates (trustme), its own database (``webmail_smtpbench``), its own
Redis database and its own prefork Celery worker (two processes), then:

1. starts ``manage.py smtpd`` (the real gateway, separate processes as in
   production) and pushes 20 kB messages, one recipient each, over STARTTLS with
   a client certificate checked against the liste blanche, from ``--concurrency``
   connections spread over two load processes; it reports messages per second
   *accepted* (last 250 received) and *delivered* (last entry in the recipient's
   inbox, after the worker's scan and delivery);
2. pushes the same messages through the same TLS set-up to a bare aiosmtpd
   server (same number of processes) whose handler only writes each message to a
   file and fsyncs it, and prints the gateway's rates as a ratio to it.

The PostgreSQL of ``scripts/services`` runs with ``fsync=off``: the gateway's
commits are not flushed to disk there, while the bare server fsyncs every file.
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import signal
import smtplib
import socket
import ssl
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
# The schema owner: it creates the benchmark database (the app role may not).
PG = os.environ.get("BENCH_PG", "postgres://mssante_owner:owner@127.0.0.1:55432")
BENCH_DB = "webmail_smtpbench"
BROKER = os.environ.get("BENCH_BROKER", "redis://127.0.0.1:56379/10")
DOMAIN = "bench.mssante.test"
PEER = "peer.mssante.test"
PEER_DN = f"CN=mx.{PEER},OU=123456789,O=Operateur pair"


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


# --------------------------------------------------------------------------- material


def make_material(folder: Path) -> dict[str, str]:
    import trustme

    ca = trustme.CA()
    files: dict[str, str] = {"ca": str(folder / "ca.pem")}
    ca.cert_pem.write_to_path(files["ca"])
    for name, cn, org in (
        ("server", f"mx.{DOMAIN}", "Operateur banc"),
        ("peer", f"mx.{PEER}", "Operateur pair"),
    ):
        leaf = ca.issue_cert(
            "127.0.0.1",
            "localhost",
            common_name=cn,
            organization_name=org,
            organization_unit_name="123456789",
        )
        files[f"{name}_cert"] = str(folder / f"{name}.pem")
        files[f"{name}_key"] = str(folder / f"{name}.key")
        leaf.cert_chain_pems[0].write_to_path(files[f"{name}_cert"])
        leaf.private_key_pem.write_to_path(files[f"{name}_key"])
    return files  # fmt: skip


def message_bytes(i: int, to: str) -> bytes:
    body = ("Compte rendu de consultation, examen clinique normal. " * 400)[:20_000]
    return (
        f"From: Dr Pair <dr.pair@{PEER}>\r\nTo: {to}\r\nSubject: Essai {i}\r\n"
        f"Message-ID: <{uuid.uuid4().hex}@{PEER}>\r\nDate: Sat, 28 Nov 2026 10:00:00 +0000\r\n"
        "MIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n"
        + "\r\n".join(body[j : j + 76] for j in range(0, len(body), 76))
        + "\r\n"
    ).encode()


# --------------------------------------------------------------------------- load


def _client(args: tuple[list[int], int, int, dict[str, str], str, int]) -> int:
    """One load process: ``threads`` connections each sending its share; returns sent."""
    import threading

    ports, count, threads, files, to, per_connection = args
    context = ssl.create_default_context(cafile=files["ca"])
    context.load_cert_chain(files["peer_cert"], files["peer_key"])
    sent = [0] * threads

    def run(t: int) -> None:
        mine = list(range(t, count, threads))
        for start in range(0, len(mine), per_connection):
            port = ports[(t + start) % len(ports)]
            with smtplib.SMTP("127.0.0.1", port, timeout=120) as smtp:
                smtp.starttls(context=context)
                for i in mine[start : start + per_connection]:
                    refused = smtp.sendmail(f"dr.pair@{PEER}", [to], message_bytes(i, to))
                    if not refused:
                        sent[t] += 1

    workers = [threading.Thread(target=run, args=(t,)) for t in range(threads)]
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    return sum(sent)


def push(
    ports: list[int],
    messages: int,
    concurrency: int,
    files: dict[str, str],
    to: str,
    per_connection: int,
) -> tuple[int, float]:
    """Send ``messages`` from two load processes; return (accepted, seconds to the last 250)."""
    processes = 2 if concurrency >= 2 else 1
    share = [
        messages // processes + (1 if p < messages % processes else 0) for p in range(processes)
    ]
    threads = max(1, concurrency // processes)
    context = multiprocessing.get_context("spawn")
    start = time.perf_counter()
    with context.Pool(processes) as pool:
        done = pool.map(
            _client,
            [(ports, share[p], threads, files, to, per_connection) for p in range(processes)],
        )
    return sum(done), time.perf_counter() - start  # fmt: skip


# --------------------------------------------------------------------------- bare server


def bare_server(port: int, folder: str, files: dict[str, str]) -> None:
    """A bare aiosmtpd server with the same TLS rules that writes each message to disk."""
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
    controller = Controller(Handler(), hostname="127.0.0.1", port=port, tls_context=context, require_starttls=True)  # fmt: skip
    controller.start()
    signal.sigwait({signal.SIGTERM, signal.SIGINT})
    controller.stop()


# --------------------------------------------------------------------------- setup


def environment(work: Path, files: dict[str, str], clamd: str) -> dict[str, str]:
    return {
        "DJANGO_SETTINGS_MODULE": "mssante.settings",
        "DATABASE_URL": f"{PG}/{BENCH_DB}",
        "CELERY_BROKER_URL": BROKER,
        "MSSANTE_VAR_DIR": str(work / "var"),
        "MSSANTE_IGNORE_DOTENV": "true",
        "LOG_LEVEL": "WARNING",
        "SMTP_TLS_CERT": files["server_cert"],
        "SMTP_TLS_KEY": files["server_key"],
        "SMTP_CA_FILE": files["ca"],
        "SMTP_HOSTNAME": f"mx.{DOMAIN}",
        "CLAMD_ADDRESS": clamd,
    }


def recreate_database() -> None:
    import psycopg

    with psycopg.connect(f"{PG}/postgres", autocommit=True) as conn:
        conn.execute(f"DROP DATABASE IF EXISTS {BENCH_DB} WITH (FORCE)")
        conn.execute(f"CREATE DATABASE {BENCH_DB}")


def drop_database() -> None:
    import psycopg

    with psycopg.connect(f"{PG}/postgres", autocommit=True) as conn:
        conn.execute(f"DROP DATABASE IF EXISTS {BENCH_DB} WITH (FORCE)")


def prepare() -> str:
    """Migrate, create the recipient's box and list the peer; return the recipient address."""
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0)
    from accounts import services as accounts
    from mailboxes import services
    from mailboxes.models import HostedDomain
    from mssante.lib.identifiers import make_rpps
    from trust.models import ListedDomain, OperatorCertificate

    domain, _ = HostedDomain.objects.get_or_create(name=DOMAIN)
    user = accounts.create_professional(
        identifier=make_rpps("1000000001"), first_name="Dominique", last_name="Essai", profession_code="10"
    )  # fmt: skip
    box = services.create_personal_mailbox(user, domain)
    listed = ListedDomain.objects.create(name=PEER)
    OperatorCertificate.objects.create(domain=listed, dn=PEER_DN)
    return box.address


def start(cmd: list[str], env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    return subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=log.open("wb"), stderr=subprocess.STDOUT)


def wait_port(port: int, proc: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"a server exited; see {log}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1) as sock:
                sock.recv(100)
                return
        except OSError:
            time.sleep(0.1)
    raise SystemExit(f"nothing listens on {port}; see {log}")


def stop(proc: subprocess.Popen[bytes]) -> None:
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(timeout=30)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def cpu_seconds(pid: int) -> float:
    """User + system CPU of a process and its live descendants (Linux /proc)."""
    tick = os.sysconf("SC_CLK_TCK")
    total = 0.0
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        total += (int(fields[11]) + int(fields[12])) / tick
        for task in Path(f"/proc/{pid}/task").iterdir():
            for child in (task / "children").read_text().split():
                total += cpu_seconds(int(child))
    except (OSError, IndexError, ValueError):
        pass
    return total


def delivered_count() -> int:
    from mailboxes.models import Delivery

    return Delivery.objects.filter(status=Delivery.Status.DELIVERED).count()


def run_gateway(
    args: argparse.Namespace, work: Path, files: dict[str, str], env: dict[str, str]
) -> dict[str, float]:
    import redis
    from django.db import connections

    redis.Redis.from_url(BROKER).flushdb()
    worker_log = work / "worker.log"
    worker = start([sys.executable, "-m", "celery", "-A", "mssante", "worker", "--pool=prefork", "--concurrency=2",
                    "--without-gossip", "--without-mingle", "--loglevel=WARNING"], env, worker_log)  # fmt: skip
    ports = [free_port() for _ in range(args.gateways)]
    gateways = []
    try:
        for n, port in enumerate(ports):
            log = work / f"smtpd-{n}.log"
            gateways.append(
                start(
                    [sys.executable, "manage.py", "smtpd", "--listen", f"127.0.0.1:{port}"],
                    env,
                    log,
                )
            )
            wait_port(port, gateways[-1], log)
        to = args.to
        # Warm-up: imports, connections, the worker's first tasks.
        push(ports, 20, 2, files, to, 1)
        deadline = time.monotonic() + 60
        while delivered_count() < 20 and time.monotonic() < deadline:
            time.sleep(0.05)
        base = delivered_count()
        warm_gateway = sum(cpu_seconds(p.pid) for p in gateways)
        warm_worker = cpu_seconds(worker.pid)
        start_time = time.perf_counter()
        accepted, accept_seconds = push(
            ports, args.messages, args.concurrency, files, to, args.per_connection
        )
        while delivered_count() < base + accepted:
            if time.perf_counter() - start_time > 900:
                raise SystemExit("deliveries did not finish within 15 minutes")
            time.sleep(0.02)
        delivered_seconds = time.perf_counter() - start_time
        connections.close_all()
        gateway_cpu = sum(cpu_seconds(p.pid) for p in gateways) - warm_gateway
        worker_cpu = cpu_seconds(worker.pid) - warm_worker
    finally:
        for proc in gateways:
            stop(proc)
        stop(worker)
    return {
        "accepted": accepted,
        "accepted_per_s": accepted / accept_seconds,
        "delivered_per_s": accepted / delivered_seconds,
        "gateway_cpu_ms": gateway_cpu * 1000 / accepted,
        "worker_cpu_ms": worker_cpu * 1000 / accepted,
    }  # fmt: skip


def run_bare(args: argparse.Namespace, work: Path, files: dict[str, str]) -> dict[str, float]:
    folder = work / "bare"
    folder.mkdir()
    ports = [free_port() for _ in range(args.gateways)]
    servers = []
    try:
        for n, port in enumerate(ports):
            log = work / f"bare-{n}.log"
            servers.append(start([sys.executable, __file__, "--bare-server", str(port), str(folder)], os.environ | {"BENCH_FILES": repr(files)}, log))  # fmt: skip
            wait_port(port, servers[-1], log)
        push(ports, 20, 2, files, f"x@{DOMAIN}", 1)
        warm = sum(cpu_seconds(p.pid) for p in servers)
        accepted, seconds = push(
            ports, args.messages, args.concurrency, files, f"x@{DOMAIN}", args.per_connection
        )
        cpu = sum(cpu_seconds(p.pid) for p in servers) - warm
    finally:
        for proc in servers:
            stop(proc)
    return {"accepted": accepted, "per_s": accepted / seconds, "cpu_ms": cpu * 1000 / accepted}  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--messages", type=int, default=1000)
    parser.add_argument("--concurrency", type=int, default=10, help="client connections at once")
    parser.add_argument("--gateways", type=int, default=1, help="server processes (both sides)")
    parser.add_argument("--per-connection", type=int, default=1, help="messages per connection")
    parser.add_argument("--clamd", default="", help="host:port of clamd (default: no scanning)")
    parser.add_argument("--keep", action="store_true", help="keep the bench database")
    parser.add_argument("--bare-server", nargs=2, metavar=("PORT", "DIR"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.bare_server:
        import ast

        bare_server(
            int(args.bare_server[0]),
            args.bare_server[1],
            ast.literal_eval(os.environ["BENCH_FILES"]),
        )
        return

    work = Path(tempfile.mkdtemp(prefix="mssante-smtpbench-"))
    files = make_material(work)
    env = environment(work, files, args.clamd)
    os.environ.update(env)
    sys.path.insert(0, str(ROOT))
    env = {**os.environ}
    recreate_database()
    args.to = prepare()
    from django.conf import settings

    env["MSSANTE_MASTER_KEYS"] = str(settings.MSSANTE_MASTER_KEYS)
    try:
        ours = run_gateway(args, work, files, env)
        bare = run_bare(args, work, files)
    finally:
        if not args.keep:
            from django.db import connections

            connections.close_all()
            drop_database()

    print()
    print(
        f"Inbound SMTP, {args.messages} messages of 20 kB, 1 recipient, STARTTLS + client certificate, "
        f"{args.concurrency} connections, {args.per_connection} message(s) per connection, "
        f"{args.gateways} server process(es); scanning {'clamd ' + args.clamd if args.clamd else 'off'}"
    )
    print(f"{'':34} {'msg/s':>8} {'vs bare aiosmtpd':>17}")
    print(
        f"{'gateway, accepted (last 250)':34} {ours['accepted_per_s']:>8.1f} {ours['accepted_per_s'] / bare['per_s']:>16.2f}x"
    )
    print(
        f"{'gateway, delivered (in the inbox)':34} {ours['delivered_per_s']:>8.1f} {ours['delivered_per_s'] / bare['per_s']:>16.2f}x"
    )
    print(f"{'bare aiosmtpd, write + fsync':34} {bare['per_s']:>8.1f} {1:>16.2f}x")  # fmt: skip
    print(
        f"CPU per message: gateway {ours['gateway_cpu_ms']:.1f} ms + worker "
        f"{ours['worker_cpu_ms']:.1f} ms; bare aiosmtpd {bare['cpu_ms']:.1f} ms"
    )
    print(f"(work files in {work})")


if __name__ == "__main__":
    main()
