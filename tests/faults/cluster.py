"""The operator under test as separate processes, a peer operator, and the counting.

The cluster is what production runs, in miniature and on the test database: a
Celery worker (prefork), Celery beat (the sweeper and the orphan collector on
their schedules), the SMTP gateway (``manage.py smtpd``), the web (gunicorn),
on the PostgreSQL, Redis and clamd of ``scripts/services``. The peer operator
``peer.test`` sends to our gateway and receives from our worker (a real SMTP
server on loopback, mutual TLS, that can be stopped and started again).

The retry and sweep intervals are shortened for these processes only, so that
a fault is recovered from in seconds rather than minutes.
"""

from __future__ import annotations

import logging
import os
import sys
import time
from collections import Counter
from dataclasses import dataclass, field
from email.parser import BytesHeaderParser
from email.policy import default as default_policy
from pathlib import Path
from typing import Any

import requests
import trustme
from aiosmtpd.controller import Controller
from django.conf import settings
from django.db import connection, connections

from mailboxes.models import Delivery, Entry, Message
from tests.faults.doors import Outcome
from tests.faults.processes import Proc, port_open
from tests.smtp_peers import Operator, Sink, free_port, make_operator

OUR_DOMAIN = "faults.mssante.test"
PEER_DOMAIN = "peer.test"
REMOTE_RECIPIENT = f"dr.martin@{PEER_DOMAIN}"
BROKER_DB = 1

# Short intervals for the processes of the suite (production: 60 s, 60 s, 1 min doubling).
INTERVALS = {
    "DELIVERY_RETRY_SECONDS": "5",
    "DELIVERY_SWEEP_SECONDS": "5",
    "SCAN_RETRY_SECONDS": "2",
    "SMTP_TIMEOUT": "10",
    "SMTP_RETRY_FIRST_SECONDS": "1",
    "SMTP_RETRY_MAX_SECONDS": "4",
    "BLOB_ORPHAN_SCAN_SECONDS": "5",
    "BLOB_ORPHAN_GRACE_SECONDS": "3600",
}


class PeerSink:
    """The peer operator's SMTP server: records what it accepts; stopped and started at will."""

    def __init__(self, operator: Operator, port: int) -> None:
        self.operator = operator
        self.port = port
        self.handler = Sink()
        self.controller: Controller | None = None

    def start(self) -> None:
        # aiosmtpd logs every command at INFO: the peer's dialogue is not what is tested.
        logging.getLogger("mail.log").setLevel(logging.WARNING)
        self.controller = Controller(
            self.handler,
            hostname="127.0.0.1",
            port=self.port,
            tls_context=self.operator.server_context(),
            require_starttls=True,
        )
        self.controller.start()

    def stop(self) -> None:
        if self.controller is not None:
            self.controller.stop()
            self.controller = None

    def received(self) -> Counter[tuple[str, str]]:
        """How many times each (subject, recipient) arrived."""
        counts: Counter[tuple[str, str]] = Counter()
        for _mail_from, rcpts, raw in list(self.handler.messages):
            subject = str(BytesHeaderParser(policy=default_policy).parsebytes(raw)["Subject"])
            for rcpt in rcpts:
                counts[(subject, rcpt.lower())] += 1
        return counts

    def reset(self) -> None:
        self.handler.messages.clear()


