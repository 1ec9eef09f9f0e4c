"""The yardstick: Postfix → Dovecot (LMTP) on this machine, measured in the same invocation.

``anchor-mailstack`` (the machine's shared yardstick, not modified, not copied) runs the 1-recipient
figure: a fresh private Postfix and Dovecot on free ports, its warm-up, N messages of the
same size at the same concurrency, delivered = the last file in a maildir ``new/``.

It only sends one recipient per message. For 10 and 40 recipients we run it with
``--keep`` and start the stack it leaves behind again, with its own configuration
(``run-postfix-1/pf/etc`` and ``run-postfix-1/dc/etc/dovecot.conf``: Postfix's
defaults, virtual domain delivered over LMTP to Dovecot's ``mail_fsync=optimized``), then
send with the generator below: the anchor's Python generator (``--gen python``: smtplib,
``TCP_NODELAY``, STARTTLS without checking the self-signed certificate, the same message
made of 78-character lines) with R ``RCPT TO`` per message instead of one. Postfix hands
the recipients of one message to Dovecot in one LMTP transaction
(``lmtp_destination_recipient_limit``, 50 by default) and Dovecot writes one file per
recipient: a message counts as delivered when all its R files are there.
"""

from __future__ import annotations

import contextlib
import itertools
import json
import os
import shutil
import signal
import smtplib
import socket
import ssl
import subprocess
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

from harness import NCPU, Measure, Stack, Window, free_port, load_pool, loadavg, say

# BENCH_ANCHOR, else ../shared/bench/ next to the checkout, else this machine's copy.
SCRIPT = next(
    (
        p
        for p in (
            Path(os.environ.get("BENCH_ANCHOR", "/nonexistent")),
            Path(__file__).resolve().parents[3] / "shared" / "bench" / "anchor-mailstack",
        )
        if p.exists()
    ),
    Path("/work/shared/bench/anchor-mailstack"),
)
DOMAIN = "bench.mssante.test"  # the anchor's domain and user names (user001…)
USERS = 100  # the anchor's default --rcpts: recipients the load is spread over
CHECK = 0  # key of the 1-recipient row measured with our generator (a check of it)


@dataclass
class AnchorRow:
    rcpts: int
    messages: int
    accepted_per_s: float
    delivered_per_s: float
    cpu_ms: float  # Postfix + Dovecot, all their processes, per message
    other_pct: float
    load: str
    errors: int
    complete: bool
    how: str  # "anchor-mailstack" or "its stack, our R-recipient generator"


def available() -> str | None:
    """Why the anchor cannot run here, or None."""
    if not SCRIPT.exists():
        return f"{SCRIPT} not found"
    if os.geteuid() != 0:
        return "the anchor needs root (it installs and runs Postfix and Dovecot)"
    return None


def run(
    stack: Stack,
    tag: str,
    *,
    messages: dict[int, int],
    concurrency: int,
    tls: bool,
    size: int = 20_480,
    warmup: int = 200,
) -> dict[int, AnchorRow]:
    """Postfix → Dovecot for each recipient count (key of ``messages``), and ``CHECK``."""
    # Short: Postfix's sockets live under it and a socket path has at most 107 bytes.
    root = Path(tempfile.mkdtemp(prefix="anchor-", dir="/tmp"))
    root.chmod(0o755)  # postfix, dovecot and nobody traverse it
    ports = [free_port() for _ in range(3)]
    results = root / "results.jsonl"
    cmd = [str(SCRIPT), "--targets", "postfix", "--reps", "1", "-n", str(messages.get(1, 500)),
           "-s", str(size), "-c", str(concurrency), "--tls", "on" if tls else "off",
           "--warmup", str(warmup), "--ports", ",".join(map(str, ports)),
           "--workdir", str(root), "--json", str(results), "--keep"]  # fmt: skip
    say(f"anchor ({tag}): Postfix → Dovecot, 1 recipient, {messages.get(1, 500)} messages")
    log = root / "anchor.log"
    load0 = loadavg()
    with log.open("wb") as out:
        proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT)
        stack.children.append(proc)
        proc.wait()
        stack.children.remove(proc)
    load1 = loadavg()
    kept = next(root.glob("anchor-mailstack.*"), None)
    rows: dict[int, AnchorRow] = {}
    try:
        if proc.returncode != 0 or not results.exists():
            raise SystemExit("the anchor failed:\n" + log.read_text(errors="replace")[-3000:])
        record = json.loads(results.read_text().splitlines()[-1])
        busy_ours = (record["cpu_s_total"] + record["gen_cpu_s"]) / (record["deliver_s"] * NCPU)
        rows[1] = AnchorRow(
            rcpts=1,
            messages=record["n"],
            accepted_per_s=record["accepted_per_s"],
            delivered_per_s=record["delivered_per_s"],
            cpu_ms=record["cpu_ms_per_msg"],
            other_pct=max(0.0, (record["box_busy_pct"] or 0) - 100 * busy_ours),
            load=f"{load0:.1f}→{load1:.1f}",
            errors=record["errors"],
            complete=record["complete"],
            how="anchor-mailstack",
        )
        more = sorted(r for r in messages if r > 1)
        if more and kept is not None:
            with restarted(kept / "run-postfix-1", ports) as roots:
                # CHECK: 1 recipient again, with our generator: it must find about the
                # anchor's own figure, or the 10 and 40 rows measure the generator.
                for rcpts in [CHECK, *more]:
                    say(f"anchor ({tag}): Postfix → Dovecot, {rcpts or 1} recipient(s) per message")
                    rows[rcpts] = measure(
                        kept / "run-postfix-1", roots, ports[0], rcpts or 1,
                        messages[rcpts or 1], concurrency, tls, size,
                    )  # fmt: skip
    finally:
        if stack.keep:
            say(f"kept the anchor's files in {root}")
        else:
            shutil.rmtree(root, ignore_errors=True)
    return rows


