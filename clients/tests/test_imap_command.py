"""``manage.py imap`` serves 143 (STARTTLS) and 993 (TLS) as a process of its own."""

from __future__ import annotations

import imaplib
import ssl
from pathlib import Path

import pytest
import trustme

from clients.tests.server_process import serving
from tests.smtp_peers import HERE


def _probe(port: int, context: ssl.SSLContext | None) -> None:
    if context is None:
        imaplib.IMAP4("127.0.0.1", port, timeout=2).shutdown()
    else:
        imaplib.IMAP4_SSL("127.0.0.1", port, ssl_context=context, timeout=2).shutdown()


def test_the_command_serves_both_ports_refuses_a_wrong_password_and_stops_on_sigterm(
    ca: trustme.CA, tmp_path: Path
) -> None:
    with serving("imap", ca, tmp_path, _probe) as served:
        plain = imaplib.IMAP4("127.0.0.1", served.starttls, timeout=10)
        assert "LOGINDISABLED" in plain.capabilities
        plain.starttls(served.context)
        assert "AUTH=PLAIN" in plain.capabilities
        plain.shutdown()
        tls = imaplib.IMAP4_SSL(
            "127.0.0.1", served.implicit, ssl_context=served.context, timeout=10
        )
        assert "STARTTLS" not in tls.capabilities and "AUTH=PLAIN" in tls.capabilities
        with pytest.raises(imaplib.IMAP4.error, match="Identifiants refuses"):
            tls.login(f"dr.martin@{HERE}", "abcdef-ghjkmn-pqrstu-vwxyz2")
        tls.shutdown()
        assert served.stops_on_sigterm()
