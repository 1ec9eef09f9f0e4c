"""The local OpenID provider standing in for Pro Santé Connect (scripts/oidc), for tests.

``make test`` starts it (scripts/services, port OIDC_PORT) and exports PSC_ISSUER. A quick
run without it skips the tests that need it; under ``make test`` (MSSANTE_TEST_SERVICES)
a provider that does not answer fails them instead.
"""

from __future__ import annotations

import os
import socket
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[1]
SECRET_FILE = ROOT / "scripts" / "oidc" / "test-client-secret"
CLIENT_ID = "mssante-test"
# Its codes live one second (scripts/oidc/provider.js): the expired-code tests.
SHORT_CODE_CLIENT_ID = "mssante-test-code-court"


def issuer() -> str:
    return (
        os.environ.get("PSC_ISSUER") or f"http://127.0.0.1:{os.environ.get('OIDC_PORT', '57480')}"
    )


def _answers(url: str) -> bool:
    host, _sep, port = url.removeprefix("http://").partition(":")
    try:
        with socket.create_connection((host, int(port.split("/")[0])), timeout=1):
            return True
    except OSError:
        return False


def require_provider() -> str:
    """The provider's issuer; skips (quick run) or fails (make test) when it does not answer."""
    url = issuer()
    if not _answers(url):
        message = (
            f"the local OpenID provider does not answer at {url} (scripts/services start oidc)"
        )
        if os.environ.get("MSSANTE_TEST_SERVICES"):
            pytest.fail(message)
        pytest.skip(message)
    return url


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
    return port


def enable(settings: Any, *, issuer_url: str, client_id: str = CLIENT_ID, **extra: Any) -> None:
    """PSC on, against this issuer, as settings.py would set it (CSP form-action included)."""
    settings.PSC_ENABLED = True
    settings.PSC_ISSUER = issuer_url
    settings.PSC_CLIENT_ID = client_id
    settings.PSC_CLIENT_SECRET = SECRET_FILE.read_text(encoding="utf-8").strip()
    settings.CSP = {**settings.CSP, "form-action": f"'self' {issuer_url}"}
    for name, value in extra.items():
        setattr(settings, name, value)