def describe(tag: str, rows: dict[int, AnchorRow]) -> str:
    """One line of notes: every figure of one anchor run."""

    def one(key: int, a: AnchorRow) -> str:
        what = "1 rcpt, our generator" if key == CHECK else f"{a.rcpts} rcpt"
        return (
            f"{what} {a.delivered_per_s:.1f} msg/s (accepted {a.accepted_per_s:.1f}, CPU "
            f"{a.cpu_ms:.1f} ms/msg, other {a.other_pct:.0f}%, load {a.load}"
            + (f", {a.errors} errors" if a.errors else "")
            + ("" if a.complete else ", INCOMPLETE")
            + ")"
        )

    return f"Postfix → Dovecot {tag} our runs: " + "; ".join(one(k, a) for k, a in rows.items())


@contextlib.contextmanager
def restarted(run: Path, ports: list[int]) -> Iterator[dict[str, list[int]]]:
    """Start again the Postfix and Dovecot the anchor configured (and left) in ``run``."""
    dovecot_conf = run / "dc" / "etc" / "dovecot.conf"
    postfix_conf = run / "pf" / "etc"
    pids: dict[str, int] = {}
    try:
        subprocess.run(["dovecot", "-c", str(dovecot_conf)], check=True, start_new_session=True)
        _wait_port(ports[1])
        pids["dovecot"] = _read_pid(run / "dc" / "run" / "master.pid")
        subprocess.run(["postfix", "-c", str(postfix_conf), "start"], check=True,
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # fmt: skip
        _wait_port(ports[0])
        pids["postfix"] = _read_pid(run / "pf" / "spool" / "pid" / "master.pid")
        yield {"postfix": [pids["postfix"]], "dovecot": [pids["dovecot"]]}
    finally:
        with contextlib.suppress(Exception):
            subprocess.run(["postfix", "-c", str(postfix_conf), "stop"], check=False,
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, timeout=60)  # fmt: skip
        with contextlib.suppress(Exception):
            subprocess.run(["dovecot", "-c", str(dovecot_conf), "stop"], check=False,
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, timeout=60)  # fmt: skip
        for pid in pids.values():  # their masters lead their process groups
            for _ in range(100):
                if not Path(f"/proc/{pid}").exists():
                    break
                time.sleep(0.1)
            else:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(pid, signal.SIGKILL)


def _read_pid(path: Path) -> int:
    """A master's PID file, written a moment after it starts listening."""
    for _ in range(100):
        with contextlib.suppress(OSError, ValueError):
            return int(path.read_text().strip())
        time.sleep(0.1)
    raise SystemExit(f"{path} did not appear")


def _wait_port(port: int) -> None:
    for _ in range(200):
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 1):
            return
        time.sleep(0.1)
    raise SystemExit(f"port {port} did not come up")


