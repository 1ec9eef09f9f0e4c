"""The operator at the other end of an SMTP session, as its TLS certificate proved it."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from trust import listeblanche


@dataclass(frozen=True)
class Peer:
    """The operator that delivered a message, as its TLS session authenticated it.

    ``subject`` is the client certificate's subject (``getpeercert()["subject"]``);
    ``domain`` the MAIL FROM domain the liste blanche lists that certificate for
    (empty for a null sender, which binds no domain).
    """

    subject: tuple[Any, ...]
    domain: str = ""

    @property
    def dn(self) -> str:
        """The subject as text (``commonName=…,organizationName=…``), for the record."""
        return ",".join(f"{k}={v}" for rdn in self.subject for k, v in rdn)

    @property
    def identity(self) -> str:
        """The subject in a canonical form: two spellings of one DN give the same text."""
        return ";".join(f"{k}={v}" for k, v in sorted(listeblanche.parse_dn(self.subject)))

    @property
    def name(self) -> str:
        """What "via …" names: the domain it spoke for, else its certificate's host name."""
        if self.domain:
            return self.domain
        for rdn in self.subject:
            for key, value in rdn:
                if key == "commonName":
                    return str(value)
        return self.dn
