"""Fetching a remote image of a mail on the reader's behalf (the portal's image proxy).

Once a reader allows the remote images of a message, its ``<img>`` sources point
to the portal, which fetches them here. The reader's browser then never talks
to a server the sender chose, so a mail cannot make it reach the reader's own
network (loopback, a printer's admin page, the hospital's intranet), and the
sender learns the portal's address, not the reader's.

The rules, each checked here and not by the caller:

- http or https only, no credentials in the URL, ports 80, 443, 8080 and 8443;
- the host name is resolved once and every address it resolves to must be a
  public unicast address (no loopback, private, shared, link-local,
  multicast, reserved or documentation range, nor an IPv6 form carrying one:
  mapped, 6to4, Teredo, NAT64); the connection goes to that very address, so a
  second resolution (DNS rebinding) cannot send it elsewhere;
- each redirect (at most ``MAX_REDIRECTS``) is a new URL checked the same way;
- no cookie, referrer or credential is sent; the answer's own are dropped;
- the answer must be 200, declare PNG, JPEG, GIF or WebP and start with that
  format's signature (never SVG, which can carry script), be at most
  ``MAX_BYTES`` long and arrive within ``DEADLINE`` seconds.

``allowed_networks`` exempts networks from the address and port rules: it
exists for the tests (a local HTTP server can only be on loopback, on a free
port) and is never read from the environment.
"""

from __future__ import annotations

import http.client
import ipaddress
import socket
import ssl
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any, Final
from urllib.parse import urljoin, urlsplit

__all__ = [
    "DEADLINE",
    "MAX_BYTES",
    "MAX_REDIRECTS",
    "FetchedImage",
    "ImageFetchError",
    "fetch_image",
    "public_address",
]

MAX_BYTES: Final = 5 * 1024 * 1024
MAX_REDIRECTS: Final = 3
TIMEOUT: Final = 3.0
DEADLINE: Final = 8.0
_PORTS: Final = frozenset({80, 443, 8080, 8443})
_CHUNK: Final = 64 * 1024
_REDIRECTS: Final = frozenset({301, 302, 303, 307, 308})
_SIGNATURES: Final = {
    "image/png": (b"\x89PNG\r\n\x1a\n",),
    "image/jpeg": (b"\xff\xd8\xff",),
    "image/gif": (b"GIF87a", b"GIF89a"),
    "image/webp": (b"RIFF",),
}
_NAT64: Final = (
    ipaddress.ip_network("64:ff9b::/96"),
    ipaddress.ip_network("64:ff9b:1::/48"),
)
_USER_AGENT: Final = "MSSante-portail image proxy"

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network
Resolver = Callable[[str, int], Sequence[str]]


class ImageFetchError(Exception):
    """The image is not fetched; ``str()`` says why (for the log, not for the reader)."""


@dataclass(frozen=True, slots=True)
class FetchedImage:
    content_type: str
    data: bytes


def _embedded(ip: ipaddress.IPv6Address) -> list[ipaddress.IPv4Address]:
    found = [ip.ipv4_mapped, ip.sixtofour]
    if ip.teredo is not None:
        found.extend(ip.teredo)
    return [a for a in found if a is not None]


def public_address(ip: IPAddress) -> bool:
    """True for a public unicast address a fetch may go to."""
    if isinstance(ip, ipaddress.IPv6Address):
        if any(ip in network for network in _NAT64):
            return False
        if any(not public_address(inner) for inner in _embedded(ip)):
            return False
        if ip.is_site_local:
            return False
    return ip.is_global and not (
        ip.is_private
        or ip.is_loopback
        or ip.is_link_local
        or ip.is_multicast
        or ip.is_reserved
        or ip.is_unspecified
    )


def _system_resolver(host: str, port: int) -> list[str]:
    infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return [str(info[4][0]) for info in infos]


def _checked_address(host: str, port: int, resolve: Resolver, allowed: Sequence[IPNetwork]) -> str:
    try:
        addresses = [ipaddress.ip_address(a.split("%", 1)[0]) for a in resolve(host, port)]
    except (OSError, UnicodeError, ValueError) as exc:
        raise ImageFetchError(f"cannot resolve {host!r}: {exc}") from None
    if not addresses:
        raise ImageFetchError(f"{host!r} resolves to nothing")
    exempt = all(any(address in net for net in allowed) for address in addresses)
    if not exempt:
        for address in addresses:
            if not public_address(address):
                # One bad answer spoils the name: no picking among them.
                raise ImageFetchError(f"{host!r} resolves to a non-public address {address}")
        if port not in _PORTS:
            raise ImageFetchError(f"port {port} refused")
    return str(addresses[0])


