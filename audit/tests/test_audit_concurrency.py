"""The journal under concurrent writers, on the real PostgreSQL: no lock, no lost row, no false alarm.

Writers (threads of this process and other processes, as web and Celery workers are)
journal in their own transactions, some held open while others commit, while a sealer
seals and the journal is verified; then the sealer runs once more and nothing is left
unsealed. A transaction still running holds the seals back (its rows and every later
one wait for it), and after a logical restore ``migrate`` moves the positions past the
ones already sealed.
"""

from __future__ import annotations

import functools
import os
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
from django.conf import settings
from django.core.management import call_command
from django.db import connection, connections, transaction

from audit import journal, positions, seals, tasks
from audit.models import AuditEvent, AuditSeal
from audit.tests.conftest import database_superuser

pytestmark = [
    pytest.mark.services,
    pytest.mark.django_db(transaction=True),
    pytest.mark.skipif(
        not os.environ.get("MSSANTE_TEST_SERVICES"),
        reason="needs scripts/services (MSSANTE_TEST_SERVICES=1)",
    ),
]

WRITE = """
import time
from django.db import transaction
from audit import journal
for i in range({n}):
    with transaction.atomic():
        journal.record("test.concurrent", object_id="{tag}-%d" % i, n=i)
        if i % 5 == 0:
            time.sleep(0.02)  # held open while others commit
"""


def _database_url(user: str, password: str) -> str:
    db = connection.settings_dict
    return f"postgres://{user}:{password}@{db['HOST']}:{db['PORT']}/{db['NAME']}"


def _manage(*args: str, url: str | None = None) -> subprocess.CompletedProcess[str]:
    db = connection.settings_dict
    env = {
        **os.environ,
        "DATABASE_URL": url or _database_url(db["USER"], db["PASSWORD"]),
        "AUDIT_KEYS": settings.AUDIT_KEYS,
        "MSSANTE_IGNORE_DOTENV": "true",
    }
    return subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=settings.BASE_DIR,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=True,
    )


def _in_thread(work: Callable[[], Any]) -> Callable[[], Any]:
    def run() -> Any:
        try:
            return work()
        finally:
            connections.close_all()

    return run


def test_concurrent_writers_and_a_sealer_leave_nothing_unsealed_and_no_false_break() -> None:
    threads, processes, per_writer = 4, 2, 40
    stop = threading.Event()
    breaks: list[Any] = []

    def write(tag: str) -> None:
        for i in range(per_writer):
            with transaction.atomic():
                if i % 4 == 0:
                    journal.record_many(
                        [("test.concurrent", (tag, i), {"n": i}), ("test.batch", None, {})]
                    )
                else:
                    journal.record("test.concurrent", object_id=f"{tag}-{i}", n=i)
                if i % 5 == 0:
                    time.sleep(0.02)  # held open while others commit

    def seal_and_verify() -> int:
        rounds = 0
        while not stop.is_set():
            seals.seal(wait=False)
            result = journal.verify()
            if result.broken is not None:
                breaks.append(result.broken)
            rounds += 1
        return rounds

    with ThreadPoolExecutor(max_workers=threads + 1) as pool:
        sealer = pool.submit(_in_thread(seal_and_verify))
        writers = [
            pool.submit(_in_thread(functools.partial(write, f"t{t}"))) for t in range(threads)
        ]
        others = [
            subprocess.Popen(
                [
                    sys.executable,
                    "manage.py",
                    "shell",
                    "-v0",
                    "-c",
                    WRITE.format(n=per_writer, tag=f"p{p}"),
                ],
                cwd=settings.BASE_DIR,
                env={
                    **os.environ,
                    "DATABASE_URL": _database_url(
                        connection.settings_dict["USER"], connection.settings_dict["PASSWORD"]
                    ),
                    "AUDIT_KEYS": settings.AUDIT_KEYS,
                    "MSSANTE_IGNORE_DOTENV": "true",
                },
            )
            for p in range(processes)
        ]
        for future in writers:
            future.result(timeout=300)  # a deadlock would hang here
        assert [other.wait(timeout=300) for other in others] == [0] * processes
        stop.set()
        assert sealer.result(timeout=300) > 0

    assert breaks == []
    expected = threads * (per_writer + per_writer // 4) + processes * per_writer
    assert AuditEvent.objects.filter(action__startswith="test.").count() == expected
    tasks.seal_journal.apply()
    result = journal.verify()
    assert result.broken is None and result.unsealed == 0
    assert result.count == AuditEvent.objects.count() == AuditSeal.objects.latest("id").total


def test_a_transaction_still_running_holds_the_seals_back() -> None:
    opened, release = threading.Event(), threading.Event()

    def long_transaction() -> None:
        with transaction.atomic():
            journal.record("test.slow")
            opened.set()
            assert release.wait(timeout=60)

    with ThreadPoolExecutor(max_workers=1) as pool:
        slow = pool.submit(_in_thread(long_transaction))
        assert opened.wait(timeout=60)
        later = journal.record("test.later")  # committed, after the slow one began
        assert tasks.seal_journal.apply().get() == 0
        result = journal.verify()
        assert result.broken is None and result.unsealed == 1
        release.set()
        slow.result(timeout=60)
    assert tasks.seal_journal.apply().get() == 2
    seal = AuditSeal.objects.get()
    slow_xid = AuditEvent.objects.get(action="test.slow").xid
    assert slow_xid is not None and later.xid is not None
    assert seal.lo <= slow_xid < later.xid < seal.hi
    call_command("verify_audit")


def test_migrate_moves_the_positions_past_a_logical_restore(
    capsys: pytest.CaptureFixture[str],
) -> None:
    journal.record("test.before")
    tasks.seal_journal.apply()
    # A dump restored into a new cluster: transaction ids start again far below.
    restored = positions.FUNCTIONS.replace("{offset}", str(-(10**12)))
    try:
        with database_superuser() as cursor:
            cursor.execute(restored)
        with pytest.raises(seals.PositionsWentBack):
            tasks.seal_journal.apply().get()
        call_command("verify_audit")
        assert "base restaurée par pg_dump" in capsys.readouterr().err
        db = connection.settings_dict
        owner = os.environ["DATABASE_OWNER_URL"].rsplit("/", 1)[0] + f"/{db['NAME']}"
        _manage("migrate", "-v0", url=owner)
        journal.record("test.after")
        assert tasks.seal_journal.apply().get() == 1
        call_command("verify_audit")
        assert "intact : 2 événement(s)," in capsys.readouterr().out
    finally:
        with database_superuser() as cursor:
            cursor.execute(positions.FUNCTIONS.replace("{offset}", "0"))
