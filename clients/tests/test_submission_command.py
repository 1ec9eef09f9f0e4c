"""``manage.py submission`` serves 587 (STARTTLS) and 465 (TLS) as a process of its own."""

from __future__ import annotations

import smtplib
import ssl
from pathlib import Path

import pytest
import trustme

from clients.tests.server_process import serving
from tests.smtp_peers import HERE


def _probe(port: int, context: ssl.SSLContext | None) -> None:
    if context is None:
        smtplib.SMTP("127.0.0.1", port, timeout=2).quit()
    else:
        smtplib.SMTP_SSL("127.0.0.1", port, context=context, timeout=2).quit()


def test_the_command_serves_both_ports_refuses_a_wrong_password_and_stops_on_sigterm(
    ca: trustme.CA, tmp_path: Path
) -> None:
    with serving("submission", ca, tmp_path, _probe) as served:
        starttls, implicit, context = served.starttls, served.implicit, served.context
        with smtplib.SMTP("127.0.0.1", starttls, timeout=10) as smtp:
            smtp.ehlo()
            assert not smtp.has_extn("auth")
            smtp.starttls(context=context)
            smtp.ehlo()
            assert "PLAIN" in smtp.esmtp_features["auth"]
        with smtplib.SMTP_SSL("127.0.0.1", implicit, context=context, timeout=10) as smtp:
            smtp.ehlo()
            assert "PLAIN" in smtp.esmtp_features["auth"]
            with pytest.raises(smtplib.SMTPAuthenticationError) as refused:
                smtp.login(f"dr.martin@{HERE}", "abcdef-ghjkmn-pqrstu-vwxyz2")
            assert refused.value.smtp_code == 535
        assert served.stops_on_sigterm()
