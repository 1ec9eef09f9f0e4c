"""What both import commands share: options, the progress bar and the summary."""

from __future__ import annotations

import sys
import time
from argparse import ArgumentParser
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from directory import services
from directory.importers.base import Importer
from directory.models import ImportRun
from mssante.lib.annuaire import FormatError


class ImportCommand(BaseCommand):
    importer_class: type[Importer[Any]]

    def add_arguments(self, parser: ArgumentParser) -> None:
        parser.add_argument("file", help="Fichier .txt ou archive .zip de l'extraction")
        parser.add_argument(
            "--force",
            action="store_true",
            help="Désactiver les entrées absentes même au-delà du seuil du garde-fou",
        )
        parser.add_argument(
            "--partial",
            action="store_true",
            help="Fichier partiel : ne désactiver aucune entrée absente",
        )
        parser.add_argument("--batch-size", type=int, default=5000)

    def handle(self, *args: Any, **options: Any) -> None:
        self._started = time.monotonic()
        progress = self._progress if sys.stderr.isatty() and options["verbosity"] > 0 else None
        try:
            run = services.import_file(
                self.importer_class.kind,
                options["file"],
                full=not options["partial"],
                force=options["force"],
                max_deactivation=settings.DIRECTORY_MAX_DEACTIVATION,
                batch_size=options["batch_size"],
                progress=progress,
            )
        except (FormatError, OSError) as exc:
            raise CommandError(str(exc)) from exc
        finally:
            if progress:
                sys.stderr.write("\n")
        self.stdout.write(summary_text(run))
        if run.status == ImportRun.Status.REFUSED:
            raise CommandError(run.message)

    def _progress(self, lines: int, position: int, total: int) -> None:
        share = min(position / total, 1.0) if total else 0.0
        width = 30
        filled = int(share * width)
        rate = lines / max(time.monotonic() - self._started, 1e-6)
        sys.stderr.write(
            f"\r[{'#' * filled}{'.' * (width - filled)}] {share:4.0%}  "
            f"{lines:>9,} lignes  {rate:>8,.0f} l/s".replace(",", " ")
        )
        sys.stderr.flush()


def summary_text(run: ImportRun) -> str:
    lines = [
        f"{run.get_kind_display()} — {run.file_name} : {run.get_status_display()}",
        f"  lues {run.read}, ajoutées {run.added}, modifiées {run.updated}, "
        f"inchangées {run.unchanged}, désactivées {run.deactivated}, rejetées {run.rejected}",
    ]
    for rejected in run.rejected_lines[:20]:
        lines.append(f"  ligne {rejected['line']} : {rejected['reason']}")
    if run.rejected > 20:
        lines.append(f"  … et {run.rejected - 20} autres lignes rejetées (voir l'administration)")
    return "\n".join(lines)
