"""The audit journal's mechanism: writing rows, anchoring seals, restarting the anchors, purging.

Callers write through ``audit.journal.record``, which appends here and has the rows
sealed soon after (``audit.tasks.seal_journal``); this module never enqueues, so the
tasks can call it.

Three defences, so that tamper evidence does not rest on the database alone:

- each row is signed on its own by HMAC-SHA256 under a key of AUDIT_KEYS, kept outside
  the database (audit.rows), and the rows of finished transactions are bound in order by
  signed seals, each linked to the previous one (audit.seals): whoever holds only the
  database can neither rewrite a row nor remove, add or move one inside a seal;
- the newest seal is anchored outside the database (audit.anchors: a signed line
  appended to a file, and optionally syslog) every few minutes, every AUDIT_ANCHOR_EVERY
  sealed events and after each purge: removed newest seals or an emptied table no
  longer pass;
- on PostgreSQL the application runs under a role that may only INSERT and SELECT the
  journal and its seals (audit.dbroles); the purge goes through functions that delete
  only what a checkpoint written in the same transaction describes.

Writing takes no lock and reads nothing: one INSERT. Only the sealer takes a lock.
"""

from __future__ import annotations

import functools
import logging
import logging.handlers
from collections.abc import Iterable
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.db import connection, transaction
from django.http import HttpRequest
from django.utils import timezone

from audit import anchorlines, anchors, checkpoints, seals, verification
from audit.keys import keyring
from audit.models import AuditCheckpoint, AuditEvent, AuditSeal
from audit.rows import Target, build

logger = logging.getLogger("mssante.audit")
anchor_logger = logging.getLogger("mssante.audit.anchor")
Kind = AuditCheckpoint.Kind


# --- Writing ------------------------------------------------------------------------------


def append(
    action: str,
    *,
    actor: Any = None,
    obj: Any = None,
    object_type: str = "",
    object_id: str | int = "",
    request: HttpRequest | None = None,
    **data: Any,
) -> AuditEvent:
    """Write one event (in the caller's transaction): one INSERT, no lock, no read.

    ``data`` must hold no content.
    """
    if obj is not None:
        object_type = object_type or obj._meta.label_lower
        object_id = object_id or obj.pk
    [event] = build([(action, (object_type, object_id), data)], actor=actor, request=request)
    event.save(force_insert=True)
    return event


def append_many(
    entries: Iterable[tuple[str, Target, dict[str, Any]]],
    *,
    actor: Any = None,
    request: HttpRequest | None = None,
) -> list[AuditEvent]:
    """Write many events in one multi-row INSERT (in the caller's transaction)."""
    events = build(entries, actor=actor, request=request)
    if events:
        AuditEvent.objects.bulk_create(events)
    return events


# --- Anchoring ----------------------------------------------------------------------------


class AuditIntegrityError(Exception):
    """The journal is damaged: a purge or an anchor would certify tampered rows, so it stops."""


def _alarm(reason: str) -> AuditIntegrityError:
    logger.critical("Journal d'audit altéré, ancrage refusé : %s", reason)
    return AuditIntegrityError(reason)


def _where(broken: verification.ChainBreak) -> str:
    if broken.event_id is not None:
        return f"ligne {broken.event_id} : {broken.reason}"
    return broken.reason


def _check_since(
    previous: anchorlines.Anchor | None,
    newest: AuditSeal | None,
    keys: dict[str, bytes],
    *,
    restart: bool,
) -> None:
    """Verify what was sealed since the previous anchor (everything when it cannot say)."""
    cps = checkpoints.load(keys)
    if cps.problem:
        raise _alarm(f"ligne {cps.problem[0]} : {cps.problem[1]}")
    tombstone = cps.sealed_floor
    comparable = (
        not restart
        and previous is not None
        and previous.version == anchorlines.VERSION
        and previous.last_id > 0
        and (tombstone is None or previous.last_id >= tombstone.last_event_id)
    )
    if not comparable:
        # First anchor, a restart, a line of the old chain, or one older than the newest
        # purge: the whole journal, and (but for a restart) against the file's newest line.
        result = verification.check(
            keys, until=newest.pk if newest else 0, tail=False, anchors=not restart
        )
        if result.broken:
            raise _alarm(_where(result.broken))
        return
    assert previous is not None
    if newest is None or newest.pk < previous.last_id:
        raise _alarm(
            f"le dernier scellement est le n°{newest.pk if newest else 0}, l'ancrage du "
            f"{previous.at} attestait le n°{previous.last_id} : lignes récentes supprimées "
            "ou table vidée"
        )
    kept = AuditSeal.objects.filter(pk=previous.last_id).first()
    if kept is None or kept.mac != previous.head:
        raise _alarm(
            f"scellement n°{previous.last_id} absent ou différent de l'ancrage du {previous.at}"
        )
    if seals.seal_problem(kept, keys):
        raise _alarm(f"scellement n°{kept.pk} à la signature invalide")
    walk = verification.walk_seals(keys, cps, after=kept, until=newest.pk, tail=False)
    if walk.broken:
        raise _alarm(_where(walk.broken))


