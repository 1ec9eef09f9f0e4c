"""The batch upsert engine shared by both Annuaire Santé importers.

Memory stays constant: lines are parsed one at a time and written in batches.
Each row carries a digest of its imported fields, so a line that did not change
since the last run is not rewritten: only its ``seen_in_import`` mark moves.
Rows of the table that no line of a full import touched are then deactivated
in one UPDATE, unless that would deactivate more than the allowed share (an
empty or truncated file must never empty the directory): then the whole run is
rolled back and recorded as refused.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any, Generic, TypeVar

from django.db import connection, models, transaction
from django.utils import timezone

from directory.importers.postgres import PgStage
from directory.models import ImportRun
from mssante.lib import annuaire

MAX_REJECTED_KEPT = 100

Progress = Callable[[int, int, int], None]
"""Called with (lines read, bytes read, total bytes) after each batch."""

R = TypeVar("R")


class DeactivationGuardError(Exception):
    """A full import would deactivate more than the allowed share of the directory."""


@dataclass
class Summary:
    read: int = 0
    added: int = 0
    updated: int = 0
    unchanged: int = 0
    deactivated: int = 0
    rejected: int = 0
    rejected_lines: list[dict[str, Any]] = field(default_factory=list)

    def reject(self, line: int, reason: str) -> None:
        self.rejected += 1
        if len(self.rejected_lines) < MAX_REJECTED_KEPT:
            self.rejected_lines.append({"line": line, "reason": reason})


@dataclass
class Pending(Generic[R]):
    line: int
    key: str
    record: R
    digest: str


class Importer(Generic[R]):
    """Subclasses say which model, key, header and how a record becomes model fields."""

    kind: str
    header: tuple[str, ...]
    model: type[models.Model]
    key: str
    # Lines repeating a key already read: rejected (MSS addresses) or merged into
    # the first one (PS: one line per activity of the same professional).
    duplicates_rejected = True
    # SQL condition on a stored row (alias t) under which an import may rewrite
    # or deactivate it; the PostgreSQL path's counterpart of existing()/scope().
    owned_sql = "TRUE"
    bulk_indexes: tuple[tuple[str, str], ...] = ()
    lock_key = 0  # distinct per importer: runs of one kind are serialised

    def __init__(
        self,
        *,
        full: bool = True,
        force: bool = False,
        max_deactivation: float = 0.10,
        batch_size: int = 5000,
        progress: Progress | None = None,
    ) -> None:
        self.full = full
        self.force = force
        self.max_deactivation = max_deactivation
        self.batch_size = batch_size
        self.progress = progress

    # --- what subclasses provide -------------------------------------------------
    def parse(self, fields: list[str]) -> R:
        raise NotImplementedError

    def key_of(self, record: R) -> str:
        raise NotImplementedError

    def digest_of(self, record: R) -> str:
        raise NotImplementedError

    def values(self, record: R) -> dict[str, Any]:
        raise NotImplementedError

    def existing(self, keys: list[str]) -> Iterator[tuple[str, Any, str, int | None, bool]]:
        """(key, pk, digest, seen_in_import, active) of the rows already stored; pk is
        None for rows the import must never touch."""
        rows = self.model._default_manager.filter(**{f"{self.key}__in": keys}).values_list(
            self.key, "pk", "content_hash", "seen_in_import", "active"
        )
        yield from rows

    def scope(self) -> models.QuerySet[Any]:
        """Rows a full import owns (and may deactivate)."""
        return self.model._default_manager.all()

    def withheld(self, keys: list[str]) -> set[str]:
        """Keys that must never be stored from the file, whatever it says."""
        return set()

    withheld_reason = ""

    def after(self, run: ImportRun) -> None:
        """Work after the rows are written (in the same transaction)."""

    # --- the engine --------------------------------------------------------------
    def run(self, path: str | Path) -> ImportRun:
        """Import the file at path and return the recorded run (refused runs included)."""
        path = Path(path)
        # The header is checked before anything is recorded: a wrong file is
        # refused at once with FormatError and leaves no trace but the message.
        with annuaire.open_extraction(path) as (stream, name, total):
            lines = annuaire.read_lines(stream, self.header)
            first = next(lines, None)
            run = ImportRun.objects.create(kind=self.kind, file_name=name[:255])
            summary = Summary()
            try:
                with transaction.atomic():
                    self._lock()
                    self._import(run, stream, total, first, lines, summary)
                    if self.full:
                        self._deactivate(run, summary)
                    self.after(run)
            except DeactivationGuardError as exc:
                return self._finish(run, summary, ImportRun.Status.REFUSED, str(exc))
            except Exception as exc:
                self._finish(run, summary, ImportRun.Status.FAILED, repr(exc)[:2000])
                raise
        return self._finish(run, summary, ImportRun.Status.SUCCEEDED, "")

    def _import(
        self,
        run: ImportRun,
        stream: IO[bytes],
        total: int,
        first: tuple[int, list[str] | annuaire.LineError] | None,
        lines: Iterator[tuple[int, list[str] | annuaire.LineError]],
        summary: Summary,
    ) -> None:
        self._stage: PgStage | None = None
        self._now = timezone.now()
        if connection.vendor == "postgresql":
            self._stage = PgStage(
                self.model._meta.db_table,
                self.key,
                self._columns(),
                self.owned_sql,
                self.bulk_indexes,
            )
        batch: dict[str, Pending[R]] = {}
        items = lines if first is None else _chain(first, lines)
        for number, fields in items:
            summary.read += 1
            if isinstance(fields, annuaire.LineError):
                summary.reject(number, str(fields))
                continue
            try:
                record = self.parse(fields)
            except annuaire.LineError as exc:
                summary.reject(number, str(exc))
                continue
            key = self.key_of(record)
            if key in batch:
                self._duplicate(number, batch[key].line, summary)
                continue
            batch[key] = Pending(number, key, record, self.digest_of(record))
            if len(batch) >= self.batch_size:
                self._flush(run, batch, summary)
                batch = {}
                self._report(summary, stream, total)
        if batch:
            self._flush(run, batch, summary)
        self._report(summary, stream, total)
        if self._stage is not None:
            self._finish_stage(self._stage, summary)

    def _duplicate(self, line: int, first_line: int | None, summary: Summary) -> None:
        if not self.duplicates_rejected:
            return
        where = f" (ligne {first_line})" if first_line else ""
        summary.reject(line, f"adresse en double, déjà lue plus haut{where}")

    def _lock(self) -> None:
        # Two runs of one kind at once (the schedule and a manual run) would each
        # see the other's rows as absent: the second waits for the first.
        if connection.vendor == "postgresql":
            with connection.cursor() as cursor:
                cursor.execute("SELECT pg_advisory_xact_lock(%s, %s)", [727275, self.lock_key])

    def _columns(self) -> list[str]:
        if not hasattr(self, "_column_names"):
            self._column_names = [
                f.column for f in self.model._meta.concrete_fields if not f.primary_key
            ]
        return self._column_names

    def _row(self, run: ImportRun, pending: Pending[R]) -> list[Any]:
        values = {
            self.key: pending.key,
            **self.values(pending.record),
            "content_hash": pending.digest,
            "seen_in_import": run.pk,
            "active": True,
            "updated_at": self._now,
        }
        return [*(values[c] for c in self._columns()), pending.line]

    def _finish_stage(self, stage: PgStage, summary: Summary) -> None:
        for line in stage.drop_repeated_keys():
            self._duplicate(line, None, summary)
        for line in stage.drop_keys_in(self.withheld_sql()):
            summary.reject(line, self.withheld_reason)
        added, updated, unchanged = stage.counts()
        summary.added += added
        summary.updated += updated
        summary.unchanged += unchanged
        stage.upsert(added + updated)

    def withheld_sql(self) -> str:
        """SQL subquery of the keys withheld() returns (PostgreSQL path)."""
        return ""

    def _flush(self, run: ImportRun, batch: dict[str, Pending[R]], summary: Summary) -> None:
        if self._stage is not None:
            self._stage.add([self._row(run, pending) for pending in batch.values()])
            return
        for key in self.withheld(list(batch)):
            summary.reject(batch.pop(key).line, self.withheld_reason)
        stored = {row[0]: row[1:] for row in self.existing(list(batch))}
        # Keys the import must not touch (e.g. our own mailboxes) are listed by
        # existing() with pk None.
        to_write: list[models.Model] = []
        unchanged: list[int] = []
        added = 0
        for key, pending in batch.items():
            row = stored.get(key)
            if row is None:
                added += 1
                to_write.append(self._instance(run, pending))
                continue
            pk, digest, seen, active = row
            if pk is None:
                summary.unchanged += 1
                continue
            if seen == run.pk:
                self._duplicate(pending.line, None, summary)
                continue
            if digest == pending.digest and active:
                unchanged.append(pk)
            else:
                summary.updated += 1
                to_write.append(self._instance(run, pending))
        summary.added += added
        summary.unchanged += len(unchanged)
        if to_write:
            names = [f.name for f in self.model._meta.concrete_fields if not f.primary_key]
            self.model._default_manager.bulk_create(
                to_write,
                update_conflicts=True,
                unique_fields=[self.key],
                update_fields=[n for n in names if n != self.key],
            )
        if unchanged:
            self.model._default_manager.filter(pk__in=unchanged).update(seen_in_import=run.pk)

    def _instance(self, run: ImportRun, pending: Pending[R]) -> models.Model:
        return self.model(
            **{self.key: pending.key},
            **self.values(pending.record),
            content_hash=pending.digest,
            seen_in_import=run.pk,
            active=True,
        )

    def _deactivate(self, run: ImportRun, summary: Summary) -> None:
        active = self.scope().filter(active=True)
        absent = active.exclude(seen_in_import=run.pk)
        # Rows added by this run are in `active` too; the share is measured on
        # what was there before.
        before = active.count() - summary.added
        stage = self._stage
        count = stage.count_absent(self.owned_sql) if stage else absent.count()
        if count and not self.force and count > self.max_deactivation * before:
            raise DeactivationGuardError(
                f"Import refusé : il désactiverait {count} entrées sur {before} "
                f"({count / max(before, 1):.0%}, au-delà de {self.max_deactivation:.0%}). "
                "Fichier vide ou tronqué ? Relancez avec --force si c'est voulu."
            )
        if stage is not None:
            summary.deactivated = stage.deactivate_absent(self.owned_sql)
        else:
            summary.deactivated = absent.update(active=False)

    def _report(self, summary: Summary, stream: IO[bytes], total: int) -> None:
        if self.progress is None:
            return
        try:
            position = stream.tell()
        except (OSError, ValueError):
            position = 0
        self.progress(summary.read, position, total)

    def _finish(self, run: ImportRun, summary: Summary, status: str, message: str) -> ImportRun:
        if status == ImportRun.Status.REFUSED:
            # Everything was rolled back: report what was read, nothing written.
            summary.added = summary.updated = summary.deactivated = 0
        run.status = status
        run.message = message
        run.finished_at = timezone.now()
        for name in ("read", "added", "updated", "unchanged", "deactivated", "rejected"):
            setattr(run, name, getattr(summary, name))
        run.rejected_lines = sorted(summary.rejected_lines, key=lambda r: int(r["line"]))
        run.save()
        return run


def _chain(
    first: tuple[int, list[str] | annuaire.LineError],
    rest: Iterator[tuple[int, list[str] | annuaire.LineError]],
) -> Iterator[tuple[int, list[str] | annuaire.LineError]]:
    yield first
    yield from rest
