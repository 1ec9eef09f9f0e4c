"""Model fields that keep words out of the database: sealed values and search tokens.

- ``SealedTextField`` / ``SealedJSONField``: sealed on write, opened on read
  (``mssante.lib.fieldseal``: AES-256-GCM under a key derived from the master key for
  the column), so the code reads ``message.subject`` as before while the database holds
  bytes. Such a column cannot be filtered or ordered by in SQL (the bytes differ for
  equal values): a lookup other than ``isnull`` raises, ordering is done in Python.
- ``NameKeyField``: the keyed digest of a sealed name (``fieldseal.name_key``), computed
  on every write from the instance, so a name stays unique in its scope (a constraint on
  the digest) and can be looked up (``name_keys``: the digests under every master key).
- ``TokenSetField``: the keyed search tokens of an entry (``mailboxes.search``), a
  ``bigint[]`` on PostgreSQL (a GIN index serves ``@>``), and on SQLite, the embedded
  default, a text of space-separated numbers, each between spaces (matched by ``instr``).
"""

from __future__ import annotations

import json
from typing import Any

from django import forms
from django.apps import apps
from django.core.exceptions import FieldError
from django.db import connection, models, transaction

from mailboxes import blobs
from mssante.lib import fieldseal


class _Sealed(models.Field):
    """A value sealed in a binary column under a key for this column (see the module)."""

    def contribute_to_class(self, cls: Any, name: str, private_only: bool = False) -> None:
        super().contribute_to_class(cls, name, private_only)
        # The column's name is bound into every value (a value moved elsewhere fails).
        self.seal_label = f"{cls._meta.label_lower}.{name}"

    def get_internal_type(self) -> str:
        return "BinaryField"

    def get_lookup(self, lookup_name: str) -> Any:
        if lookup_name != "isnull":
            raise FieldError(
                f"{self.seal_label} is sealed: it cannot be searched in SQL "
                "(use the search index, or filter in Python)"
            )
        return super().get_lookup(lookup_name)

    def _encode(self, value: Any) -> str:
        raise NotImplementedError

    def _decode(self, text: str) -> Any:
        raise NotImplementedError

    def from_db_value(self, value: Any, expression: Any, connection: Any) -> Any:
        if value is None:
            return self.get_default()
        return self._decode(fieldseal.open_value(blobs.keyring(), self.seal_label, bytes(value)))

    def get_db_prep_value(self, value: Any, connection: Any, prepared: bool = False) -> Any:
        if value is None:
            return None
        if isinstance(value, bytes | memoryview):
            # Already sealed (a copy of a row's bytes, a data migration).
            return connection.Database.Binary(bytes(value))
        sealed = fieldseal.seal_value(blobs.keyring(), self.seal_label, self._encode(value))
        return connection.Database.Binary(sealed)

    def value_to_string(self, obj: Any) -> str:
        return self._encode(self.value_from_object(obj))


class SealedTextField(_Sealed):
    """Text sealed at rest (a subject, a folder's name); read and written as ``str``."""

    def _encode(self, value: Any) -> str:
        return str(value)

    def _decode(self, text: str) -> str:
        return text

    def to_python(self, value: Any) -> Any:
        if isinstance(value, bytes | memoryview):
            return fieldseal.open_value(blobs.keyring(), self.seal_label, bytes(value))
        return "" if value is None else str(value)

    def formfield(self, **kwargs: Any) -> Any:  # type: ignore[override]
        return super().formfield(**{"form_class": forms.CharField, **kwargs})


class SealedJSONField(_Sealed):
    """A JSON value sealed at rest (a message's attachment names and types)."""

    def _encode(self, value: Any) -> str:
        return json.dumps(value, ensure_ascii=False, separators=(",", ":"))

    def _decode(self, text: str) -> Any:
        return json.loads(text)


def _ring_ids() -> list[str]:
    ring = blobs.keyring()
    return [ring.current, *(k for k in ring if k != ring.current)]


class NameKeyField(models.CharField):
    """The keyed digest of the sealed field ``source`` within the scope ``scope`` (an
    attribute of the instance, e.g. ``mailbox_id``), set whenever the row is written."""

    def __init__(self, *args: Any, source: str = "name", scope: str = "mailbox_id", **kwargs: Any):
        self.source, self.scope = source, scope
        kwargs.setdefault("max_length", 64)
        kwargs.setdefault("editable", False)
        super().__init__(*args, **kwargs)

    def deconstruct(self) -> Any:
        name, path, args, kwargs = super().deconstruct()
        kwargs.update(source=self.source, scope=self.scope)
        return name, path, args, kwargs

    def label_of(self, model: Any) -> str:
        return f"{model._meta.label_lower}.{self.source}"

    def key(self, model: Any, scope: Any, value: str, key_id: str | None = None) -> str:
        return fieldseal.name_key(blobs.keyring(), self.label_of(model), str(scope), value, key_id)

    def pre_save(self, model_instance: Any, add: bool) -> Any:
        value = self.key(
            type(model_instance),
            getattr(model_instance, self.scope),
            getattr(model_instance, self.source),
        )
        setattr(model_instance, self.attname, value)
        return value


