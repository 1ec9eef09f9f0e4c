"""Where to deliver a domain: SMTP_ROUTES first, else its MX records (dnspython)."""

from __future__ import annotations

from dataclasses import dataclass

import dns.exception
import dns.resolver
from django.conf import settings


class RouteError(Exception):
    """No server could be found; ``permanent`` when the domain has none at all."""

    def __init__(self, message: str, *, permanent: bool) -> None:
        super().__init__(message)
        self.permanent = permanent


@dataclass(frozen=True)
class Host:
    name: str
    port: int


def hosts_for(domain: str) -> list[Host]:
    """Servers to try for ``domain``, best first; raises RouteError."""
    domain = domain.strip().lower().rstrip(".")
    route = settings.SMTP_ROUTES.get(domain)
    if route is not None:
        return [Host(route[0], route[1])]
    port = settings.SMTP_MX_PORT
    try:
        answer = dns.resolver.resolve(domain, "MX", lifetime=settings.SMTP_TIMEOUT)
    except dns.resolver.NXDOMAIN:
        raise RouteError(f"le domaine {domain} n'existe pas (DNS)", permanent=True) from None
    except dns.resolver.NoAnswer:
        # RFC 5321 §5.1: no MX, the domain itself is the implicit MX.
        return [Host(domain, port)]
    except (dns.exception.Timeout, dns.resolver.NoNameservers) as exc:
        raise RouteError(f"recherche MX de {domain} impossible ({exc})", permanent=False) from None
    records = sorted(answer, key=lambda r: r.preference)
    hosts = [Host(str(r.exchange).rstrip("."), port) for r in records]
    # A null MX ("." only, RFC 7505): the domain accepts no mail.
    hosts = [h for h in hosts if h.name]
    if not hosts:
        raise RouteError(f"le domaine {domain} n'accepte pas de courrier (MX nul)", permanent=True)
    return hosts