def anchor(*, purge: AuditCheckpoint | None = None, restart: str = "") -> dict[str, Any] | None:
    """Seal, then append the newest seal to the anchor file (and syslog), after checking
    what was sealed since the previous anchor. None when anchoring is off
    (AUDIT_ANCHOR_FILE empty).

    ``restart`` (a reason): compare with nothing before, only check the whole journal is
    consistent (see restart_anchoring).
    """
    path = settings.AUDIT_ANCHOR_FILE
    if not path:
        return None
    key_id, keys = keyring()
    seals.seal()
    with anchors.AnchorStore(path) as store:
        previous = anchorlines.newest_in(store, keys)
        if isinstance(previous, str):
            raise _alarm(f"fichier d'ancrage {path} : {previous}")
        with verification.snapshot():
            newest = AuditSeal.objects.order_by("-id").first()
            _check_since(previous, newest, keys, restart=bool(restart))
        values: dict[str, Any] = {
            "n": previous.number + 1 if previous else 1,
            "at": timezone.now().isoformat(),
            "seal": newest.pk if newest else 0,
            "head": newest.mac if newest else "",
            "events": newest.total if newest else 0,
            "prev": previous.mac if previous else "",
        }
        if purge is not None:
            values["purge"] = [purge.kind, purge.last_event_id, purge.last_hash, purge.purged_count]
        if restart:
            values["restart"] = restart
        line, text = anchorlines.signed_line(key_id, keys[key_id], **values)
        store.append(text)
    _ship(text)
    return line


def restart_anchoring(reason: str, *, by: Any = None) -> dict[str, Any] | None:
    """After a legitimate break of the anchors (the database restored from a backup older
    than the last anchor): journal it, then anchor afresh, stating the reason.

    The journal itself must still be whole: a restart never covers a row or a seal changed
    or removed in the middle, only a journal that ends earlier than the anchors said.
    """
    reason = " ".join(reason.split())[:300]
    if not reason:
        raise ValueError("restart_anchoring : un motif est obligatoire")
    # Sealed and anchored right below: append, nothing of its own to enqueue.
    append("audit.anchor_restarted", actor=by, reason=reason)
    return anchor(restart=reason)


@functools.lru_cache(maxsize=4)
def _syslog_handler(address: str) -> logging.Handler:
    target: str | tuple[str, int] = address
    if not address.startswith("/"):
        host, _, port = address.rpartition(":")
        target = (host.strip("[]"), int(port))
    return logging.handlers.SysLogHandler(
        address=target, facility=logging.handlers.SysLogHandler.LOG_AUTHPRIV
    )


def _ship(text: str) -> None:
    """A copy of the anchor line in the logs, and in syslog when AUDIT_ANCHOR_SYSLOG is set."""
    anchor_logger.info("audit-anchor %s", text)
    address = settings.AUDIT_ANCHOR_SYSLOG
    if address:
        handler = _syslog_handler(address)
        handler.handle(
            logging.LogRecord(
                "mssante.audit.anchor",
                logging.INFO,
                __file__,
                0,
                "mssante-audit-anchor %s",
                (text,),
                None,
            )
        )


# --- Retention ----------------------------------------------------------------------------


def _signed_checkpoint(
    kind: str, *, now: datetime, last_id: int, last_hash: str, count: int, cutoff: datetime
) -> AuditCheckpoint:
    key_id, keys = keyring()
    checkpoint = AuditCheckpoint(
        kind=kind,
        created_at=now,
        last_event_id=last_id,
        last_hash=last_hash,
        purged_count=count,
        cutoff=cutoff,
        key_id=key_id,
    )
    checkpoint.signature = checkpoints.signature(checkpoint, keys[key_id])
    checkpoint.save(force_insert=True)
    return checkpoint