def name_keys(model: Any, scope: Any, value: str, field: str = "name_key") -> list[str]:
    """The digests of ``value`` under every master key of the ring, current first: a name
    written before a rotation is still found (``rekey`` brings it to the current key)."""
    key_field = model._meta.get_field(field)
    return [key_field.key(model, scope, value, k) for k in _ring_ids()]


def rekey(model: Any, field: str = "name_key", batch: int = 500) -> int:
    """Recompute ``field`` under the current master key for every row (after a rotation);
    how many rows changed. Batch by batch, each its own transaction: resumable."""
    key_field = model._meta.get_field(field)
    done, after = 0, 0
    while True:
        with transaction.atomic():
            rows = list(
                model._default_manager.filter(pk__gt=after)
                .order_by("pk")
                .only("pk", key_field.source, key_field.scope.removesuffix("_id"), field)
                .select_for_update()[:batch]
            )
            if not rows:
                return done
            after = rows[-1].pk
            old = {row.pk: getattr(row, field) for row in rows}
            changed = [row for row in rows if key_field.pre_save(row, add=False) != old[row.pk]]
            if changed:
                model._default_manager.bulk_update(changed, [field])
            done += len(changed)


def rekey_all() -> int:
    """``rekey`` every keyed-name column of every model (after a rotation)."""
    return sum(
        rekey(model, f.name)
        for model in sealed_models()
        for f in model._meta.concrete_fields
        if isinstance(f, NameKeyField)
    )


def sealed_models() -> list[Any]:
    """Every installed model with a sealed column (key rotation reseals them all)."""
    return [
        m for m in apps.get_models() if any(isinstance(f, _Sealed) for f in m._meta.concrete_fields)
    ]


class TokenSetField(models.Field):
    """Sorted 64-bit search tokens: ``bigint[]`` on PostgreSQL, spaced numbers on SQLite."""

    description = "keyed search tokens"

    def db_type(self, connection: Any) -> str:
        return "bigint[]" if connection.vendor == "postgresql" else "text"

    def get_db_prep_value(self, value: Any, connection: Any, prepared: bool = False) -> Any:
        numbers = [int(v) for v in (value or ())]
        if connection.vendor == "postgresql":
            return numbers
        return f" {' '.join(map(str, numbers))} " if numbers else ""

    def from_db_value(self, value: Any, expression: Any, connection: Any) -> list[int]:
        if not value:
            return []
        if isinstance(value, str):
            return [int(v) for v in value.split()]
        return [int(v) for v in value]

    def to_python(self, value: Any) -> list[int]:
        if isinstance(value, str):
            return [int(v) for v in value.split()]
        return [int(v) for v in (value or ())]


def reseal(model: Any, batch: int = 500) -> int:
    """Seal again under the current master key the sealed columns of ``model`` still under
    another one (rotation); how many rows were rewritten. Resumable: batch by batch."""
    columns = [f for f in model._meta.concrete_fields if isinstance(f, _Sealed)]
    if not columns:
        return 0
    ring = blobs.keyring()
    table = connection.ops.quote_name(model._meta.db_table)
    names = ", ".join(connection.ops.quote_name(f.column) for f in columns)
    after, done = 0, 0
    while True:
        with connection.cursor() as cursor:
            cursor.execute(
                f"SELECT id, {names} FROM {table} WHERE id > %s ORDER BY id LIMIT %s",  # noqa: S608
                [after, batch],
            )
            rows = cursor.fetchall()
        if not rows:
            return done
        after = rows[-1][0]
        stale = [
            row[0]
            for row in rows
            if any(v is not None and fieldseal.key_id_of(bytes(v)) != ring.current for v in row[1:])
        ]
        if stale:
            with transaction.atomic():
                objs = list(
                    model._default_manager.filter(pk__in=stale).only(
                        "pk", *(f.name for f in columns)
                    )
                )
                model._default_manager.bulk_update(objs, [f.name for f in columns])
            done += len(stale)
