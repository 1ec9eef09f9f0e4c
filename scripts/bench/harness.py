"""What every benchmark shares: a private production-like stack, CPU metering, tables.

``Stack`` starts, in a private temp dir and on free loopback ports, a **durable** PostgreSQL
of its own (``initdb``; ``fsync``, ``synchronous_commit`` and ``full_page_writes`` at their
defaults, i.e. on — never the ``fsync=off`` one of ``scripts/services``), Redis, clamd
(scanning on unless told otherwise), a Celery prefork worker, Celery beat, gunicorn serving
``mssante.wsgi`` and, when asked, ``manage.py smtpd``. The database has the two roles of
``scripts/services`` and of production: the schema owner runs the migrations, the processes
of the application log in as ``app``. Every process runs in a session of its own and is
stopped by the PID recorded when it was started, in the reverse order, also on an exception,
Ctrl-C or SIGTERM.

``Window`` measures a run: wall time, the machine's load average before and after, CPU
seconds of each process group (PostgreSQL and all its backends, Redis, clamd, gunicorn and
its workers, Celery, the SMTP gateway), the benchmark's own CPU (the load generator:
excluded from "all", as the anchor excludes its own) and what every other process of the
machine took meanwhile.
"""

from __future__ import annotations

import contextlib
import multiprocessing
import multiprocessing.pool
import os
import re
import resource
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent  # the virtualenv running the benchmark
CLK = os.sysconf("SC_CLK_TCK")
NCPU = os.cpu_count() or 1
GROUPS = ("postgres", "redis", "clamd", "web", "celery", "smtpd")
# The PostgreSQL binaries: /usr/local/bin on the test machines, Debian's versioned folders.
PG_PATH = os.pathsep.join(
    [
        os.environ.get("PATH", ""),
        "/usr/local/bin",
        "/usr/sbin",
        "/sbin",
        *sorted(str(p) for p in Path("/usr/lib/postgresql").glob("*/bin")),
    ]
)
EICAR = r"X5O!P%@AP[4\PZX54(P^)7CC)7}$EICAR-STANDARD-ANTIVIRUS-TEST-FILE!$H+H*"