def _purge_chain(now: datetime, cutoff: datetime, keys: dict[str, bytes]) -> AuditCheckpoint | None:
    """Purge a prefix of the old chain (in its id order), leaving a checkpoint."""
    rows = seals.chain_rows()
    # An event is kept if any earlier one is kept, so a clock that went backwards never
    # punches a hole in the middle of the chain.
    first_kept = rows.filter(at__gte=cutoff).order_by("id").values_list("id", flat=True).first()
    doomed = rows if first_kept is None else rows.filter(id__lt=first_kept)
    last = doomed.order_by("-id").values_list("id", "hash").first()
    if last is None:
        return None
    cps = checkpoints.load(keys)
    if cps.problem:
        raise AuditIntegrityError(f"ligne {cps.problem[0]} : {cps.problem[1]}")
    # Include the first kept event: its link proves the last purged hash.
    walk = verification.check_chain(cps, keys, until=first_kept or last[0])
    if walk.broken is not None:
        raise AuditIntegrityError(_where(walk.broken))
    count = doomed.count()
    checkpoint = _signed_checkpoint(
        Kind.PURGE, now=now, last_id=last[0], last_hash=last[1], count=count, cutoff=cutoff
    )
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            # The application's role may not DELETE from the journal: this function (its
            # owner's, charter/migrations/0008) removes only a prefix that a checkpoint of
            # this very transaction describes.
            cursor.execute("SELECT charter_audit_purge(%s)", [last[0]])
    else:
        AuditEvent.objects.filter(id__lte=last[0]).delete()
    return checkpoint


def _purge_seals(now: datetime, cutoff: datetime, keys: dict[str, bytes]) -> AuditCheckpoint | None:
    """Purge whole seals (and what is left of the old chain), leaving a checkpoint.

    The newest seal purged stays, without its rows, as the start of what is kept: the
    next seal links to its MAC, and the checkpoint names it.
    """
    seal_rows = AuditSeal.objects.order_by("id")
    tombstone = checkpoints.load(keys).sealed_floor
    if tombstone is not None:
        seal_rows = seal_rows.filter(id__gt=tombstone.last_event_id)
    # A seal is kept if any earlier one holds a recent event (a clock gone backwards).
    first_kept = seal_rows.filter(newest_at__gte=cutoff).values_list("id", flat=True).first()
    doomed = seal_rows if first_kept is None else seal_rows.filter(id__lt=first_kept)
    last = doomed.order_by("-id").first()
    if last is None:
        return None
    result = verification.check(keys, until=last.pk, tail=False, anchors=False)
    if result.broken is not None:
        raise AuditIntegrityError(_where(result.broken))
    rows = seals.chain_rows().count()
    rows += seals.between(seals.current_rows(), hi=last.hi).count()
    checkpoint = _signed_checkpoint(
        Kind.SEALED_PURGE, now=now, last_id=last.pk, last_hash=last.mac, count=rows, cutoff=cutoff
    )
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            # Its owner's function (audit/migrations/0002), as for the old chain.
            cursor.execute("SELECT audit_purge_seals(%s)", [last.pk])
    else:
        seals.chain_rows().delete()
        seals.between(seals.current_rows(), hi=last.hi).delete()
        AuditSeal.objects.filter(id__lt=last.pk).delete()
    return checkpoint


def purge_expired(*, now: datetime | None = None) -> AuditCheckpoint | None:
    """Delete events older than AUDIT_RETENTION_DAYS, leaving a signed checkpoint (and an anchor).

    The old chain goes first, a prefix at a time; then whole seals.
    """
    now = now or timezone.now()
    cutoff = now - timedelta(days=settings.AUDIT_RETENTION_DAYS)
    _key_id, keys = keyring()
    seals.seal()
    with transaction.atomic():
        # The sealer's lock: no seal is written while seals go.
        seals.lock()
        chain_left = seals.chain_rows().filter(at__gte=cutoff).exists()
        checkpoint = None if chain_left else _purge_seals(now, cutoff, keys)
        if checkpoint is None:
            checkpoint = _purge_chain(now, cutoff, keys)
        if checkpoint is None:
            return None
        sealed = checkpoint.kind == Kind.SEALED_PURGE
        detail: dict[str, Any] = {
            "count": checkpoint.purged_count,
            "last_seal_id" if sealed else "last_event_id": checkpoint.last_event_id,
        }
        # Sealed and anchored on commit below: append, nothing of its own to enqueue.
        append("audit.purged", obj=checkpoint, **detail)
        transaction.on_commit(functools.partial(anchor, purge=checkpoint), robust=True)
    return checkpoint
