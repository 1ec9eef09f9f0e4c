"""What the enrolment pages show: the QR code and the secret in text."""

from __future__ import annotations

import base64
from typing import Any
from urllib.parse import quote

import segno
from django.conf import settings

from accounts.models import User


def otpauth_uri(user: User, secret_hex: str) -> str:
    secret = base64.b32encode(bytes.fromhex(secret_hex)).decode().rstrip("=")
    issuer = quote(settings.OTP_TOTP_ISSUER)
    return f"otpauth://totp/{issuer}:{quote(user.username)}?secret={secret}&issuer={issuer}&digits=6&period=30"


def enrolment_context(user: User, secret_hex: str) -> dict[str, Any]:
    secret = base64.b32encode(bytes.fromhex(secret_hex)).decode().rstrip("=")
    qr = segno.make(otpauth_uri(user, secret_hex), error="m")
    return {
        "qr_data_uri": qr.svg_data_uri(scale=5, border=2),
        "secret_text": " ".join(secret[i : i + 4] for i in range(0, len(secret), 4)),
    }
