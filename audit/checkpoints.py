"""The journal's signed checkpoints: purges, the seal of the unkeyed rows, the old chain's end."""

from __future__ import annotations

import hashlib
import hmac
import json
from dataclasses import dataclass, field

from django.conf import settings

from audit.keys import sign
from audit.models import AuditCheckpoint

Kind = AuditCheckpoint.Kind


def _legacy_checkpoint_key() -> bytes:
    # Checkpoints written before AUDIT_KEYS: HMAC under AUDIT_CHECKPOINT_KEY, by
    # default derived from SECRET_KEY. The label is part of the key: it keeps its old
    # name, or those checkpoints would no longer verify.
    key: str = settings.AUDIT_CHECKPOINT_KEY or settings.SECRET_KEY
    return hmac.new(key.encode(), b"mssante.charter.audit-checkpoint", hashlib.sha256).digest()


def signature(checkpoint: AuditCheckpoint, key: bytes | None = None) -> str:
    if not checkpoint.key_id:
        payload = json.dumps(
            [
                checkpoint.created_at.isoformat(),
                checkpoint.last_event_id,
                checkpoint.last_hash,
                checkpoint.purged_count,
                checkpoint.cutoff.isoformat(),
            ],
            separators=(",", ":"),
        )
        return hmac.new(_legacy_checkpoint_key(), payload.encode(), hashlib.sha256).hexdigest()
    assert key is not None
    # charter/migrations/0008 and audit/migrations/0002 repeat this payload (the seal of
    # the unkeyed rows, the end of the chain).
    return sign(
        key,
        "checkpoint",
        [
            checkpoint.kind,
            checkpoint.key_id,
            checkpoint.created_at.isoformat(),
            checkpoint.last_event_id,
            checkpoint.last_hash,
            checkpoint.purged_count,
            checkpoint.cutoff.isoformat(),
        ],
    )


def problem(checkpoint: AuditCheckpoint, keys: dict[str, bytes]) -> str | None:
    if checkpoint.key_id and checkpoint.key_id not in keys:
        return f"point de contrôle n°{checkpoint.pk} signé par une clé inconnue « {checkpoint.key_id} »"
    if checkpoint.kind != Kind.PURGE and not checkpoint.key_id:
        return f"point de contrôle n°{checkpoint.pk} sans clé"
    if checkpoint.kind not in Kind.values:
        return f"point de contrôle n°{checkpoint.pk} de nature inconnue"
    expected = signature(checkpoint, keys.get(checkpoint.key_id))
    if not hmac.compare_digest(checkpoint.signature, expected):
        return f"point de contrôle n°{checkpoint.pk} à la signature invalide"
    return None


@dataclass
class Checkpoints:
    """Every checkpoint, checked, by kind."""

    purges: list[AuditCheckpoint] = field(default_factory=list)  # old chain, in order
    sealed_purges: list[AuditCheckpoint] = field(default_factory=list)  # in order
    unkeyed_seal: AuditCheckpoint | None = None
    chain_end: AuditCheckpoint | None = None
    problem: tuple[int, str] | None = None  # (the checkpoint's last_event_id, why)

    @property
    def floor(self) -> AuditCheckpoint | None:
        """The newest purge of the old chain: its rows start after it."""
        return self.purges[-1] if self.purges else None

    @property
    def sealed_floor(self) -> AuditCheckpoint | None:
        """The newest purge of seals: the seal it names is the first one kept."""
        return self.sealed_purges[-1] if self.sealed_purges else None

    @property
    def purged_total(self) -> int:
        """Rows of the old chain purged (the anchors of the old chain count them)."""
        return sum(checkpoint.purged_count for checkpoint in self.purges)


def load(keys: dict[str, bytes]) -> Checkpoints:
    found = Checkpoints()
    for checkpoint in AuditCheckpoint.objects.order_by("last_event_id", "kind"):
        why = problem(checkpoint, keys)
        if why:
            found.problem = (checkpoint.last_event_id, why)
            return found
        if checkpoint.kind == Kind.SEAL:
            found.unkeyed_seal = checkpoint
        elif checkpoint.kind == Kind.CHAIN_END:
            if found.chain_end is not None:
                found.problem = (checkpoint.last_event_id, "deux fins de chaîne")
                return found
            found.chain_end = checkpoint
        elif checkpoint.kind == Kind.SEALED_PURGE:
            found.sealed_purges.append(checkpoint)
        else:
            found.purges.append(checkpoint)
    return found
