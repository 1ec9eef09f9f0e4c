"""Run the inbound SMTP gateway for other operators (a process of its own in production)."""

from __future__ import annotations

import logging
import signal
import threading
from typing import Any

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.core.management.base import BaseCommand, CommandError

from mailboxes.transport.inbound import make_controller
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

    def handle(self, *args: Any, **options: Any) -> None:
        host, port = settings.SMTP_LISTEN
        if options["listen"]:
            parsed = envconf.parse_host_port(options["listen"])
            if parsed is None:
                raise CommandError(f"--listen : « {options['listen']} » n'est pas hôte:port.")
            host, port = parsed
        try:
            controller = make_controller(hostname=host, port=port)
        except ImproperlyConfigured as exc:
            raise CommandError(str(exc)) from None
        stop = threading.Event()
        for sig in (signal.SIGTERM, signal.SIGINT):
            signal.signal(sig, lambda *_: stop.set())
        controller.start()
        self.stdout.write(f"Passerelle SMTP à l'écoute sur {host}:{port}", ending="\n")
        self.stdout.flush()
        log.info("smtp gateway listening on %s:%s", host, port)
        try:
            stop.wait()
        finally:
            controller.stop()
            log.info("smtp gateway stopped")