class _PinnedHTTP(http.client.HTTPConnection):
    def __init__(self, host: str, port: int, address: str, timeout: float) -> None:
        super().__init__(host, port, timeout=timeout)
        self._address = address

    def connect(self) -> None:
        self.sock = socket.create_connection((self._address, self.port), self.timeout)


class _PinnedHTTPS(http.client.HTTPSConnection):
    def __init__(
        self, host: str, port: int, address: str, timeout: float, context: ssl.SSLContext
    ) -> None:
        super().__init__(host, port, timeout=timeout, context=context)
        self._address = address
        self._tls = context

    def connect(self) -> None:
        raw = socket.create_connection((self._address, self.port), self.timeout)
        self.sock = self._tls.wrap_socket(raw, server_hostname=self.host)


def _target(url: str) -> tuple[str, str, int, str]:
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as exc:
        raise ImageFetchError(f"invalid URL: {exc}") from None
    scheme = parts.scheme.lower()
    if scheme not in ("http", "https"):
        raise ImageFetchError(f"scheme {scheme!r} refused")
    if parts.username is not None or parts.password is not None:
        raise ImageFetchError("credentials in the URL refused")
    host = parts.hostname or ""
    if not host:
        raise ImageFetchError("no host")
    port = port or (443 if scheme == "https" else 80)
    path = parts.path or "/"
    if parts.query:
        path += "?" + parts.query
    return scheme, host, port, path


def _read_body(response: http.client.HTTPResponse, limit: int, deadline: float) -> bytes:
    declared = response.getheader("Content-Length")
    if declared and declared.strip().isdigit() and int(declared) > limit:
        raise ImageFetchError("image too large")
    chunks: list[bytes] = []
    size = 0
    while True:
        if time.monotonic() > deadline:
            raise ImageFetchError("too slow")
        chunk = response.read1(_CHUNK)
        if not chunk:
            return b"".join(chunks)
        size += len(chunk)
        if size > limit:
            raise ImageFetchError("image too large")
        chunks.append(chunk)


def fetch_image(
    url: str,
    *,
    resolve: Resolver | None = None,
    allowed_networks: Iterable[str] = (),
    max_bytes: int = MAX_BYTES,
    timeout: float = TIMEOUT,
    deadline: float = DEADLINE,
    tls_context: ssl.SSLContext | None = None,
) -> FetchedImage:
    """Fetch the image at ``url`` under the module's rules, or raise ImageFetchError."""
    allowed = [ipaddress.ip_network(n, strict=False) for n in allowed_networks]
    resolver = resolve or _system_resolver
    context = tls_context or ssl.create_default_context()
    until = time.monotonic() + deadline
    for _hop in range(MAX_REDIRECTS + 1):
        if time.monotonic() > until:
            raise ImageFetchError("too slow")
        scheme, host, port, path = _target(url)
        address = _checked_address(host, port, resolver, allowed)
        remaining = max(0.1, min(timeout, until - time.monotonic()))
        connection: Any = (
            _PinnedHTTPS(host, port, address, remaining, context)
            if scheme == "https"
            else _PinnedHTTP(host, port, address, remaining)
        )
        try:
            connection.request(
                "GET",
                path,
                headers={
                    "User-Agent": _USER_AGENT,
                    "Accept": ", ".join(_SIGNATURES),
                    "Accept-Encoding": "identity",
                },
            )
            response = connection.getresponse()
            if response.status in _REDIRECTS:
                location = response.getheader("Location") or ""
                if not location:
                    raise ImageFetchError("redirect without Location")
                url = urljoin(url, location.strip())
                continue
            if response.status != 200:
                raise ImageFetchError(f"HTTP {response.status}")
            content_type = (
                (response.getheader("Content-Type") or "").split(";", 1)[0].strip().lower()
            )
            signatures = _SIGNATURES.get(content_type)
            if signatures is None:
                raise ImageFetchError(f"content type {content_type!r} refused")
            data = _read_body(response, max_bytes, until)
            if not data.startswith(signatures) or (
                content_type == "image/webp" and data[8:12] != b"WEBP"
            ):
                raise ImageFetchError("content does not match its declared type")
            return FetchedImage(content_type, data)
        except (OSError, http.client.HTTPException) as exc:
            raise ImageFetchError(f"fetch failed: {type(exc).__name__}") from None
        finally:
            connection.close()
    raise ImageFetchError("too many redirects")
