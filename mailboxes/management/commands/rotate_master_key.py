"""Rewrap every data key under the current master key (message bodies are not touched)."""

from __future__ import annotations

import base64
import os
from collections import Counter
from typing import Any

from django.core.management.base import BaseCommand, CommandError
from django.db import transaction
from django.db.models import Model

from accounts.models import BackupCodeDevice, EmailCodeDevice, TOTPDevice
from mailboxes import blobs, fields
from mailboxes.models import Draft, DraftAttachment, Message
from mssante.lib import crypto

_BATCH = 500
# Every model holding a data key wrapped under a master key (key_id, wrapped_key).
_SEALED: tuple[type[Model], ...] = (
    Message,
    DraftAttachment,
    Draft,
    TOTPDevice,
    BackupCodeDevice,
    EmailCodeDevice,
)


class Command(BaseCommand):
    help = (
        "Rechiffre les clés de données de tous les messages, brouillons et pièces jointes "
        "avec la clé maîtresse courante (la première de MSSANTE_MASTER_KEYS), ainsi que "
        "celles des secrets de second facteur. Les corps des messages ne sont pas "
        "réécrits. Ensuite, l'ancienne clé peut être retirée."
    )

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument(
            "--generate",
            metavar="ID",
            help="Affiche une nouvelle entrée « ID:clé » à placer en tête de MSSANTE_MASTER_KEYS, sans rien rechiffrer.",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        if options["generate"]:
            key = base64.b64encode(os.urandom(crypto.KEY_SIZE)).decode()
            self.stdout.write(f"{options['generate']}:{key}")
            return
        ring = blobs.keyring()
        total = 0
        for model in _SEALED:
            total += self._rewrap(model, ring)
        # Subjects, attachment names, folder names…: sealed under a key derived from the
        # master key, rewritten whole (a few dozen bytes each). Every model with a sealed
        # column, found by its fields (one added later cannot be forgotten here); then the
        # folder names' keyed digests, computed again under the new key.
        resealed = sum(fields.reseal(model) for model in fields.sealed_models())
        fields.rekey_all()
        left = Counter[str]()
        for model in _SEALED:
            rows = model._default_manager.exclude(key_id__in=["", ring.current]).values_list(
                "key_id", flat=True
            )
            left.update(rows)
        if left:
            raise CommandError(f"des clés restent sous une ancienne clé maîtresse : {dict(left)}")
        self.stdout.write(
            self.style.SUCCESS(
                f"{total} clés de données rechiffrées, {resealed} lignes aux valeurs scellées "
                "(objets, noms de pièces jointes et de dossiers) rescellées avec la clé "
                f"« {ring.current} ». Relancez "
                "rebuild_search_index avant de retirer les autres clés maîtresses."
            )
        )

    def _rewrap(self, model: type[Model], ring: crypto.KeyRing) -> int:
        done = 0
        while True:
            # Each batch is its own transaction, and the filter skips rows already
            # done: an interrupted rotation resumes where it stopped.
            with transaction.atomic():
                rows: list[Any] = list(
                    # Only what is rewrapped: a sealed column is not opened here.
                    model._default_manager.select_for_update()
                    .only("pk", "key_id", "wrapped_key")
                    .exclude(key_id__in=["", ring.current])
                    .exclude(wrapped_key=None)
                    .order_by("pk")[:_BATCH]
                )
                if not rows:
                    return done
                for row in rows:
                    try:
                        row.key_id, row.wrapped_key = crypto.rewrap(
                            ring, row.key_id, bytes(row.wrapped_key)
                        )
                    except crypto.UnknownKeyError as exc:
                        raise CommandError(
                            f"{model._meta.label} {row.pk} : {exc}. Remettez cette clé dans "
                            "MSSANTE_MASTER_KEYS (après la clé courante) et relancez."
                        ) from None
                model._default_manager.bulk_update(rows, ["key_id", "wrapped_key"])
                done += len(rows)
