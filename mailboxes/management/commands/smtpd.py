"""Run the inbound SMTP gateway for other operators (a process of its own in production).

``--processes N`` (or SMTP_PROCESSES) binds the port once, then forks N processes that
all serve that socket, as production does with one process per core: the GIL lets one
Python process use one core. The first process watches the others, starts again one that
dies, and stops them all on SIGTERM or SIGINT.
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import socket
import threading
import time
from typing import Any

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.core.management.base import BaseCommand, CommandError
from django.db import connections

from mailboxes.transport import tls
from mailboxes.transport.inbound import listening_socket, make_controller
from mssante import envconf

log = logging.getLogger(__name__)


class Command(BaseCommand):
    help = (
        "Passerelle SMTP entrante entre opérateurs MSSanté : STARTTLS et certificat client "
        "obligatoires, DN vérifié sur la liste blanche (SMTP_LISTEN, SMTP_TLS_CERT, "
        "SMTP_TLS_KEY, SMTP_CA_FILE)."
    )

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument(
            "--listen", default="", help="hôte:port d'écoute (par défaut SMTP_LISTEN)."
        )
        parser.add_argument(
            "--processes",
            type=int,
            default=0,
            help="processus servant le même port (par défaut SMTP_PROCESSES ; un par cœur).",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        host, port = settings.SMTP_LISTEN
        if options["listen"]:
            parsed = envconf.parse_host_port(options["listen"])
            if parsed is None:
                raise CommandError(f"--listen : « {options['listen']} » n'est pas hôte:port.")
            host, port = parsed
        processes = options["processes"] or settings.SMTP_PROCESSES
        if processes < 1:
            raise CommandError("--processes : au moins 1.")
        try:
            context = tls.server_context()
        except ImproperlyConfigured as exc:
            raise CommandError(str(exc)) from None
        try:
            sock = listening_socket(host, port)
        except OSError as exc:
            raise CommandError(f"Écoute impossible sur {host}:{port} : {exc}") from None
        self.stdout.write(
            f"Passerelle SMTP à l'écoute sur {host}:{port} ({processes} processus)", ending="\n"
        )
        self.stdout.flush()
        log.info("smtp gateway listening on %s:%s (%d processes)", host, port, processes)
        if processes == 1:
            serve(sock, context)
        else:
            supervise(sock, context, processes)


def serve(sock: socket.socket, context: Any) -> None:
    """Serve ``sock`` in this process until SIGTERM or SIGINT."""
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    controller = make_controller(sock=sock, tls_context=context)
    controller.start()
    try:
        stop.wait()
    finally:
        controller.stop()
        log.info("smtp gateway process %d stopped", os.getpid())


def supervise(sock: socket.socket, context: Any, processes: int) -> None:
    """Fork ``processes`` servers of ``sock``; start again any that dies until told to stop."""
    # Nothing of this process may be shared with the children but the socket.
    connections.close_all()
    children: dict[int, float] = {}
    stopping = threading.Event()

    signals = {signal.SIGTERM, signal.SIGINT}

    def spawn() -> None:
        # Signals wait until the child has its own handlers (else it would run ours).
        signal.pthread_sigmask(signal.SIG_BLOCK, signals)
        pid = os.fork()
        if pid == 0:
            code = 0
            try:
                for sig in signals:
                    signal.signal(sig, signal.SIG_DFL)
                signal.pthread_sigmask(signal.SIG_UNBLOCK, signals)
                serve(sock, context)
            except BaseException:
                log.exception("smtp gateway process %d failed", os.getpid())
                code = 1
            finally:
                logging.shutdown()
                os._exit(code)
        children[pid] = time.monotonic()
        signal.pthread_sigmask(signal.SIG_UNBLOCK, signals)

    def forward(signum: int, _frame: Any) -> None:
        stopping.set()
        for pid in list(children):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signum)

    for sig in signals:
        signal.signal(sig, forward)
    for _ in range(processes):
        spawn()
    while children:
        try:
            pid, status = os.wait()
        except ChildProcessError:
            break
        started = children.pop(pid, None)
        if started is None or stopping.is_set():
            continue
        log.error("smtp gateway process %d ended (status %s); starting another", pid, status)
        # A process that dies at once would otherwise be started again in a tight loop.
        if time.monotonic() - started < 1:
            time.sleep(1)
        if not stopping.is_set():
            spawn()
    sock.close()
    log.info("smtp gateway stopped")