@dataclass
class Cluster:
    tmp: Path
    ours: Operator
    peer: Operator
    blob_root: Path
    broker_url: str
    sink: PeerSink
    web_port: int
    smtp_port: int
    procs: dict[str, Proc] = field(default_factory=dict)

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.web_port}"

    def env(self) -> dict[str, str]:
        db = connection.settings_dict
        database_url = (
            f"postgres://{db['USER']}:{db['PASSWORD']}@{db['HOST']}:{db['PORT']}/{db['NAME']}"
        )
        return {
            **os.environ,
            **INTERVALS,
            "DATABASE_URL": database_url,
            "CELERY_BROKER_URL": self.broker_url,
            "MSSANTE_MASTER_KEYS": settings.MSSANTE_MASTER_KEYS,
            # The journal's rows are signed with the key the tests verify them with.
            "AUDIT_KEYS": settings.AUDIT_KEYS,
            "SECRET_KEY": settings.SECRET_KEY,
            "MSSANTE_IGNORE_DOTENV": "true",
            "MSSANTE_VAR_DIR": str(self.tmp / "var"),
            "BLOB_ROOT": str(self.blob_root),
            "SMTP_TLS_CERT": str(self.ours.cert),
            "SMTP_TLS_KEY": str(self.ours.key),
            "SMTP_CA_FILE": str(self.ours.ca_file),
            "SMTP_HOSTNAME": f"mx.{OUR_DOMAIN}",
            "SMTP_ROUTES": f"{PEER_DOMAIN}=127.0.0.1:{self.sink.port}",
            "API_RATE_LIMIT": "1000000",
            "ALLOWED_HOSTS": "127.0.0.1,localhost",
            "PYTHONUNBUFFERED": "1",
        }

    def build(self) -> None:
        env = self.env()
        py = sys.executable
        logs = self.tmp / "logs"
        logs.mkdir(exist_ok=True)
        self.procs = {
            "worker": Proc(
                "worker",
                [py, "-m", "celery", "-A", "mssante", "worker", "--pool=prefork",
                 "--concurrency=2", "--without-gossip", "--without-mingle", "--without-heartbeat",
                 "--loglevel=INFO", "-n", "faults@%h"],
                env, logs / "worker.log", marker=b" ready.",
            ),
            "beat": Proc(
                "beat",
                [py, "-m", "celery", "-A", "mssante", "beat", "--loglevel=INFO",
                 "-s", str(self.tmp / "beat-schedule"), "--pidfile", str(self.tmp / "beat.pid")],
                env, logs / "beat.log", marker=b"beat: Starting",
            ),
            "gateway": Proc(
                "gateway",
                # Two processes on one port, as production runs it on two cores.
                [py, "manage.py", "smtpd", "--listen", f"127.0.0.1:{self.smtp_port}",
                 "--processes", "2"],
                env, logs / "gateway.log", ready=lambda: port_open(self.smtp_port),
            ),
            "web": Proc(
                "web",
                [py, "-m", "gunicorn", "mssante.wsgi:application", "--bind",
                 f"127.0.0.1:{self.web_port}", "--workers", "1", "--threads", "6",
                 "--timeout", "60", "--graceful-timeout", "5", "--error-logfile", "-"],
                env, logs / "web.log", ready=self._web_ready,
            ),
        }  # fmt: skip

    def _web_ready(self) -> bool:
        try:
            return requests.get(self.base_url + "/sante/", timeout=2).status_code == 200
        except requests.RequestException:
            return False

    def start(self) -> None:
        self.sink.start()
        # Started together: each takes seconds to import Django on a busy machine.
        for proc in self.procs.values():
            proc.spawn()
        for proc in self.procs.values():
            proc.wait_ready()

    def stop(self) -> None:
        for proc in self.procs.values():
            proc.terminate()
        for proc in self.procs.values():
            proc.stop()
        self.sink.stop()

    def logs(self) -> str:
        return "\n".join(f"--- {name}\n{proc.tail(2500)}" for name, proc in self.procs.items())


def make_cluster(tmp: Path) -> Cluster:
    ca = trustme.CA()
    ours = make_operator(ca, OUR_DOMAIN, tmp / "ours")
    peer = make_operator(ca, PEER_DOMAIN, tmp / "peer")
    base, _, _db = settings.CELERY_BROKER_URL.rpartition("/")
    blob_root = tmp / "blobs"
    blob_root.mkdir()
    return Cluster(
        tmp=tmp,
        ours=ours,
        peer=peer,
        blob_root=blob_root,
        broker_url=f"{base}/{BROKER_DB}",
        sink=PeerSink(peer, free_port()),
        web_port=free_port(),
        smtp_port=free_port(),
    )


def reconnect(timeout: float = 30.0) -> None:
    """Drop this process's database connections and wait until a new one answers."""
    deadline = time.monotonic() + timeout
    while True:
        connections.close_all()
        try:
            with connection.cursor() as cursor:
                cursor.execute("SELECT 1")
            return
        except Exception:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.2)


# --------------------------------------------------------------------------- counting


@dataclass
class Row:
    """One line of the fault table."""

    fault: str
    n: int = 0
    once: int = 0
    lost: int = 0
    duplicated: int = 0
    stuck: int = 0
    recover: float | None = None
    resent: int = 0
    notes: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)

    @property
    def clean(self) -> bool:
        return (
            self.n > 0 and self.once == self.n and not (self.lost or self.duplicated or self.stuck)
        )


