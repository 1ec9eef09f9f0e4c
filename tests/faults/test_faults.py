"""Fault injection: every message reaches every recipient exactly once, whatever breaks.

Messages go in through the three doors at once (web compose over HTTP, the REST
API, the SMTP gateway with mutual TLS) to two local boxes and, from the web and
the API, to a box at a peer operator. Midway, one fault is injected into the
real processes; then the suite waits for the pipeline to recover (the sweeper
runs from Celery beat, as in production) and counts, in the database and at
the peer, how many times each message reached each recipient: 0 lost, 0
duplicated, 0 stuck, for every fault. The table is printed at the end of the run.

These tests restart PostgreSQL: they run last (see the root conftest), and
reconnect this process before anything else touches the database.
"""

from __future__ import annotations

import contextlib
import os
import re
import smtplib
import subprocess
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from django.conf import settings
from django.db.models import F

from mailboxes import reasons
from mailboxes.models import Delivery, DraftAttachment, Message
from tests.faults import doors
from tests.faults.cluster import INTERVALS, Row, pending, reconnect, tally, titled
from tests.faults.conftest import ROWS, World
from tests.faults.doors import Outcome, start_half_data

pytestmark = [
    pytest.mark.services,
    pytest.mark.faults,
    pytest.mark.django_db(transaction=True),
    pytest.mark.skipif(
        not os.environ.get("MSSANTE_TEST_SERVICES"),
        reason="needs scripts/services (MSSANTE_TEST_SERVICES=1)",
    ),
]

# Messages per door and per fault: three doors, six faults, about 200 through each door.
N = int(os.environ.get("FAULTS_PER_DOOR", "35"))
SEND_TIMEOUT = 240.0
RECOVERY_TIMEOUT = 120.0
ROOT = Path(__file__).resolve().parents[2]


class Run:
    """One fault's load: the doors' threads, their progress, and the moment the fault ended."""

    def __init__(self, world: World, fault: str, *, n: int = N, remote: bool = True) -> None:
        self.world = world
        self.fault = fault
        self.prefix = f"[{re.sub(r'[^a-z0-9]+', '-', fault.lower())}-{uuid.uuid4().hex[:6]}]"
        self.outcomes: dict[str, list[Outcome]] = {
            door: world.outcomes(self.prefix, door, n, remote=remote)
            for door in ("web", "api", "smtp")
        }
        self.acked = 0
        self.lock = threading.Lock()
        self.threads: list[threading.Thread] = []
        self.cleared_at = 0.0
        self.notes: list[str] = []

    @property
    def all(self) -> list[Outcome]:
        return [o for group in self.outcomes.values() for o in group]

    def _progress(self) -> None:
        with self.lock:
            self.acked += 1

    def start(self) -> None:
        deadline = time.monotonic() + SEND_TIMEOUT
        for door in (self.world.web, self.world.api, self.world.smtp):
            self.threads.append(
                doors.start(door, self.outcomes[door.name], deadline, self._progress)
            )

    def wait_acked(self, count: int, timeout: float = 120.0) -> None:
        wait_for(lambda: self.acked >= count, f"{count} messages acknowledged", timeout)

    def wait_delivered(self, count: int, timeout: float = 120.0) -> None:
        wait_for(
            lambda: (
                Delivery.objects.filter(
                    message_id__in=list(titled(lambda s: s.startswith(self.prefix))),
                    status=Delivery.Status.DELIVERED,
                ).count()
                >= count
            ),
            f"{count} deliveries",
            timeout,
        )

    def cleared(self) -> None:
        self.cleared_at = time.time()

    def finish(
        self, row: Row | None = None, in_flight: frozenset[tuple[str, str]] = frozenset()
    ) -> Row:
        """Wait for the doors, then for the pipeline; count; record the row."""
        for thread in self.threads:
            thread.join(timeout=SEND_TIMEOUT)
        if not self.cleared_at:
            self.cleared()
        deadline = time.monotonic() + RECOVERY_TIMEOUT
        while pending(self.prefix) and time.monotonic() < deadline:
            time.sleep(0.25)
        row = tally(
            row or Row(self.fault), self.all, self.world.cluster.sink, self.cleared_at, in_flight
        )
        row.notes = self.notes + row.notes
        ROWS.append(row)
        return row

    def check(self, row: Row) -> None:
        assert row.clean, (
            f"{row.fault}: {row.lost} lost, {row.duplicated} duplicated, {row.stuck} stuck\n"
            + "\n".join(row.problems[:20])
            + "\n"
            + self.world.cluster.logs()
        )


def wait_for(condition: Callable[[], bool], what: str, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.1)


def _kind(answer: str) -> str:
    if answer.startswith("connection"):
        return "connection lost"
    found = re.match(r"(compose )?(\d{3})", answer)
    if found:
        return ("new draft " if found.group(1) else "") + found.group(2)
    found = re.search(r"\((\d)(\d\d)?", answer)  # SMTP recipients refused: {addr: (code, …)}
    return f"RCPT {found.group(1)}{found.group(2) or 'xx'}" if found else answer[:20]