# The environment we were started with (Stack.migrate() adds the stack's own to os.environ).
CALLER_ENV = dict(os.environ)


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def say(text: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S', time.gmtime())} UTC] {text}", flush=True)


# --------------------------------------------------------------------------- /proc


def proc_table() -> dict[int, tuple[int, int]]:
    """pid -> (ppid, CPU ticks: utime + stime + cutime + cstime) of every live process.

    A process's reaped children are in its cutime/cstime: a tree's total counts the
    PostgreSQL backends that already exited, the gunicorn workers that were recycled…
    """
    table = {}
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            text = Path(f"/proc/{name}/stat").read_text()
        except OSError:
            continue
        fields = text[text.rfind(")") + 2 :].split()
        table[int(name)] = (int(fields[1]), sum(int(x) for x in fields[11:15]))
    return table


def descendants(roots: Sequence[int], table: dict[int, tuple[int, int]]) -> list[int]:
    """The roots that are alive and all their live descendants."""
    children: dict[int, list[int]] = {}
    for pid, (ppid, _ticks) in table.items():
        children.setdefault(ppid, []).append(pid)
    found, todo = [], [p for p in roots if p in table]
    while todo:
        pid = todo.pop()
        found.append(pid)
        todo.extend(children.get(pid, ()))
    return found


def tree_cpu(roots: Sequence[int], table: dict[int, tuple[int, int]] | None = None) -> float:
    """CPU seconds of the process trees under ``roots`` (reaped children included)."""
    table = proc_table() if table is None else table
    return sum(table[p][1] for p in descendants(roots, table)) / CLK


def rss_mb(pid: int) -> float:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return 0.0


def children_of(pid: int) -> list[int]:
    table = proc_table()
    return [p for p, (ppid, _ticks) in table.items() if ppid == pid]


def box_ticks() -> tuple[int, int]:
    """(busy, total) CPU ticks of the whole machine since boot (/proc/stat)."""
    values = [int(x) for x in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    total = sum(values[:8])
    return total - values[3] - values[4], total


def loadavg() -> float:
    return float(Path("/proc/loadavg").read_text().split()[0])


def own_cpu() -> float:
    """CPU seconds of this process (all threads) and of its reaped children (load processes)."""
    me = resource.getrusage(resource.RUSAGE_SELF)
    kids = resource.getrusage(resource.RUSAGE_CHILDREN)
    return me.ru_utime + me.ru_stime + kids.ru_utime + kids.ru_stime


# --------------------------------------------------------------------------- measuring


@dataclass
class Measure:
    """One measured window: its seconds, CPU per group, the generator's, the machine's."""

    seconds: float
    cpu: dict[str, float]  # group -> CPU seconds during the window
    generator_cpu: float
    other_pct: float  # share of the machine (all cores) taken by every other process
    load_before: float
    load_after: float

    @property
    def total_cpu(self) -> float:
        return sum(self.cpu.values())

    def ms_per(self, count: int) -> dict[str, float]:
        """CPU milliseconds per message (or request) by group, and ``all``."""
        per = {k: 1000 * v / max(1, count) for k, v in self.cpu.items()}
        per["all"] = 1000 * self.total_cpu / max(1, count)
        return per

    @property
    def load(self) -> str:
        return f"{self.load_before:.1f}→{self.load_after:.1f}"


class Window:
    """Measures what happens between ``start()`` and ``stop()``.

    ``groups`` gives the root PIDs of each process group (a callable: processes may be
    started after the window object is made). The generator's CPU is this process's own
    (its threads: probes, pollers) plus its reaped children (load processes); pass more
    with ``stop(generator_cpu=…)`` when the load ran elsewhere.
    """

    def __init__(self, groups: Callable[[], dict[str, list[int]]]) -> None:
        self.groups = groups

    def start(self) -> Window:
        self.load0 = loadavg()
        table = proc_table()
        self.cpu0 = {k: tree_cpu(v, table) for k, v in self.groups().items()}
        self.box0 = box_ticks()
        self.own0 = own_cpu()
        self.t0 = time.perf_counter()
        return self

    def stop(self, generator_cpu: float = 0.0) -> Measure:
        seconds = time.perf_counter() - self.t0
        table = proc_table()
        cpu = {k: tree_cpu(v, table) - self.cpu0.get(k, 0.0) for k, v in self.groups().items()}
        busy1, total1 = box_ticks()
        busy = (busy1 - self.box0[0]) / CLK
        total = (total1 - self.box0[1]) / CLK
        generator = own_cpu() - self.own0 + generator_cpu
        others = max(0.0, busy - sum(cpu.values()) - generator)
        return Measure(
            seconds=seconds,
            cpu=cpu,
            generator_cpu=generator,
            other_pct=100 * others / total if total else 0.0,
            load_before=self.load0,
            load_after=loadavg(),
        )


# --------------------------------------------------------------------------- processes


@dataclass
class Service:
    name: str
    group: str
    pid: int
    proc: subprocess.Popen[bytes] | None = None
    stop: Callable[[], None] | None = None  # its own stop command, tried before signals
    log: Path | None = None


def stop_pid(pid: int, proc: subprocess.Popen[bytes] | None = None, timeout: float = 30) -> None:
    """SIGTERM the process, wait, then SIGKILL it and whatever it left (by PID)."""
    table = proc_table()
    family = descendants([pid], table)
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            break
        if proc is None and not _alive(pid):
            break
        time.sleep(0.05)
    for other in family:
        if _alive(other):
            with contextlib.suppress(ProcessLookupError):
                os.kill(other, signal.SIGKILL)
    if proc is not None:
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(timeout=5)


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return state[state.rfind(")") + 2] != "Z"


def wait_for(what: str, check: Callable[[], bool], timeout: float, log: Path | None = None) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with contextlib.suppress(Exception):
            if check():
                return
        time.sleep(0.1)
    tail = log.read_text(errors="replace")[-2000:] if log and log.exists() else ""
    raise SystemExit(f"{what} did not start within {timeout:.0f} s{': ' + tail if tail else ''}")


def smtp_greets(port: int) -> bool:
    with socket.create_connection(("127.0.0.1", port), timeout=2) as sock:
        return sock.recv(100).startswith(b"220")


def as_postgres(cmd: list[str], **kwargs: Any) -> subprocess.CompletedProcess[bytes]:
    """Run a PostgreSQL program: as the ``postgres`` user when we are root (it refuses root)."""
    if os.geteuid() == 0:
        cmd = ["runuser", "-u", "postgres", "--", *cmd]
    return subprocess.run(
        cmd, cwd="/", env={**os.environ, "PATH": PG_PATH}, check=True, **kwargs
    )  # fmt: skip


def run(main: Callable[[], None]) -> None:
    """Run a benchmark's main; Ctrl-C ends it quietly (the stack stopped on the way out)."""
    try:
        main()
    except KeyboardInterrupt:
        sys.exit("interrupted: every process of the benchmark was stopped")


def load_pool(processes: int) -> multiprocessing.pool.Pool:
    """Load processes (spawned: no Django, no connection inherited) that leave Ctrl-C to us:
    a pool whose workers die of SIGINT hangs when it is terminated."""
    return multiprocessing.get_context("spawn").Pool(processes, initializer=_ignore_interrupt)


def _ignore_interrupt() -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)


# --------------------------------------------------------------------------- the stack


@dataclass
class Sizes:
    """How many of each process: production-like on two cores by default."""

    web_workers: int = 2
    web_threads: int = 1  # 1: gunicorn's sync workers; more: gthread
    celery: int = 2
    beat: bool = True
    scan: bool = True
    smtpd: bool = False
    smtpd_processes: int = 2  # used when `manage.py smtpd --processes` exists


@dataclass
class Stack:
    """The private stack. Use as a context manager: everything stops on the way out."""

    label: str
    sizes: Sizes = field(default_factory=Sizes)
    keep: bool = False
    extra_env: dict[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.work = Path(tempfile.mkdtemp(prefix=f"mssante-bench-{self.label}-"))
        # PostgreSQL, Postfix and Dovecot (the anchor) must traverse it.
        self.work.chmod(0o755)
        self.services: list[Service] = []
        self.children: list[subprocess.Popen[bytes]] = []  # foreground helpers (the anchor)
        self.ports = {k: free_port() for k in ("pg", "redis", "clamd", "web", "smtp")}
        self.pg_settings: dict[str, str] = {}
        self.smtpd_note = ""
        self._handlers: dict[int, Any] = {}

    # ----------------------------------------------------------------- lifecycle

    def __enter__(self) -> Stack:
        for sig in (signal.SIGTERM, signal.SIGHUP):
            self._handlers[sig] = signal.signal(sig, self._exit_on_signal)
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()
        for sig, handler in self._handlers.items():
            signal.signal(sig, handler)
        if self.keep:
            say(f"kept {self.work}")
        else:
            shutil.rmtree(self.work, ignore_errors=True)

    @staticmethod
    def _exit_on_signal(signum: int, frame: FrameType | None) -> None:
        raise SystemExit(128 + signum)

    def stop(self) -> None:
        """Stop every process, newest first, each by its recorded PID."""
        for child in reversed(self.children):
            if child.poll() is None:
                stop_pid(child.pid, child, timeout=120)  # the anchor cleans up on SIGTERM
        self.children.clear()
        while self.services:
            service = self.services.pop()
            if service.stop is not None:
                with contextlib.suppress(Exception):
                    service.stop()
            if _alive(service.pid):
                stop_pid(service.pid, service.proc)

    def spawn(self, name: str, group: str, cmd: list[str], env: dict[str, str]) -> Service:
        log = self.work / f"{name}.log"
        proc = subprocess.Popen(
            cmd, cwd=ROOT, env=env, stdout=log.open("wb"), stderr=subprocess.STDOUT,
            start_new_session=True,  # Ctrl-C reaches us only: we stop them in order
        )  # fmt: skip
        service = Service(name, group, proc.pid, proc, log=log)
        self.services.append(service)
        return service

    def groups(self) -> dict[str, list[int]]:
        found: dict[str, list[int]] = {}
        for service in self.services:
            found.setdefault(service.group, []).append(service.pid)
        return found

    def window(self) -> Window:
        return Window(self.groups)

    def pids(self, name: str) -> list[int]:
        return [s.pid for s in self.services if s.name == name]

    # ----------------------------------------------------------------- storage

    @property
    def owner_url(self) -> str:
        return f"postgres://mssante_owner:owner@127.0.0.1:{self.ports['pg']}/webmail"

    @property
    def app_url(self) -> str:
        return f"postgres://app:app@127.0.0.1:{self.ports['pg']}/webmail"

    def start_storage(self) -> None:
        needed = ["initdb", "pg_ctl", "redis-server"] + (["clamd"] if self.sizes.scan else [])
        missing = [p for p in needed if shutil.which(p, path=PG_PATH) is None]
        if missing:
            raise SystemExit(f"not installed: {', '.join(missing)} (bash scripts/install-deps)")
        self.start_postgres()
        self.start_redis()
        if self.sizes.scan:
            self.start_clamd()
        else:
            print(
                "WARNING: --no-scan: clamd is not started and messages are not scanned; "
                "figures are not comparable with the targets."
            )

    def start_postgres(self) -> None:
        folder = self.work / "pg"
        (folder / "sock").mkdir(parents=True)
        if os.geteuid() == 0:
            shutil.chown(folder, "postgres")
            shutil.chown(folder / "sock", "postgres")
        data = folder / "data"
        # No --no-sync, no fsync=off: PostgreSQL's durable defaults, as Postfix fsyncs.
        as_postgres(
            ["initdb", "-D", str(data), "-U", "postgres", "-A", "trust", "-E", "UTF8",
             "--locale=C.UTF-8"], stdout=subprocess.DEVNULL,
        )  # fmt: skip
        port = self.ports["pg"]
        as_postgres(
            ["pg_ctl", "-D", str(data), "-l", str(folder / "server.log"), "-w", "-t", "60", "-o",
             f"-c listen_addresses=127.0.0.1 -p {port} -k {folder / 'sock'} -c max_connections=200",
             "start"], stdout=subprocess.DEVNULL, start_new_session=True,
        )  # fmt: skip
        pid = int((data / "postmaster.pid").read_text().split()[0])

        def pg_stop() -> None:
            as_postgres(["pg_ctl", "-D", str(data), "-m", "fast", "-w", "-t", "60", "stop"],
                        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # fmt: skip

        self.services.append(Service("postgres", "postgres", pid, stop=pg_stop))
        import psycopg

        url = f"postgres://postgres@127.0.0.1:{port}/postgres"
        with psycopg.connect(url, autocommit=True) as conn:
            # The roles of scripts/services and docs/deployment.md: the owner migrates, the
            # application logs in as `app` (granted its rights by migrate).
            conn.execute("CREATE ROLE mssante_owner LOGIN PASSWORD 'owner' CREATEDB")
            conn.execute("CREATE ROLE app LOGIN PASSWORD 'app'")
            conn.execute("CREATE DATABASE webmail OWNER mssante_owner")
            for name in ("fsync", "synchronous_commit", "full_page_writes", "wal_sync_method"):
                row = conn.execute(f"SHOW {name}").fetchone()
                self.pg_settings[name] = str(row[0]) if row else "?"
        if self.pg_settings["fsync"] != "on" or self.pg_settings["synchronous_commit"] != "on":
            raise SystemExit(f"PostgreSQL is not durable: {self.pg_settings}")

    def start_redis(self) -> None:
        folder = self.work / "redis"
        folder.mkdir()
        port = self.ports["redis"]
        # As scripts/services: no persistence (the Delivery table is the outbox; the sweeper
        # enqueues again what the broker lost).
        self.spawn(
            "redis", "redis",
            ["redis-server", "--bind", "127.0.0.1", "--port", str(port), "--save", "",
             "--appendonly", "no", "--dir", str(folder)], dict(os.environ),
        )  # fmt: skip
        import redis

        wait_for("Redis", lambda: bool(redis.Redis(port=port).ping()), 20)

    def start_clamd(self) -> None:
        folder = self.work / "clamd"
        (folder / "db").mkdir(parents=True)
        # clamd refuses an empty database; no download here: the two local EICAR signatures
        # of scripts/services (a real signature database makes each scan cost more).
        (folder / "db" / "local.hdb").write_text(
            "44d88612fea8a8f36de82e1278abb02f:68:Local.EICAR.HDB\n"
        )
        (folder / "db" / "local.ndb").write_text(f"Local.EICAR.NDB:0:*:{EICAR.encode().hex()}\n")
        conf = folder / "clamd.conf"
        conf.write_text(
            f"TCPSocket {self.ports['clamd']}\nTCPAddr 127.0.0.1\n"
            f"DatabaseDirectory {folder / 'db'}\nForeground yes\nUser root\n"
            f"LogFile {folder / 'clamd.log'}\nStreamMaxLength 60M\nMaxFileSize 60M\n"
            "MaxScanSize 200M\n"
        )
        service = self.spawn("clamd", "clamd", ["clamd", "-c", str(conf)], dict(os.environ))

        def answers() -> bool:
            with socket.create_connection(("127.0.0.1", self.ports["clamd"]), timeout=2) as s:
                s.sendall(b"zPING\0")
                return s.recv(10).startswith(b"PONG")

        wait_for("clamd", answers, 60, service.log)

    # ----------------------------------------------------------------- the application

    @property
    def env(self) -> dict[str, str]:
        """The environment of every process of the application (and of this one)."""
        keep = {k: v for k, v in CALLER_ENV.items() if k not in OURS}
        return {
            **keep,
            "DJANGO_SETTINGS_MODULE": "mssante.settings",
            "MSSANTE_IGNORE_DOTENV": "true",
            "DATABASE_URL": self.app_url,
            "DATABASE_APP_ROLE": "app",
            "CELERY_BROKER_URL": f"redis://127.0.0.1:{self.ports['redis']}/0",
            "CLAMD_ADDRESS": f"127.0.0.1:{self.ports['clamd']}" if self.sizes.scan else "",
            "MSSANTE_VAR_DIR": str(self.work / "var"),
            "LOG_LEVEL": "WARNING",
            **self.extra_env,
        }

    def migrate(self) -> None:
        """Migrate as the schema owner (grants `app` its rights), then set Django up here."""
        say("migrating (as the schema owner)")
        log = self.work / "migrate.log"
        with log.open("wb") as out:
            done = subprocess.run(
                [sys.executable, "manage.py", "migrate", "--noinput", "-v0"], cwd=ROOT,
                env={**self.env, "DATABASE_URL": self.owner_url}, stdout=out, stderr=subprocess.STDOUT,
            )  # fmt: skip
        if done.returncode:
            raise SystemExit("migrate failed: " + log.read_text(errors="replace")[-3000:])
        os.environ.update(self.env)
        sys.path.insert(0, str(ROOT))
        import django

        django.setup()

    def start_app(self, *, web: bool = True, worker: bool = True) -> None:
        env = self.env
        if worker:
            self.start_celery(env)
        if web:
            self.start_gunicorn(env)
        if self.sizes.smtpd:
            self.start_smtpd(env)

    def start_celery(self, env: dict[str, str]) -> None:
        worker = self.spawn(
            "celery-worker", "celery",
            [str(BIN / "celery"), "-A", "mssante", "worker", "--pool=prefork",
             f"--concurrency={self.sizes.celery}", "--without-gossip", "--without-mingle",
             "--loglevel=WARNING", "-n", f"bench-{os.getpid()}@%h"], env,
        )  # fmt: skip
        from celery import Celery

        probe = Celery(broker=env["CELERY_BROKER_URL"])
        wait_for("the Celery worker", lambda: bool(probe.control.ping(timeout=0.5)), 60, worker.log)
        if self.sizes.beat:
            self.spawn(
                "celery-beat", "celery",
                [str(BIN / "celery"), "-A", "mssante", "beat", "--loglevel=WARNING",
                 "-s", str(self.work / "beat-schedule")], env,
            )  # fmt: skip

    def start_gunicorn(self, env: dict[str, str]) -> None:
        threads = self.sizes.web_threads
        cmd = [str(BIN / "gunicorn"), "mssante.wsgi", "-b", f"127.0.0.1:{self.ports['web']}",
               "-w", str(self.sizes.web_workers), "--log-level", "warning"]  # fmt: skip
        if threads > 1:
            cmd += ["--worker-class", "gthread", "--threads", str(threads)]
        service = self.spawn("gunicorn", "web", cmd, env)

        def healthy() -> bool:
            import http.client

            conn = http.client.HTTPConnection("127.0.0.1", self.ports["web"], timeout=5)
            conn.request("GET", "/sante/")
            return conn.getresponse().status == 200

        wait_for("gunicorn", healthy, 60, service.log)

    @property
    def web_label(self) -> str:
        kind = f"gthread x {self.sizes.web_threads}" if self.sizes.web_threads > 1 else "sync"
        return f"gunicorn {self.sizes.web_workers} {kind} workers"

    def start_smtpd(self, env: dict[str, str]) -> None:
        helped = subprocess.run(
            [sys.executable, "manage.py", "smtpd", "--help"], cwd=ROOT, env=env,
            capture_output=True, text=True, check=False,
        )  # fmt: skip
        cmd = [sys.executable, "manage.py", "smtpd", "--listen", f"127.0.0.1:{self.ports['smtp']}"]
        if "--processes" in helped.stdout:
            cmd += ["--processes", str(self.sizes.smtpd_processes)]
            self.smtpd_note = f"manage.py smtpd --processes {self.sizes.smtpd_processes}"
        else:
            self.smtpd_note = "manage.py smtpd, one process (this tree has no --processes)"
        service = self.spawn("smtpd", "smtpd", cmd, env)
        wait_for("manage.py smtpd", lambda: smtp_greets(self.ports["smtp"]), 60, service.log)

    # ----------------------------------------------------------------- reporting

    def describe(self) -> list[str]:
        pg = self.pg_settings
        lines = [
            f"machine: {NCPU} CPU, {_cpu_model()}; work dir {self.work} ({_fstype(self.work)})",
            f"PostgreSQL {_pg_version()} of its own: fsync={pg.get('fsync')} "
            f"synchronous_commit={pg.get('synchronous_commit')} "
            f"full_page_writes={pg.get('full_page_writes')} wal_sync_method="
            f"{pg.get('wal_sync_method')}; app role `app`, migrations by the owner",
        ]
        names = {s.name for s in self.services}
        running = [
            self.web_label if "gunicorn" in names else "",
            f"Celery prefork x {self.sizes.celery}" if "celery-worker" in names else "",
            "Celery beat" if "celery-beat" in names else "",
            self.smtpd_note if "smtpd" in names else "",
            "clamd (2 local signatures)" if "clamd" in names else "NO SCANNING",
            "Redis (no persistence)",
        ]
        lines.append("processes: " + ", ".join(p for p in running if p))
        ours = ", ".join(f"{k}={v}" for k, v in self.extra_env.items() if not k.startswith("SMTP_"))
        if any(k.startswith("SMTP_") for k in self.extra_env):
            ours += (", " if ours else "") + "SMTP_TLS_CERT/KEY, SMTP_CA_FILE (made by trustme)"
        if ours:
            lines.append(f"settings set by the benchmark: {ours}")
        tuned = settings_from_environment()
        lines.append(
            "settings from your environment: "
            + (", ".join(f"{k}={v}" for k, v in tuned.items()) or "none (the app's defaults)")
        )
        return lines

    def rss(self) -> dict[str, float]:
        """Largest RSS (MB) of one gunicorn worker and of one Celery worker process, now."""
        found = {"web": 0.0, "celery": 0.0}
        for pid in self.pids("gunicorn"):
            for worker in children_of(pid):
                found["web"] = max(found["web"], rss_mb(worker))
        for pid in self.pids("celery-worker"):
            for worker in [pid, *children_of(pid)]:
                found["celery"] = max(found["celery"], rss_mb(worker))
        return found


# Variables the stack sets itself: never taken from the caller's environment.
OURS = {
    "DJANGO_SETTINGS_MODULE", "MSSANTE_IGNORE_DOTENV", "DATABASE_URL", "DATABASE_APP_ROLE",
    "CELERY_BROKER_URL", "CLAMD_ADDRESS", "MSSANTE_VAR_DIR", "LOG_LEVEL", "DATABASE_OWNER_URL",
}  # fmt: skip


def settings_from_environment() -> dict[str, str]:
    """The app's documented settings (read by mssante/settings.py) that the caller's
    environment sets: they reach every process of the stack."""
    text = (ROOT / "mssante" / "settings.py").read_text()
    names = set(re.findall(r"conf\.\w+\(\s*\"([A-Z][A-Z0-9_]+)\"", text))
    return {k: CALLER_ENV[k] for k in sorted(names - OURS) if k in CALLER_ENV}


def _cpu_model() -> str:
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            return line.split(":", 1)[1].strip()
    return "?"


def _fstype(path: Path) -> str:
    found = subprocess.run(["findmnt", "-no", "FSTYPE", "-T", str(path)], capture_output=True,
                           text=True, check=False)  # fmt: skip
    return found.stdout.strip() or "?"


def _pg_version() -> str:
    found = subprocess.run(["postgres", "--version"], capture_output=True, text=True, check=False,
                           env={**os.environ, "PATH": PG_PATH})  # fmt: skip
    version = re.search(r"\d+\.\d+", found.stdout)
    return version.group(0) if version else "?"


# --------------------------------------------------------------------------- tables


def fmt(value: float | None, spec: str = ".1f") -> str:
    return "-" if value is None else format(value, spec)


def verdict(value: float | None, target: float, *, at_least: bool) -> str:
    if value is None:
        return "-"
    return "met" if (value >= target if at_least else value <= target) else "NOT met"


def table(title: str, headers: list[str], rows: list[list[str]], notes: Sequence[str] = ()) -> None:
    """A plain text table: first column left-aligned, the others right-aligned."""
    widths = [max(len(str(r[i])) for r in [headers, *rows]) for i in range(len(headers))]

    def line(cells: list[str]) -> str:
        first = str(cells[0]).ljust(widths[0])
        return "  ".join(
            [first] + [str(c).rjust(w) for c, w in zip(cells[1:], widths[1:], strict=True)]
        )

    print()
    print(title)
    print(line(headers))
    print("  ".join("-" * w for w in widths))
    for row in rows:
        print(line(row))
    for note in notes:
        print(note)


def cpu_cells(measure: Measure | None, count: int, groups: Sequence[str]) -> list[str]:
    if measure is None:
        return ["-"] * (len(groups) + 1)
    per = measure.ms_per(count)
    return [fmt(per.get(g)) for g in groups] + [fmt(per["all"])]


def percentile(values: Sequence[float], p: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(p / 100 * len(ordered)))]