def titled(keep: Any) -> dict[int, str]:
    """The messages whose subject passes ``keep`` (id → subject): subjects are sealed in
    the database (issue 14), so they are compared here, in Python."""
    return {pk: s for pk, s in Message.objects.values_list("pk", "subject") if keep(s)}


def pending(prefix: str) -> bool:
    """Is any work left for the messages of this run (a scan or a delivery not done)?"""
    ids = list(titled(lambda s: s.startswith(prefix)))
    return (
        Delivery.objects.filter(message_id__in=ids).exclude(status__in=Delivery.DONE).exists()
        or Message.objects.filter(pk__in=ids, scan_status=Message.ScanStatus.PENDING).exists()
    )


def tally(
    row: Row,
    outcomes: list[Outcome],
    sink: PeerSink,
    cleared_at: float,
    in_flight: frozenset[tuple[str, str]] = frozenset(),
) -> Row:
    """Count, in the database and at the peer, what became of every message.

    ``in_flight``: (subject, recipient) of remote deliveries a crash caught between
    the peer's 250 and our record of it. SMTP cannot tell those apart from a lost
    message: sending again is the rule (RFC 5321, 6.1), so a second copy at the peer
    is counted as a resend, not a duplicate. Any other second copy is a duplicate.
    """
    tags = [o.tag for o in outcomes]
    local = {address for o in outcomes for address in o.local}
    wanted = set(tags)
    subjects = titled(lambda s: s in wanted)
    entries = Counter(
        (subjects[pk], address)
        for pk, address in Entry.objects.filter(
            message_id__in=list(subjects), mailbox__address__in=local
        ).values_list("message_id", "mailbox__address")
    )
    deliveries: dict[tuple[str, str], list[Any]] = {}
    for pk, recipient, status, updated in Delivery.objects.filter(
        message_id__in=list(subjects)
    ).values_list("message_id", "recipient", "status", "updated_at"):
        deliveries.setdefault((subjects[pk], recipient), []).append((status, updated))
    message_ids = dict(
        Message.objects.filter(pk__in=list(subjects)).values_list("message_id", "subject")
    )
    dsns = Counter(
        message_ids[m]
        for m in Message.objects.filter(
            origin=Message.Origin.SYSTEM, in_reply_to__in=list(message_ids)
        ).values_list("in_reply_to", flat=True)
    )
    at_peer = sink.received()
    last_done = 0.0
    row.n = len(outcomes)
    for outcome in outcomes:
        states = []
        if not outcome.acked:
            states.append("stuck")
            row.problems.append(f"{outcome.tag}: never acknowledged ({outcome.final_error})")
        for address in outcome.local:
            n = entries[(outcome.tag, address)]
            rows = deliveries.get((outcome.tag, address), [])
            states.append(_state(n, rows))
        for address in outcome.remote:
            n = at_peer[(outcome.tag, address)]
            rows = deliveries.get((outcome.tag, address), [])
            if n == 0 and any(s == Delivery.Status.BOUNCED for s, _u in rows):
                n = dsns[outcome.tag]  # given up on: the sender got a DSN instead
            if n == 2 and (outcome.tag, address) in in_flight:
                row.resent += 1
                n = 1
            states.append(_state(n, rows))
        if outcome.temporary or outcome.acked_at <= cleared_at:
            for address in outcome.recipients:
                for status, updated in deliveries.get((outcome.tag, address), []):
                    if status in Delivery.DONE:
                        last_done = max(last_done, updated.timestamp())
        bad = [s for s in states if s != "once"]
        if not bad:
            row.once += 1
        else:
            row.problems.append(f"{outcome.tag}: {states}")
        row.lost += "lost" in bad
        row.duplicated += "duplicated" in bad
        row.stuck += "stuck" in bad
    row.recover = max(0.0, last_done - cleared_at) if last_done else None
    return row


def _state(n: int, deliveries: list[Any]) -> str:
    if n == 1 and len(deliveries) <= 1:
        return "once"
    if n > 1 or len(deliveries) > 1:
        return "duplicated"
    if any(status not in Delivery.DONE for status, _u in deliveries):
        return "stuck"
    return "lost"


def table(rows: list[Row]) -> str:
    lines = [
        "| fault | N | delivered once | lost | duplicated | stuck | time to recover |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    for row in rows:
        recover = "-" if row.recover is None else f"{row.recover:.1f} s"
        lines.append(
            f"| {row.fault} | {row.n} | {row.once} | {row.lost} | {row.duplicated} "
            f"| {row.stuck} | {recover} |"
        )
    return "\n".join(lines)
