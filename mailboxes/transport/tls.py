"""TLS contexts for mutual authentication between operators (built from settings)."""

from __future__ import annotations

import ssl
from typing import Any

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured


def _require_material() -> None:
    missing = [
        name
        for name in ("SMTP_TLS_CERT", "SMTP_TLS_KEY", "SMTP_CA_FILE")
        if not getattr(settings, name)
    ]
    if missing:
        raise ImproperlyConfigured(
            "SMTP entre opérateurs : "
            + ", ".join(missing)
            + " non renseigné(s) (certificat, clé et autorités de confiance requis)."
        )


def server_context() -> ssl.SSLContext:
    """The gateway's context: our certificate, and a client certificate required from peers."""
    _require_material()
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH, cafile=settings.SMTP_CA_FILE)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.load_cert_chain(settings.SMTP_TLS_CERT, settings.SMTP_TLS_KEY)
    context.verify_mode = ssl.CERT_REQUIRED
    return context


def client_context() -> ssl.SSLContext:
    """Outbound context: the peer verified against SMTP_CA_FILE, our certificate presented."""
    _require_material()
    context = ssl.create_default_context(ssl.Purpose.SERVER_AUTH, cafile=settings.SMTP_CA_FILE)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.load_cert_chain(settings.SMTP_TLS_CERT, settings.SMTP_TLS_KEY)
    return context


def subject_text(subject: Any) -> str:
    """``getpeercert()["subject"]`` as ``CN=…,O=…`` for messages and the journal."""
    try:
        return ",".join(f"{k}={v}" for rdn in subject for k, v in rdn)
    except (TypeError, ValueError):
        return str(subject)
