"""Where to deliver a domain: SMTP_ROUTES first, else its MX records (dnspython)."""

from __future__ import annotations

from dataclasses import dataclass

import dns.exception
import dns.resolver
from django.conf import settings

from mailboxes import reasons


class RouteError(Exception):
    """No server could be found (``reason`` says why); ``permanent`` when the domain has none."""

    def __init__(self, reason: reasons.Reason, *, permanent: bool) -> None:
        super().__init__(reason.code)
        self.reason = reason
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
        raise RouteError(
            reasons.Reason(reasons.NO_SUCH_DOMAIN, {"domain": domain}), permanent=True
        ) from None
    except dns.resolver.NoAnswer:
        # RFC 5321 §5.1: no MX, the domain itself is the implicit MX.
        return [Host(domain, port)]
    except (dns.exception.Timeout, dns.resolver.NoNameservers) as exc:
        raise RouteError(
            reasons.Reason(reasons.MX_LOOKUP_FAILED, {"domain": domain, "error": str(exc)}),
            permanent=False,
        ) from None
    records = sorted(answer, key=lambda r: r.preference)
    hosts = [Host(str(r.exchange).rstrip("."), port) for r in records]
    # A null MX ("." only, RFC 7505): the domain accepts no mail.
    hosts = [h for h in hosts if h.name]
    if not hosts:
        raise RouteError(reasons.Reason(reasons.NULL_MX, {"domain": domain}), permanent=True)
    return hosts