def measure(
    run: Path,
    roots: dict[str, list[int]],
    port: int,
    rcpts: int,
    messages: int,
    concurrency: int,
    tls: bool,
    size: int,
) -> AnchorRow:
    users = [f"user{i:03d}@{DOMAIN}" for i in range(1, USERS + 1)]
    count = _maildir_counter(run / "mail", users)
    before = count()
    sent = send(port, 20, rcpts, concurrency, tls, size, users)[0]  # warm-up: processes, boxes
    _wait_count(count, before + sent * rcpts, 120)
    base = count()
    window = Window(lambda: roots).start()
    accepted, errors, accept_s = send(port, messages, rcpts, concurrency, tls, size, users)
    complete = _wait_count(count, base + accepted * rcpts, max(120.0, 10 * accept_s))
    result: Measure = window.stop()
    return AnchorRow(
        rcpts=rcpts,
        messages=messages,
        accepted_per_s=accepted / accept_s,
        delivered_per_s=(count() - base) / rcpts / result.seconds,
        cpu_ms=1000 * result.total_cpu / max(1, accepted),
        other_pct=result.other_pct,
        load=result.load,
        errors=errors,
        complete=complete,
        how="its stack, our R-recipient generator",
    )


def _maildir_counter(mail: Path, users: list[str]) -> Callable[[], int]:
    folders = [mail / DOMAIN / u.split("@")[0] / "Maildir" / sub for u in users for sub in ("new", "cur")]  # fmt: skip

    def count() -> int:
        total = 0
        for folder in folders:
            with contextlib.suppress(FileNotFoundError):
                total += len(os.listdir(folder))
        return total

    return count


def _wait_count(count: Callable[[], int], target: int, timeout: float) -> bool:
    start = time.perf_counter()
    while count() < target:
        if timeout and time.perf_counter() - start > timeout:
            return False
        time.sleep(0.05)
    return True


# --------------------------------------------------------------------------- generator


def send(
    port: int, messages: int, rcpts: int, concurrency: int, tls: bool, size: int, users: list[str]
) -> tuple[int, int, float]:
    """(accepted, errors, seconds to the last 250) from min(concurrency, cores) processes."""
    procs = max(1, min(concurrency, NCPU))
    shards = [(port, s, procs, concurrency // procs + (s < concurrency % procs), messages, rcpts,
               tls, size, users) for s in range(procs)]  # fmt: skip
    start = time.perf_counter()
    with load_pool(procs) as pool:
        parts = pool.map(_shard, shards)
    return sum(p[0] for p in parts), sum(p[1] for p in parts), time.perf_counter() - start


def _body(size: int) -> bytes:
    line = b"X" * 78 + b"\r\n"  # as the anchor's make_body (smtp-source -l)
    body = line * (size // 80)
    rest = size - len(body)
    return body + (b"X" * (rest - 2) + b"\r\n" if rest >= 2 else b"")


def _shard(
    args: tuple[int, int, int, int, int, int, bool, int, list[str]],
) -> tuple[int, int]:
    port, shard, shards, threads, messages, rcpts, tls, size, users = args
    body = _body(size)
    context = None
    if tls:
        context = ssl.create_default_context()
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE  # the anchor's self-signed certificate
    mine = range(shard, messages, shards)
    counter = itertools.count()
    lock = threading.Lock()
    done = [0, 0]
    date = time.strftime("%a, %d %b %Y %H:%M:%S +0000", time.gmtime())

    def worker() -> None:
        while (k := next(counter)) < len(mine):
            i = mine[k]
            to = [users[(i * rcpts + j) % len(users)] for j in range(rcpts)]
            folded = ",\r\n ".join(f"<{t}>" for t in to)
            head = (
                f"From: <loadgen@client.test>\r\nTo: {folded}\r\n"
                f"Date: {date}\r\nMessage-ID: <{os.getpid()}.{i}@client.test>\r\n"
                f"Subject: anchor {i}\r\n\r\n"
            )
            try:
                with smtplib.SMTP(
                    "127.0.0.1", port, local_hostname="client.test", timeout=120
                ) as smtp:
                    assert smtp.sock is not None
                    smtp.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
                    if context is not None:
                        smtp.starttls(context=context)
                    refused = smtp.sendmail("loadgen@client.test", to, head.encode() + body)
                ok = not refused
            except (OSError, smtplib.SMTPException):
                ok = False
            with lock:
                done[0 if ok else 1] += 1

    pool = [threading.Thread(target=worker) for _ in range(threads)]
    for t in pool:
        t.start()
    for t in pool:
        t.join()
    return done[0], done[1]
