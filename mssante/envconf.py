"""Typed readers for the environment that fail loudly, naming the variable.

django-environ parses values but forgives too much (``DEBUG=maybe`` is read as
False, ``SESSION_IDLE_MINUTES=abc`` crashes deep inside Django). An operator who
mistypes a variable must be told which one at start, so every setting goes
through these helpers and a bad value raises ImproperlyConfigured.
"""

from __future__ import annotations

import base64
import binascii
import os
from pathlib import Path
from typing import Any

import environ
from django.core.exceptions import ImproperlyConfigured

env = environ.Env()

_TRUE = {"1", "true", "yes", "on", "oui"}
_FALSE = {"0", "false", "no", "off", "non", ""}


def _raw(name: str) -> str | None:
    """The value of NAME, or the content of the file named by NAME_FILE (for secrets)."""
    file_var = os.environ.get(f"{name}_FILE")
    if file_var:
        try:
            return Path(file_var).read_text(encoding="utf-8").strip()
        except OSError as exc:
            raise ImproperlyConfigured(f"{name}_FILE : fichier illisible ({exc})") from exc
    return os.environ.get(name)


def is_set(name: str) -> bool:
    return bool(_raw(name))


def string(name: str, default: str = "") -> str:
    value = _raw(name)
    return default if value is None else value


def boolean(name: str, default: bool) -> bool:
    value = _raw(name)
    if value is None:
        return default
    lowered = value.strip().lower()
    if lowered in _TRUE:
        return True
    if lowered in _FALSE:
        return False
    raise ImproperlyConfigured(f"{name} : « {value} » n'est pas un booléen (true/false).")


def integer(name: str, default: int, *, minimum: int | None = None) -> int:
    value = _raw(name)
    if value is None or value == "":
        return default
    try:
        number = int(value)
    except ValueError:
        raise ImproperlyConfigured(f"{name} : « {value} » n'est pas un nombre entier.") from None
    if minimum is not None and number < minimum:
        raise ImproperlyConfigured(f"{name} : {number} est inférieur au minimum {minimum}.")
    return number


def str_list(name: str, default: list[str]) -> list[str]:
    value = _raw(name)
    if value is None:
        return default
    return [item.strip() for item in value.split(",") if item.strip()]


def database(name: str, default: str) -> dict[str, Any]:
    value = _raw(name) or default
    try:
        config = environ.Env.db_url_config(value)
    except Exception as exc:
        raise ImproperlyConfigured(f"{name} : URL de base de données invalide ({exc}).") from exc
    engine = config.get("ENGINE", "")
    if engine not in {"django.db.backends.postgresql", "django.db.backends.sqlite3"}:
        raise ImproperlyConfigured(
            f"{name} : seuls PostgreSQL (postgres://) et SQLite (sqlite:///) sont pris en charge."
        )
    return config


def url(name: str, default: str, *, schemes: tuple[str, ...]) -> str:
    value = _raw(name)
    if value is None or value == "":
        return default
    if not value.startswith(tuple(f"{s}://" for s in schemes)):
        raise ImproperlyConfigured(f"{name} : l'URL doit commencer par {' ou '.join(schemes)}://.")
    return value


def secret_file(path: Path, make: Any) -> str:
    """Read a secret kept under var/, creating it on first run (never committed)."""
    if path.exists():
        return path.read_text(encoding="utf-8").strip()
    path.parent.mkdir(parents=True, exist_ok=True)
    value: str = make()
    # O_EXCL: two processes starting together must not write two different keys.
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return path.read_text(encoding="utf-8").strip()
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        handle.write(value + "\n")
    return value


def master_keys(name: str, var_dir: Path, filename: str = "master.key") -> str:
    """Keys as "id:base64,id:base64" (first is current); generated under var/ by default.

    The message master keys and the audit journal's keys share this format.
    """
    value = _raw(name)
    if not value:
        value = secret_file(
            var_dir / filename,
            lambda: "k1:" + base64.b64encode(os.urandom(32)).decode(),
        )
    for part in value.split(","):
        key_id, sep, b64 = part.strip().partition(":")
        try:
            ok = bool(sep and key_id) and len(base64.b64decode(b64, validate=True)) == 32
        except (binascii.Error, ValueError):
            ok = False
        if not ok:
            raise ImproperlyConfigured(
                f"{name} : chaque clé doit s'écrire id:base64 d'une clé de 32 octets."
            )
    return value


def host_port(name: str, default: str) -> tuple[str, int]:
    """``host:port`` (``[v6]:port`` for IPv6) as a (host, port) pair."""
    value = (_raw(name) or default).strip()
    parsed = parse_host_port(value)
    if parsed is None:
        raise ImproperlyConfigured(
            f"{name} : « {value} » n'est pas de la forme hôte:port (port entre 1 et 65535)."
        )
    return parsed


def parse_host_port(value: str) -> tuple[str, int] | None:
    host, sep, port = value.strip().rpartition(":")
    host = host.strip().removeprefix("[").removesuffix("]")
    if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
        return None
    return host, int(port)


def routes(name: str) -> dict[str, tuple[str, int]]:
    """``domain=host:port,domain=host:port`` as {domain: (host, port)} (domains lower-cased)."""
    result: dict[str, tuple[str, int]] = {}
    for item in str_list(name, []):
        domain, sep, target = item.partition("=")
        domain = domain.strip().lower().rstrip(".")
        parsed = parse_host_port(target)
        if not sep or not domain or parsed is None:
            raise ImproperlyConfigured(
                f"{name} : « {item} » n'est pas de la forme domaine=hôte:port."
            )
        result[domain] = parsed
    return result


def existing_file(name: str) -> str:
    """A path that must name a readable file when set; empty when unset."""
    value = (_raw(name) or "").strip()
    if value and not Path(value).is_file():
        raise ImproperlyConfigured(f"{name} : le fichier « {value} » n'existe pas.")
    return value