def answer_kinds(run: Run) -> str:
    """What the doors answered before the message went through, counted by door and kind."""
    parts = []
    for door, group in run.outcomes.items():
        kinds = Counter(_kind(a) for o in group for a in o.temporary)
        if kinds:
            parts.append(f"{door}: " + ", ".join(f"{k} x{n}" for k, n in sorted(kinds.items())))
    return "; ".join(parts) or "none"


def deliveries_expected(run: Run) -> int:
    return sum(len(o.recipients) for o in run.all)


# --------------------------------------------------------------------------- the faults


def test_worker_killed_mid_delivery_then_restarted(world: World) -> None:
    run = Run(world, "Celery worker kill -9 mid-delivery")
    run.start()
    run.wait_delivered(deliveries_expected(run) // 4)
    worker = world.cluster.procs["worker"]
    worker.kill()  # the whole prefork pool, tasks in hand
    # Remote deliveries caught between the peer's answer and our record of it.
    in_flight = frozenset(
        Delivery.objects.filter(
            message_id__in=list(titled(lambda s: s.startswith(run.prefix))),
            remote=True,
            reason=reasons.SENDING,
        ).values_list("message__subject", "recipient")
    )
    time.sleep(3)
    worker.start()
    run.cleared()
    row = run.finish(in_flight=in_flight)
    row.notes.append(
        f"{len(in_flight)} remote deliveries in flight when killed, "
        f"{row.resent} of them sent again after the peer's 250 (SMTP's at-least-once window)"
    )
    run.check(row)


def test_redis_flushed_mid_run(world: World) -> None:
    import redis

    run = Run(world, "Redis flushed mid-run")
    run.start()
    run.wait_acked(len(run.all) // 3)
    client = redis.Redis.from_url(world.cluster.broker_url)
    queued = client.llen("celery")
    client.flushdb()  # every queued and unacknowledged task is gone
    run.cleared()
    run.notes.append(f"{queued} queued tasks lost")
    row = run.finish()
    run.check(row)


def test_postgresql_restarted_immediate_mid_run(world: World) -> None:
    run = Run(world, "PostgreSQL restart -m immediate mid-run")
    run.start()
    run.wait_acked(len(run.all) // 3)
    try:
        subprocess.run(
            ["bash", str(ROOT / "scripts" / "services"), "restart", "postgres"],
            env={**os.environ, "PG_STOP_MODE": "immediate"},
            check=True,
            capture_output=True,
            timeout=60,
        )
    finally:
        # This process's connection died with the server, like every other one.
        reconnect()
    run.cleared()
    row = run.finish()
    row.notes.append("answers tried again: " + answer_kinds(run))
    run.check(row)


def test_remote_operator_down_then_back(world: World) -> None:
    run = Run(world, "Remote operator down, then back")
    sink = world.cluster.sink
    run.start()
    run.wait_acked(len(run.all) // 4)
    sink.stop()
    try:
        run.wait_acked(len(run.all) * 2 // 3)
        # Some of what waits for the peer is old enough to be given up on: those
        # must bounce with a DSN to their sender, never be lost or sent later.
        give_up = timedelta(hours=settings.SMTP_GIVE_UP_HOURS + 1)
        waiting = list(
            Delivery.objects.filter(
                message_id__in=list(titled(lambda s: s.startswith(run.prefix))),
                remote=True,
            )
            .exclude(status__in=Delivery.DONE)
            .values_list("message_id", flat=True)
        )[::5]
        Message.objects.filter(pk__in=waiting).update(created_at=F("created_at") - give_up)
        wait_for(
            lambda: (
                Delivery.objects.filter(
                    message_id__in=waiting, remote=True, status=Delivery.Status.BOUNCED
                ).count()
                == len(waiting)
            ),
            "the old messages to bounce",
            60,
        )
        time.sleep(3)  # the others keep failing meanwhile
    finally:
        sink.start()
    run.cleared()
    run.notes.append(f"{len(waiting)} given up on (DSN to the sender), the others delivered")
    row = run.finish()
    run.check(row)


def test_smtp_gateway_killed_mid_data(world: World) -> None:
    run = Run(world, "SMTP gateway kill -9 mid-DATA")
    cluster = world.cluster
    run.start()
    run.wait_acked(len(run.all) // 3)
    # Three peers in the middle of DATA when the gateway dies: they never got a reply.
    half = [
        start_half_data(
            cluster.smtp_port,
            cluster.peer,
            f"{run.prefix} half {i}",
            [world.nurse.address, world.pharmacist.address],
        )
        for i in range(3)
    ]
    gateway = cluster.procs["gateway"]
    gateway.kill()
    for client in half:
        with contextlib.suppress(OSError, smtplib.SMTPException):
            client.close()
    time.sleep(1)
    gateway.start()
    run.cleared()
    row = run.finish()
    # An error (here a broken connection) means nothing was stored...
    assert not titled(lambda s: s.startswith(f"{run.prefix} half"))
    # ...and every 250 means stored and delivered (the table's count).
    retried = sum(1 for o in run.outcomes["smtp"] if o.temporary)
    row.notes.append(f"{retried} SMTP messages cut off and sent again by the peer")
    run.check(row)


# --------------------------------------------------------------------------- blob store


@contextlib.contextmanager
def read_only(folder: Path) -> Iterator[bool]:
    """The folder read-only for every process (a read-only bind mount as root)."""
    if os.geteuid() == 0:
        mounted = subprocess.run(["mount", "--bind", str(folder), str(folder)], check=False)
        if mounted.returncode != 0:
            yield False
            return
        try:
            # The remount fails ("mount point is busy", exit 32) while a writer has a file
            # open for writing under the new bind mount: try again until a gap between
            # two writes lets it through.
            for _ in range(100):
                done = subprocess.run(
                    ["mount", "-o", "remount,bind,ro", str(folder), str(folder)],
                    check=False,
                    capture_output=True,
                    text=True,
                )
                if done.returncode == 0:
                    break
                time.sleep(0.05)
            else:
                raise AssertionError(f"the blob store could not be made read-only: {done.stderr}")
            yield True
        finally:
            unmount(folder)
        return
    dirs = [folder, *(p for p in folder.rglob("*") if p.is_dir())]
    for d in dirs:
        d.chmod(0o555)
    try:
        yield True
    finally:
        for d in dirs:
            d.chmod(0o755)


def unmount(folder: Path) -> None:
    """Lift the read-only mount, even while a process still has a file open under it.

    A writer refused a moment ago may not have closed its descriptor yet ("target is
    busy", exit 32): wait a little, then detach it lazily, so that every new open
    reaches the writable folder underneath.
    """
    for _ in range(20):
        if subprocess.run(["umount", str(folder)], check=False).returncode == 0:
            return
        time.sleep(0.25)
    subprocess.run(["umount", "--lazy", str(folder)], check=True)


def blob_files(root: Path) -> set[str]:
    return {p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file()}


def referenced_blobs() -> set[str]:
    return set(Message.objects.values_list("blob_name", flat=True)) | set(
        DraftAttachment.objects.values_list("blob_name", flat=True)
    )


def test_blob_store_failing_to_write(world: World) -> None:
    cluster = world.cluster
    run = Run(world, "Blob store full, then read-only")
    writers = [cluster.procs["web"], cluster.procs["gateway"]]
    refused_during: set[str] = set()
    run.start()
    run.wait_acked(len(run.all) // 4)
    kinds = ["full"]
    try:
        # Full: every write stops after 256 bytes (EFBIG), as on a disk that fills up.
        for proc in writers:
            proc.limit_file_size(256)
        time.sleep(4)
        for proc in writers:
            proc.limit_file_size(None)
        with read_only(cluster.blob_root) as applied:
            if applied:
                kinds.append("read-only")
                time.sleep(4)
        refused_during = {o.tag for o in run.all if o.temporary and not o.acked}
        # Nothing half-stored: no row for a message that was refused and not yet sent again.
        assert refused_during
        assert not titled(lambda s: s in refused_during)
    finally:
        for proc in writers:
            proc.limit_file_size(None)
    run.cleared()
    row = run.finish()

    # Each door said it clearly, as a temporary failure.
    answers = {
        door: [a for o in group for a in o.temporary] for door, group in run.outcomes.items()
    }
    for door in ("web", "api", "smtp"):
        assert answers[door], f"the {door} door was never refused"
    assert all(
        a.startswith("503 ") and "momentanément indisponible" in a for a in answers["web"]
    ), answers["web"][:3]
    assert all(a.startswith("503 ") and '"storage_unavailable"' in a for a in answers["api"]), (
        answers["api"][:3]
    )
    assert all(a.startswith("452 4.3.1") for a in answers["smtp"]), answers["smtp"][:3]
    row.notes.append(
        f"{'/'.join(kinds)}: refusals web {len(answers['web'])} (503, French page), "
        f"API {len(answers['api'])} (503 JSON), SMTP {len(answers['smtp'])} (452 4.3.1)"
    )

    # No orphan left for ever: the scheduled collection removes, once past the grace
    # period, every file no row names (partial writes, a process killed mid-write,
    # rows deleted since, like those of the earlier faults) and nothing else.
    root = cluster.blob_root
    stale = root / "messages" / "2001" / "01"
    stale.mkdir(parents=True, exist_ok=True)
    (stale / f".tmp-{uuid.uuid4().hex}").write_bytes(b"cut off mid-write")
    (stale / f"{uuid.uuid4().hex}.bin").write_bytes(b"committed nowhere")
    wanted = referenced_blobs()
    before = blob_files(root)
    assert wanted <= before, "a referenced blob is missing"
    past_grace = time.time() - int(INTERVALS["BLOB_ORPHAN_GRACE_SECONDS"]) - 3600
    for name in before:
        os.utime(root / name, (past_grace, past_grace))
    wait_for(lambda: blob_files(root) == wanted, "the scheduled orphan collection", 60)
    row.notes.append(
        f"{len(before - wanted)} orphan or partial files collected by the scheduled task"
    )
    run.check(row)
