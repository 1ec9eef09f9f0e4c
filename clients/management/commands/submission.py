"""Run the SMTP submission server for practice software and mail clients (a process of its own)."""

from __future__ import annotations

import logging
import signal
import threading
from typing import Any

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.core.management.base import BaseCommand, CommandError

from clients.submission import make_controller, server_context
from mailboxes.transport.inbound import listening_socket
from mssante import envconf

log = logging.getLogger(__name__)


class Command(BaseCommand):
    help = (
        "Soumission SMTP pour les logiciels métier et clients de messagerie : STARTTLS "
        "(SUBMISSION_LISTEN, 587 en production) et TLS implicite (SUBMISSION_TLS_LISTEN, "
        "465), AUTH par mot de passe d'application après TLS seulement."
    )

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("--listen", default="", help="hôte:port STARTTLS (SUBMISSION_LISTEN).")
        parser.add_argument(
            "--listen-tls",
            default=None,
            help="hôte:port TLS implicite (SUBMISSION_TLS_LISTEN ; vide : aucun).",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        starttls = _address(options["listen"]) if options["listen"] else settings.SUBMISSION_LISTEN
        implicit_raw = (
            settings.SUBMISSION_TLS_LISTEN
            if options["listen_tls"] is None
            else options["listen_tls"]
        )
        implicit = _address(implicit_raw) if implicit_raw else None
        try:
            context = server_context()
        except ImproperlyConfigured as exc:
            raise CommandError(str(exc)) from None
        controllers = []
        for address, tls_first in ((starttls, False), (implicit, True)):
            if address is None:
                continue
            try:
                sock = listening_socket(*address)
            except OSError as exc:
                raise CommandError(
                    f"Écoute impossible sur {address[0]}:{address[1]} : {exc}"
                ) from None
            controllers.append(
                make_controller(
                    hostname=address[0],
                    port=address[1],
                    implicit_tls=tls_first,
                    tls_context=context,
                    sock=sock,
                )
            )
        stop = threading.Event()
        for sig in (signal.SIGTERM, signal.SIGINT):
            signal.signal(sig, lambda *_: stop.set())
        for controller in controllers:
            controller.start()
        where = f"{starttls[0]}:{starttls[1]} (STARTTLS)"
        if implicit is not None:
            where += f", {implicit[0]}:{implicit[1]} (TLS)"
        self.stdout.write(f"Soumission SMTP à l'écoute sur {where}")
        self.stdout.flush()
        log.info("submission listening on %s", where)
        try:
            stop.wait()
        finally:
            for controller in controllers:
                controller.stop()


def _address(value: str) -> tuple[str, int]:
    parsed = envconf.parse_host_port(value)
    if parsed is None:
        raise CommandError(f"« {value} » n'est pas hôte:port.")
    return parsed
